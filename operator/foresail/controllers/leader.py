"""Leader election on a coordination.k8s.io Lease: of several operator replicas at most one acts.

Why a Lease and not kopf peering: kopf's peering pauses operators of *lower* priority but lets
operators of equal priority run side by side (it only warns), so two replicas of one Deployment would
both act. A Lease with a holder, a duration and renewals is what controller-runtime, the scheduler and
the controller manager use; this follows client-go's ``leaderelection``:

* **Renewal with a deadline.** The leader renews every ``retry`` seconds. Each attempt's requests get
  the time left until ``renew_deadline`` after the last successful renewal (never a fixed 30 s each);
  when none succeeded by then, it stops acting at once and sets ``lost``.
* **"Still leading" is local.** ``leading()`` is true while the last successful renewal, timed when its
  attempt began on this replica's *monotonic* clock, is less than ``renew_deadline`` old. Writes ask it
  (``Kube.fence``: the autoscaler's and the handlers' clients refuse a write with ``NotLeader``), so a
  pass that loses the lease midway sends nothing more. ``renew_deadline < duration`` leaves the margin.
* **Expiry is observed, never compared across clocks.** A candidate records when it *saw* the lease's
  record change (client-go's ``observedTime``, on its monotonic clock) and takes the lease only after
  seeing it unchanged for ``leaseDurationSeconds``. The ``renewTime`` and ``acquireTime`` it writes are
  for people (``kubectl``); no replica compares them with its own clock, so a skewed or stepped clock
  can neither take a live lease nor keep a dead one.
* Every take or renewal is a replace guarded by the resourceVersion it read: of two candidates one wins.
* **A graceful stop gives the lease up** (client-go's ``ReleaseOnCancel``): the leader stops acting, then
  writes the lease with no holder and a 1 s duration, so a standby takes it at its next attempt (``retry``)
  rather than after seeing it unchanged for a lease duration. A leader that cannot (the API down, the lease
  already another's) just stops; the standby then waits the duration out, as before.

Renewals run on the elector's own thread, never queued behind other blocking work of the process (the
loop's default executor is shared); the loop's long computations (arbitration) run on threads too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from foresail.clients.kube import ApiException, Kube, path_for

__all__ = ["LeaseElector"]

log = logging.getLogger("foresail.leader")


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(spec: dict[str, Any]) -> tuple[Any, ...]:
    """What a renewal or a take changes: seen unchanged for a lease duration, the lease has expired."""
    keys = ("holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime", "leaseTransitions")
    return tuple(spec.get(k) for k in keys)


class LeaseElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``clock``: the monotonic clock every decision uses; ``wall``: only for the times written for people.
        ``kube`` must be unfenced (it writes the lease itself)."""
        if not 0 < retry < renew_deadline < duration:
            raise ValueError(f"need 0 < retry ({retry}) < renew_deadline ({renew_deadline}) < duration ({duration})")
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.duration, self.renew_deadline, self.retry = duration, renew_deadline, retry
        self.clock, self.wall = clock, wall
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lease")
        self._lock = threading.Lock()
        self.renewed_at: float | None = None  # when the last successful take or renewal began (clock)
        self.dropped = False  # stopped acting: never leading again (the process exits)
        self.observed: tuple[Any, ...] | None = None  # the lease's record as last read
        self.observed_at = -math.inf  # when that record was first seen (clock)
        self.holder: str | None = None  # the holder as last read

    def leading(self) -> bool:
        """Whether this replica may act now: renewed less than ``renew_deadline`` ago on its own clock."""
        with self._lock:
            renewed, dropped = self.renewed_at, self.dropped
        return not dropped and renewed is not None and self.clock() - renewed < self.renew_deadline

    def drop(self) -> None:
        with self._lock:
            self.dropped = True

    def _lease(self, acquired: str, now: str, transitions: int) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.duration),
                "acquireTime": acquired,
                "renewTime": now,
                "leaseTransitions": transitions,
            },
        }

    def _left(self, deadline: float | None) -> float | None:
        """A request's timeout: what is left until ``deadline`` (at most the client's own)."""
        if deadline is None:
            return None
        left = min(self.kube.timeout, deadline - self.clock())
        if left <= 0:
            raise TimeoutError("the renew deadline passed")
        return left

    def _observe(self, spec: dict[str, Any]) -> None:
        record = _record(spec)
        if record != self.observed:
            self.observed, self.observed_at = record, self.clock()
        self.holder = spec.get("holderIdentity") or None

    def _won(self, began: float, spec: dict[str, Any]) -> None:
        self._observe(spec)
        with self._lock:
            self.renewed_at = began

    def try_acquire(self, deadline: float | None = None) -> bool:
        """One attempt to take or renew the lease, its requests ending by ``deadline`` (clock)."""
        began = self.clock()
        now = _fmt(self.wall())
        cur = self.kube.get("Lease", self.namespace, self.name, timeout=self._left(deadline))
        try:
            if cur is None:
                body = self._lease(now, now, 0)
                self.kube.create(body, timeout=self._left(deadline))
                self._won(began, body["spec"])
                return True
            spec = cur.get("spec") or {}
            self._observe(spec)
            mine = self.holder == self.identity
            duration = float(spec.get("leaseDurationSeconds") or self.duration)
            if self.holder is not None and not mine and self.clock() < self.observed_at + duration:
                return False  # seen changing less than a lease duration ago: alive
            transitions = int(spec.get("leaseTransitions") or 0)
            body = self._lease(str(spec.get("acquireTime") or now) if mine else now, now, transitions + (0 if mine else 1))
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            self.kube.request("PUT", path_for("Lease", self.namespace, self.name), body, timeout=self._left(deadline))
            self._won(began, body["spec"])
            return True
        except ApiException as e:
            if e.status in (409, 422):  # somebody else won the race
                return False
            raise

    def release(self, timeout: float = 5.0) -> bool:
        """Stop acting, then give the lease up if it is still this replica's: no holder, a 1 s duration. Its
        requests end within ``timeout``; True when the lease was released."""
        self.drop()  # first: no write of this process is let through from now on (``leading()``)
        deadline = self.clock() + timeout
        try:
            cur = self.kube.get("Lease", self.namespace, self.name, timeout=self._left(deadline))
            spec = (cur or {}).get("spec") or {}
            if cur is None or spec.get("holderIdentity") != self.identity:
                return False
            now = _fmt(self.wall())
            body = self._lease(now, now, int(spec.get("leaseTransitions") or 0))
            del body["spec"]["holderIdentity"]
            body["spec"]["leaseDurationSeconds"] = 1
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            self.kube.request("PUT", path_for("Lease", self.namespace, self.name), body, timeout=self._left(deadline))
        except Exception as e:  # the API down or slow, or the lease changed under us: a standby waits it out
            log.warning("lease %s/%s not released: %r", self.namespace, self.name, e)
            return False
        log.info("released lease %s/%s", self.namespace, self.name)
        return True

    async def _attempt(self, deadline: float) -> bool:
        """One attempt on the elector's thread, given up (not awaited further) at ``deadline``."""
        left = deadline - self.clock()
        if left <= 0:
            return False
        try:
            async with asyncio.timeout(left):
                return await asyncio.get_running_loop().run_in_executor(self.pool, self.try_acquire, deadline)
        except Exception as e:  # the API being down or slow: retried until the deadline
            log.warning("lease %s/%s: %r", self.namespace, self.name, e)
            return False

    async def acquire(self) -> None:
        """Until this replica holds the lease (an attempt every ``retry`` seconds)."""
        while True:
            if await self._attempt(self.clock() + self.renew_deadline) and self.leading():
                break
            await asyncio.sleep(self.retry)
        log.info("acquired lease %s/%s as %s", self.namespace, self.name, self.identity)

    async def renew(self) -> bool:
        """Retry every ``retry`` seconds until a renewal succeeds or ``renew_deadline`` after the last
        one passes; False: no longer the leader (another holder seen, or the deadline passed)."""
        if self.renewed_at is None:
            return False
        deadline = self.renewed_at + self.renew_deadline
        while self.clock() < deadline:
            if await self._attempt(deadline):
                return self.leading()
            if self.holder not in (None, self.identity):
                log.error("lease %s/%s is held by %s", self.namespace, self.name, self.holder)
                return False
            await asyncio.sleep(min(self.retry, max(0.0, deadline - self.clock())))
        return False

    async def hold(self, lost: asyncio.Event) -> None:
        """Renew every ``retry`` seconds; when a renewal misses its deadline, stop leading and set ``lost``."""
        while not lost.is_set():
            await asyncio.sleep(self.retry)
            if not await self.renew():
                self.drop()
                log.error("lost lease %s/%s (not renewed within %gs); stopping", self.namespace, self.name, self.renew_deadline)
                lost.set()
