"""Triton's counters -> a service's ``FleetSignals`` (pure: every time is an argument or a sample's own).

The operator keeps, per service and replica (pod), a ring of samples of Triton's cumulative counters
(``PodSample``: from Prometheus' raw samples or the replica's own metrics endpoint) and computes every
window as the difference of two samples, as ``increase()`` would:

* counter resets (a restarted Triton starts from 0) are undone per counter, as Prometheus does: a value
  lower than the last one counts from zero;
* only samples taken while a replica *serves* count: from its warm-up gate's transition (``since``, plus
  ``SINCE_MARGIN_S`` for the second-resolution timestamp; the warm-up's own requests come before it)
  until the last pass that saw it serving, so a replica that appears mid-window counts from its first
  serving sample and one that disappears up to its last;
* arrivals = completions (``nv_inference_request_success``) + failures (``nv_inference_request_failure``,
  all reasons: Triton's queue time-outs are ``REJECTED``) + growth of the work in flight; in flight =
  queued (``nv_inference_pending_request_count``) + executing. Triton 2.51 has no gauge of executing
  requests: it is estimated between two samples by Little's law from the compute-duration counters
  (request-microseconds of compute per microsecond);
* mean queue wait and mean latency: the queue- and request-duration counters over the completions;
* p99: the mixture quantile (``scaling.latency``) of the summaries of the replicas that have served for
  at least ``SUMMARY_MAX_AGE_S`` (their summaries no longer hold warm-up requests), weighted by each
  one's completions in the window; None (not measured: unknown, never 0 ms) when no such replica
  completed anything in it, e.g. before any replica has been warm for a minute.

A rate is the sum of the replicas' differences, each over the window's span (the window, or less while
the service's history is shorter: the operator just started) or over its own two samples when they lie
further apart (a scrape interval longer than the window).

Errors per service (the decision then holds; status says why), never averaged away: serving replicas
without any sample (``no series``), some serving replicas without a fresh sample (a partial scrape), the
newest sample older than ``stale_after`` (stale), a non-finite counter.

Clocks: every time a store keeps is on its *source's* clock, the clock that stamped the samples
(Prometheus' for its scrapes; the operator's monotonic clock for direct reads), so freshness, windows
and serving intervals are judged on one clock. The caller passes ``now`` on the operator's wall clock
(as the pods' ``since``, written by the warm-up gate) and ``offset``, the source's clock minus the
operator's at this pass: ``now + offset`` is the source's now, and a replica's ``since`` is moved onto
the source's clock when the store first sees it serving (with that pass's offset: a later step of the
operator's clock does not move a transition recorded before it). Samples older than a replica's newest
are dropped (overlapping reads); since a source's clock does not step back, that never drops new samples.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from foresail.scaling.latency import QUANTILES, mixture_quantile
from foresail.scaling.signals import WINDOWS, FleetSignals, MetricsSource, WindowSignals

__all__ = [
    "HISTORY_S",
    "NO_QUANTILES",
    "SINCE_MARGIN_S",
    "SUMMARY_MAX_AGE_S",
    "PodSample",
    "ServiceCounters",
    "ServiceSignals",
    "ServingPod",
]

SUMMARY_MAX_AGE_S = 60.0  # Triton 2.51's latency summaries forget a request 60 s after it (measured)
SINCE_MARGIN_S = 1.0  # condition times have whole seconds
HISTORY_S = max(WINDOWS) + 15.0  # samples kept per replica: the longest window, and a baseline before it
NO_QUANTILES = (math.nan,) * len(QUANTILES)


@dataclass(frozen=True)
class PodSample:
    """One read of one replica's counters for the service's model (summed over versions and reasons)."""

    t: float  # when it was read (the scrape's timestamp)
    success: float
    failure: float
    request_us: float  # cumulative request duration of the completions
    queue_us: float  # cumulative queue wait of the completions
    compute_us: float  # cumulative compute (input + infer + output) of the completions
    pending: float  # requests queued now (gauge)
    quantiles_us: tuple[float, ...] = NO_QUANTILES  # latency summary at QUANTILES (NaN: nothing in 60 s)

    def counters(self) -> tuple[float, float, float, float, float]:
        return (self.success, self.failure, self.request_us, self.queue_us, self.compute_us)

    def bad_value(self) -> str | None:
        """The first counter or gauge that is not a finite number, by name."""
        named = zip(
            ("success", "failure", "request_us", "queue_us", "compute_us", "pending"),
            (*self.counters(), self.pending),
            strict=True,
        )
        return next((f"{n} = {v}" for n, v in named if not math.isfinite(v)), None)


@dataclass(frozen=True)
class ServingPod:
    """A replica that serves now, and since when (its warm-up gate's, or Ready's, transition time)."""

    name: str
    since: float
    address: str = ""  # pod IP, for direct reads


@dataclass(frozen=True)
class _Point:
    t: float
    c: tuple[float, ...]  # reset-corrected cumulative counters (PodSample.counters order)
    in_flight: float  # queued + executing (Little's law since the previous point)
    pending: float
    quantiles_us: tuple[float, ...]


SUCCESS, FAILURE, REQUEST_US, QUEUE_US, COMPUTE_US = range(5)


@dataclass
class _Ring:
    """One replica's samples, reset-corrected, and the interval it served in."""

    points: deque[_Point] = field(default_factory=deque)
    last_raw: tuple[float, ...] | None = None
    since: float | None = None  # on the source's clock
    until: float | None = None  # None while it serves; on the source's clock
    listed_since: float | None = None  # ``since`` as listed (the operator's clock): a new transition when it changes
    bad: str | None = None  # the last sample's non-finite value

    def add(self, s: PodSample) -> None:
        if self.points and s.t <= self.points[-1].t:
            return  # already have it (overlapping reads)
        self.bad = s.bad_value()
        if self.bad is not None:
            return
        raw: tuple[float, ...] = s.counters()
        if self.last_raw is None or not self.points:
            adj = raw
            executing = 0.0
        else:
            prev = self.points[-1]
            adj = tuple(a + (r - lr if r >= lr else r) for a, r, lr in zip(prev.c, raw, self.last_raw, strict=True))
            executing = max(0.0, (adj[COMPUTE_US] - prev.c[COMPUTE_US]) / ((s.t - prev.t) * 1e6))
        self.last_raw = raw
        self.points.append(_Point(s.t, adj, s.pending + executing, s.pending, s.quantiles_us))

    def usable(self) -> list[_Point]:
        """The points taken while it served."""
        if self.since is None:
            return []
        lo = self.since + SINCE_MARGIN_S
        hi = math.inf if self.until is None else self.until
        return [p for p in self.points if lo <= p.t <= hi]

    def trim(self, before: float) -> None:
        """Forget points before ``before`` but the last one of them (a window's baseline)."""
        while len(self.points) > 1 and self.points[1].t <= before:
            self.points.popleft()


