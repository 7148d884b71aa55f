"""Leader election on a coordination.k8s.io Lease: of several operator replicas exactly one acts.

Why a Lease and not kopf peering: kopf's peering pauses operators of *lower* priority but lets
operators of equal priority run side by side (it only warns), so two replicas of one Deployment would
both act. A Lease with a holder, a duration and renewals is what controller-runtime, the scheduler and
the controller manager use: a replica acts only while it holds an unexpired lease, stops acting the
moment a renewal fails, and a standby takes over after the lease expires.

Renewals run on the elector's own thread, never queued behind other blocking work of the process (the
loop's default executor is shared); the loop's long computations (arbitration) run on threads too.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from foresail.api.objects import parse_rfc3339
from foresail.clients.kube import ApiException, Kube, path_for

__all__ = ["LeaseElector"]

log = logging.getLogger("foresail.leader")


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(s: str | None) -> datetime | None:
    t = parse_rfc3339(s)
    return None if t is None else datetime.fromtimestamp(t, UTC)


class LeaseElector:
    def __init__(self, kube: Kube, namespace: str, name: str, identity: str, duration: float = 15.0, renew: float = 5.0) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.duration, self.renew_every = duration, renew
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lease")

    def _lease(self, holder: str, acquired: datetime, now: datetime, transitions: int) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": int(self.duration),
                "acquireTime": _fmt(acquired),
                "renewTime": _fmt(now),
                "leaseTransitions": transitions,
            },
        }

    def try_acquire(self) -> bool:
        """One attempt to take or renew the lease (optimistic concurrency on resourceVersion)."""
        now = datetime.now(UTC)
        cur = self.kube.get("Lease", self.namespace, self.name)
        try:
            if cur is None:
                self.kube.create(self._lease(self.identity, now, now, 0))
                return True
            spec = cur.get("spec", {})
            holder = spec.get("holderIdentity")
            renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
            expired = renewed is None or now - renewed > timedelta(
                seconds=float(spec.get("leaseDurationSeconds") or self.duration)
            )
            if holder not in (None, "", self.identity) and not expired:
                return False
            mine = holder == self.identity
            acquired = (_parse(spec.get("acquireTime")) or now) if mine else now
            body = self._lease(self.identity, acquired, now, int(spec.get("leaseTransitions") or 0) + (0 if mine else 1))
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            self.kube.request("PUT", path_for("Lease", self.namespace, self.name), body)
            return True
        except ApiException as e:
            if e.status in (409, 422):  # somebody else won the race
                return False
            raise

    async def _attempt(self) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.try_acquire)

    async def acquire(self) -> None:
        while True:
            try:
                if await self._attempt():
                    log.info("acquired lease %s/%s as %s", self.namespace, self.name, self.identity)
                    return
            except Exception as e:  # the API being down is not fatal while waiting
                log.warning("lease %s/%s: %r", self.namespace, self.name, e)
            await asyncio.sleep(self.renew_every / 2)

    async def hold(self, lost: asyncio.Event) -> None:
        """Renew until a renewal cannot succeed within the lease duration; then set ``lost``."""
        last_ok = asyncio.get_running_loop().time()
        while not lost.is_set():
            await asyncio.sleep(self.renew_every)
            try:
                ok = await self._attempt()
            except Exception as e:
                log.warning("lease renewal failed: %r", e)
                ok = False
            now = asyncio.get_running_loop().time()
            if ok:
                last_ok = now
            elif now - last_ok > self.duration - self.renew_every:
                log.error("lost lease %s/%s; stopping", self.namespace, self.name)
                lost.set()
