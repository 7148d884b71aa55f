"""The autoscaler's live signals: Triton's counters read each pass, kept per replica, windowed per service.

Each pass the autoscaler hands over what it listed (each service's model and serving replicas, with the
time each began serving); ``read`` then

1. reads Prometheus for all services: the raw samples since its last read (``PromClient.counter_samples``),
   in one query while the fleet is small; a read of more than ``READ_SLICE_S`` seconds (the first) in
   slices of that length, oldest first, and a fleet of more than ``REPLICA_SECONDS_PER_QUERY`` replica-seconds
   in shards of namespaces (``clients.prometheus``: the memory a query's answer takes to decode is bounded);
2. keeps them per replica (``scaling.counters.ServiceCounters``) and computes each service's ``FleetSignals``.

With the direct source (``FORESAIL_METRICS_SOURCE=direct``) a background task also reads every serving
replica's own metrics endpoint each ``interval`` seconds (``clients.replica_metrics``) into a second set
of rings; a service whose direct signals are complete and fresh uses them (source ``Direct``), any other
falls back to its Prometheus signals (source ``Prometheus``, with the reason in ``note``). Prometheus is
read every pass in both modes, so the fallback always has its history.

Clocks: each store judges its samples on the clock that stamped them (``scaling.counters``). Direct reads
are stamped on the operator's monotonic clock, so a step of the wall clock neither drops them nor freezes
the windows; Prometheus' scrapes on Prometheus' clock, whose difference from the operator's is measured
from each answer's ``Date`` header and kept while it moves by less than ``PROM_OFFSET_TOLERANCE_S`` (the
header has whole seconds). The span each read asks for follows the monotonic clock too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from foresail.clients.prometheus import CounterRead, MetricsError, PromClient, Shard, plan_shards, read_slices
from foresail.clients.replica_metrics import ReplicaMetrics
from foresail.render.triton import METRICS
from foresail.scaling.counters import HISTORY_S, ServiceCounters, ServiceSignals, ServingPod
from foresail.scaling.signals import MetricsSource

__all__ = ["LiveSignals", "ServiceView", "SourceMode"]

log = logging.getLogger("foresail.signals")
Key = tuple[str, str]
READ_MARGIN_S = 3.0  # each Prometheus read overlaps the last by this much: no scrape is missed
READ_SLICE_S = 15  # a longer read (the first: a minute of history; after a slow pass) is sliced: its memory bounded
# replicas x seconds of samples per query: ~2,000 replicas of a pass's ~8 s, a ~14 MB answer, ~130 MB to decode
REPLICA_SECONDS_PER_QUERY = 16_000
PROM_OFFSET_TOLERANCE_S = 1.5  # a new measure of Prometheus' clock offset is taken when it moved by more


class SourceMode(StrEnum):
    """``FORESAIL_METRICS_SOURCE``."""

    PROMETHEUS = "prometheus"
    DIRECT = "direct"


@dataclass(frozen=True)
class ServiceView:
    """What the pass listed of one service: its model and the replicas serving now."""

    model: str
    serving: Sequence[ServingPod]


class LiveSignals:
    def __init__(
        self,
        prom: PromClient | None,
        *,
        mode: SourceMode = SourceMode.PROMETHEUS,
        stale_after: float = 10.0,
        direct: ReplicaMetrics | None = None,
        interval: float = 1.0,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        """``wall``: the operator's clock, as the autoscaler's ``now``; ``mono``: its monotonic clock."""
        self.prom = prom
        self.wall, self.mono = wall, mono
        self.mode = mode
        self.stale_after = stale_after
        self.direct = (direct or ReplicaMetrics()) if mode == SourceMode.DIRECT else None
        self.interval = interval
        self.from_prom: dict[Key, ServiceCounters] = {}
        self.from_direct: dict[Key, ServiceCounters] = {}
        self.direct_errors: dict[Key, dict[str, str]] = {}
        self.views: dict[Key, ServiceView] = {}
        self.last_read: float | None = None  # on the monotonic clock
        self.prom_offset = 0.0  # Prometheus' clock minus the operator's, as last measured
        self.progress: Callable[[], None] = lambda: None  # after each query answered (the liveness check's)

    async def close(self) -> None:
        if self.direct is not None:
            await self.direct.close()

    def _track(self, stores: dict[Key, ServiceCounters], source: MetricsSource, now: float, offset: float) -> None:
        """Services and replicas as listed this pass: serving intervals, forgotten services."""
        for key in set(stores) - set(self.views):
            del stores[key]
        for key, view in self.views.items():
            stores.setdefault(key, ServiceCounters(source)).serving(now, view.serving, offset)

    def _direct_offset(self) -> float:
        """The direct reads' clock minus the operator's wall clock, now."""
        assert self.direct is not None
        return self.direct.clock() - self.wall()

    async def read(self, now: float, views: Mapping[Key, ServiceView]) -> tuple[dict[Key, ServiceSignals], list[str]]:
        """Every listed service's signals at ``now`` (the operator's wall clock), and the errors that hit all of them."""
        self.views = dict(views)
        if self.direct is not None:
            self._track(self.from_direct, MetricsSource.DIRECT, now, self._direct_offset())
        if self.prom is None:
            self._track(self.from_prom, MetricsSource.PROMETHEUS, now, self.prom_offset)
            return {}, ["no Prometheus URL configured (FORESAIL_PROMETHEUS_URL)"]
        started = self.mono()
        since = HISTORY_S if self.last_read is None else min(HISTORY_S, started - self.last_read + READ_MARGIN_S)
        models = {k: v.model for k, v in views.items()}
        slices = read_slices(since, READ_SLICE_S, int(READ_MARGIN_S))
        per_query = max(1, int(REPLICA_SECONDS_PER_QUERY // max(w for w, _ in slices)))
        # replicas that stopped serving keep their series a while: one more per service
        shards = plan_shards({k: len(v.serving) + 1 for k, v in views.items()}, per_query) or [Shard()]
        got = CounterRead()
        try:
            for shard in shards:
                for window, ago in slices:  # oldest first: the rings take each replica's samples in order
                    part = await self.prom.counter_samples(window, models, ago=ago, shard=shard)
                    self.progress()
                    for key, pods in part.samples.items():
                        for pod, samples in pods.items():
                            got.samples.setdefault(key, {}).setdefault(pod, []).extend(samples)
                    for key, errs in part.errors.items():
                        got.errors.setdefault(key, []).extend(e for e in errs if e not in got.errors[key])
                    got.clock_offset_s = part.clock_offset_s
        except MetricsError as e:
            return {}, [f"Prometheus: {e}"]  # replicas are tracked at the next read, on its measured offset
        self.last_read = started
        if got.clock_offset_s is not None and abs(got.clock_offset_s - self.prom_offset) > PROM_OFFSET_TOLERANCE_S:
            if self.from_prom:
                log.warning("Prometheus' clock is %+.1fs from the operator's (was %+.1fs)", got.clock_offset_s, self.prom_offset)
            self.prom_offset = got.clock_offset_s
        self._track(self.from_prom, MetricsSource.PROMETHEUS, now, self.prom_offset)
        for key, pods in got.samples.items():
            for pod, samples in pods.items():
                self.from_prom[key].add(pod, samples)
        out: dict[Key, ServiceSignals] = {}
        for key in views:
            sig = self.from_prom[key].signals(now, self.stale_after, self.prom_offset)
            if got.errors.get(key):
                sig = replace(sig, fleet=None, errors=(*got.errors[key], *sig.errors), no_series=False)
            out[key] = self._prefer_direct(key, now, sig)
        return out, []

    def _prefer_direct(self, key: Key, now: float, prom: ServiceSignals) -> ServiceSignals:
        if self.direct is None:
            return prom
        d = self.from_direct[key].signals(now, self.stale_after, self._direct_offset())
        failing = self.direct_errors.get(key) or {}
        if d.ok and not failing:
            return d
        why = "; ".join(f"{p}: {e}" for p, e in sorted(failing.items())[:3]) or "; ".join(d.errors) or "no direct reads yet"
        return replace(prom, note=f"direct reads incomplete ({why}); Prometheus used"[:300])

    async def run_direct(self) -> None:
        """Read every serving replica's metrics endpoint each ``interval`` seconds (direct source only)."""
        if self.direct is None:
            return
        while True:
            started = self.mono()
            try:
                await self.read_direct()
            except Exception as e:  # never lose the sampler
                log.exception("direct metrics read failed: %r", e)
            await asyncio.sleep(max(0.0, self.interval - (self.mono() - started)))

    async def read_direct(self) -> None:
        """One round of direct reads of every serving replica with an address."""
        assert self.direct is not None
        targets = {
            (key, p.name): (f"http://{p.address}:{METRICS}/metrics", view.model)
            for key, view in self.views.items()
            for p in view.serving
            if p.address
        }
        got = await self.direct.read({f"{k[0]}/{k[1]}/{pod}": t for (k, pod), t in targets.items()})
        errors: dict[Key, dict[str, str]] = {}
        for (key, pod), _ in targets.items():
            result = got[f"{key[0]}/{key[1]}/{pod}"]
            store = self.from_direct.get(key)
            if isinstance(result, str):
                errors.setdefault(key, {})[pod] = result
            elif store is not None:
                store.add(pod, [result])
        self.direct_errors = errors