@dataclass(frozen=True)
class ServiceSignals:
    """One service's signals at one pass, and what is wrong with them (``errors``: the decision holds)."""

    fleet: FleetSignals | None
    errors: tuple[str, ...] = ()
    sample_age_s: float | None = None  # now - the newest sample
    sample_interval_s: float | None = None  # median spacing of the serving replicas' samples
    serving: int = 0  # replicas measured
    p99_replicas: int = 0  # serving replicas warm long enough for their summaries to count
    note: str = ""  # e.g. why direct reads fell back to Prometheus
    no_series: bool = False  # replicas serve and not one of them has a sample: the scrape does not label them

    @property
    def ok(self) -> bool:
        return not self.errors and self.fleet is not None

    @property
    def source(self) -> MetricsSource | None:
        return None if self.fleet is None else self.fleet.source


def _median(xs: Sequence[float]) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[len(s) // 2]


class ServiceCounters:
    """The rings of one service's replicas (one source), and the service's signals from them."""

    def __init__(self, source: MetricsSource) -> None:
        self.source = source
        self.rings: dict[str, _Ring] = {}
        self.history_from: float | None = None  # the first sample this store got: no history before it

    def add(self, pod: str, samples: Iterable[PodSample]) -> None:
        ring = self.rings.setdefault(pod, _Ring())
        for s in sorted(samples, key=lambda x: x.t):
            ring.add(s)
            if ring.points and (self.history_from is None or ring.points[0].t < self.history_from):
                self.history_from = ring.points[0].t

    def serving(self, now: float, pods: Sequence[ServingPod], offset: float = 0.0) -> None:
        """Which replicas serve at ``now`` (from the pod list): the others stop counting from here.

        ``now`` and the pods' ``since`` are on the operator's clock, ``offset`` is the source's clock
        minus the operator's (see the module's docstring)."""
        current = {p.name: p.since for p in pods}
        src_now = now + offset
        for name, since in current.items():
            ring = self.rings.setdefault(name, _Ring())
            if ring.listed_since != since or ring.until is not None:
                ring.listed_since, ring.since, ring.until = since, since + offset, None
        for name, ring in list(self.rings.items()):
            if name in current:
                continue
            if ring.until is None and ring.since is not None:
                ring.until = src_now
            last = ring.points[-1].t if ring.points else -math.inf
            if last < src_now - HISTORY_S:
                del self.rings[name]  # gone, and out of every window

    def signals(self, now: float, stale_after: float, offset: float = 0.0) -> ServiceSignals:
        """The service's signals at ``now`` (the operator's clock; ``offset``: the source's minus it)."""
        now += offset  # from here on, every time is on the source's clock
        for ring in self.rings.values():
            if ring.points:
                ring.trim(ring.points[-1].t - HISTORY_S)
        serving = {n: r for n, r in self.rings.items() if r.since is not None and r.until is None}
        usable = {n: r.usable() for n, r in self.rings.items()}
        errors = [f"replica {n}: {r.bad} (not a finite number)" for n, r in sorted(serving.items()) if r.bad]
        grace = {n for n, r in serving.items() if r.since is not None and now - r.since < stale_after}
        fresh = {n for n in serving if usable[n] and usable[n][-1].t >= now - stale_after}
        missing = sorted(set(serving) - fresh - grace)
        measured = [n for n in serving if usable[n]]
        no_series = bool(serving and not measured and missing)
        if no_series:
            errors.append(f"no series for the {len(serving)} serving replicas")
        elif missing and fresh:
            errors.append(
                f"partial scrape: no sample in the last {stale_after:g}s from {len(missing)} of {len(serving)} serving replicas ({', '.join(missing[:5])})"
            )
        newest = max((usable[n][-1].t for n in measured), default=None)
        age = None if newest is None else max(0.0, now - newest)
        if age is not None and age > stale_after:
            errors.append(f"stale: newest sample {age:.0f}s old")
        tails = [usable[n][-6:] for n in measured]
        gaps = [b.t - a.t for tail in tails for a, b in pairwise(tail)]
        p99_pods = [n for n in measured if usable[n][-1].t - (serving[n].since or 0.0) >= SUMMARY_MAX_AGE_S + SINCE_MARGIN_S]
        end = newest if newest is not None else now
        windows = tuple(self._window(w, end, usable, set(p99_pods)) for w in WINDOWS)
        fleet = FleetSignals(
            windows=windows,
            queued=sum(usable[n][-1].pending for n in measured),
            in_flight=sum(usable[n][-1].in_flight for n in measured),
            source=self.source,
        )
        return ServiceSignals(
            fleet=None if errors else fleet,
            errors=tuple(errors),
            sample_age_s=age,
            sample_interval_s=_median(gaps),
            serving=len(serving),
            p99_replicas=len(p99_pods),
            no_series=no_series,
        )

    def _window(self, w: float, end: float, usable: dict[str, list[_Point]], p99_pods: set[str]) -> WindowSignals:
        start = end - w
        if self.history_from is not None:
            start = max(start, self.history_from)
        span = end - start
        if span <= 0:
            return WindowSignals(w, 0.0, 0.0, 0.0, 0.0, 0.0, None)
        rate = [0.0] * 5  # per second, summed over the replicas
        growth = 0.0
        mixture: list[tuple[float, Sequence[float]]] = []
        for name, pts in usable.items():
            if not pts or pts[-1].t <= start:
                continue  # nothing served in this window (gone before it)
            k = bisect_right([p.t for p in pts], start)
            old, new = pts[max(k - 1, 0)], pts[-1]
            if new is old:
                continue
            # a replica that served part of the window counts over the whole; one sampled less often
            # than the window counts over its two samples
            per = max(span, new.t - old.t)
            for i in range(5):
                rate[i] += (new.c[i] - old.c[i]) / per
            growth += (new.in_flight - old.in_flight) / per
            if name in p99_pods:
                mixture.append(((new.c[SUCCESS] - old.c[SUCCESS]) / per, new.quantiles_us))
        done, failed = rate[SUCCESS], rate[FAILURE]
        p99_us = mixture_quantile(mixture, 0.99)
        return WindowSignals(
            window_s=w,
            arrival_rps=max(0.0, done + failed + growth),
            completion_rps=done,
            rejection_rps=failed,
            queue_growth_rps=growth,
            mean_queue_wait_ms=rate[QUEUE_US] / done / 1000.0 if done > 0 else 0.0,
            p99_ms=None if p99_us is None else p99_us / 1000.0,
            mean_latency_ms=rate[REQUEST_US] / done / 1000.0 if done > 0 else 0.0,
        )
