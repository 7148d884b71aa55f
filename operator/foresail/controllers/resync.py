"""The periodic reconciles, as one loop for all objects rather than a kopf timer per object.

A kopf timer (or daemon) makes kopf put a finalizer on every object it handles, so deleting an
InferenceService or EvalJob hangs whenever the operator does not run (scaled to 0, uninstalled). This
loop needs none: deletion completes without the operator and the children go with their owner
(ownerReferences). Each pass lists the kind once and reconciles the objects that are due, each on its
own (one object's failure is logged and the others go on).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from foresail.clients.kube import Kube

__all__ = ["Periodic", "Resync"]

log = logging.getLogger("foresail.resync")

Reconcile = Callable[[Kube, dict[str, Any], datetime], Any]


@dataclass(frozen=True)
class Periodic:
    """Reconcile every object of ``kind`` every ``every_s`` seconds for which ``due(body)`` holds."""

    kind: str
    every_s: float
    reconcile: Reconcile
    due: Callable[[dict[str, Any]], bool] = lambda _body: True
    name: str = ""  # tells apart two periodics of one kind (default: the kind)
    max_per_second: float | None = None  # a big fleet is resynced less often: at most this many objects a second

    @property
    def key(self) -> str:
        return self.name or self.kind

    def period_s(self, objects: int) -> float:
        """Seconds from one resync of ``objects`` objects to the next: ``every_s``, or longer for a fleet
        bigger than ``max_per_second`` x ``every_s``. Pure."""
        if self.max_per_second is None or self.max_per_second <= 0:
            return self.every_s
        return max(self.every_s, objects / self.max_per_second)


@dataclass
class Resync:
    kube: Kube
    periodics: list[Periodic]
    watch: Collection[str] = ()  # the namespaces it manages (empty: all)
    concurrency: int = 4
    _last: dict[str, float] = field(default_factory=dict)

    async def run(self, period_s: float = 1.0) -> None:
        while True:
            await self.run_once(time.monotonic())
            await asyncio.sleep(period_s)

    async def run_once(self, now: float) -> None:
        """Reconcile the kinds whose period has passed (monotonic ``now``); the first time one period after
        the first call (kopf's resume handlers reconcile every object at start)."""
        for p in self.periodics:
            if now - self._last.setdefault(p.key, now) < p.every_s:
                continue
            self._last[p.key] = now
            try:
                bodies = await asyncio.to_thread(self.kube.list, p.kind)
            except Exception as e:
                log.warning("resync: listing %s failed: %r", p.kind, e)
                continue
            due = [b for b in bodies if self._mine(b) and p.due(b)]
            self._last[p.key] = now + p.period_s(len(due)) - p.every_s  # the next one a fleet's period later
            gate = asyncio.Semaphore(self.concurrency)
            await asyncio.gather(*(self._one(p, b, gate) for b in due))

    def _mine(self, body: dict[str, Any]) -> bool:
        md = body.get("metadata") or {}
        return not md.get("deletionTimestamp") and (not self.watch or md.get("namespace") in self.watch)

    async def _one(self, p: Periodic, body: dict[str, Any], gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                await asyncio.to_thread(p.reconcile, self.kube, body, datetime.now(UTC))
            except Exception as e:
                md = body.get("metadata") or {}
                log.exception("resync: %s %s/%s failed: %r", p.kind, md.get("namespace"), md.get("name"), e)
