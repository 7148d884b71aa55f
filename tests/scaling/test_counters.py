"""Triton's counters -> FleetSignals (pure): named cases for windows, resets, replicas that come and go,
warm-age filtering of p99, in-flight work and the per-service errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from foresail.scaling.counters import PodSample, ServiceCounters, ServiceSignals, ServingPod
from foresail.scaling.latency import mixture_quantile
from foresail.scaling.signals import MetricsSource
from tests.fakes.counters import quantiles, steady

NOW = 1000.0


@dataclass
class Fleet:
    """Replicas: (serving since, samples); ``gone``: replicas no longer listed, from when."""

    pods: dict[str, tuple[float, list[PodSample]]]
    gone: dict[str, float] = field(default_factory=dict)
    now: float = NOW
    stale_after: float = 10.0

    def signals(self) -> ServiceSignals:
        store = ServiceCounters(MetricsSource.PROMETHEUS)
        every = [ServingPod(n, since) for n, (since, _) in self.pods.items()]
        store.serving(min(self.gone.values(), default=self.now), every)
        for name, (_, samples) in self.pods.items():
            store.add(name, samples)
        for at in sorted(self.gone.values()):
            store.serving(at, [p for p in every if p.name not in self.gone or self.gone[p.name] > at])
        store.serving(self.now, [p for p in every if p.name not in self.gone])
        return store.signals(self.now, self.stale_after)


def reset_at(samples: list[PodSample], t_reset: float) -> list[PodSample]:
    """The same replica restarted at ``t_reset``: its counters start again from 0 there."""
    base = next(s for s in samples if s.t >= t_reset)
    out = []
    for s in samples:
        if s.t < t_reset:
            out.append(s)
        else:
            out.append(
                PodSample(
                    s.t,
                    s.success - base.success,
                    s.failure - base.failure,
                    s.request_us - base.request_us,
                    s.queue_us - base.queue_us,
                    s.compute_us - base.compute_us,
                    s.pending,
                    s.quantiles_us,
                )
            )
    return out


OLD = 0.0  # warm long before the windows
# (name, fleet, window seconds, {field: expected})
CASES: list[tuple[str, Fleet, float, dict[str, float | None]]] = [
    ("one replica at 50 rps: every window", Fleet({"a": (OLD, steady(0, NOW, 50))}), 2, {"arrival_rps": 50, "completion_rps": 50, "mean_latency_ms": 20, "mean_queue_wait_ms": 5, "p99_ms": 30}),
    ("the 60 s window too", Fleet({"a": (OLD, steady(0, NOW, 50))}), 60, {"arrival_rps": 50, "p99_ms": 30}),
    ("two equal replicas: rates add, p99 is theirs", Fleet({"a": (OLD, steady(0, NOW, 30)), "b": (OLD, steady(0, NOW, 20))}), 10, {"arrival_rps": 50, "p99_ms": 30}),
    ("a slow replica serving 1 in 50 requests moves p99 by its share, not to its own", Fleet({"a": (OLD, steady(0, NOW, 49, p99_ms=30)), "b": (OLD, steady(0, NOW, 1, p99_ms=300))}), 10, {"p99_ms": (mixture_quantile([(49.0, quantiles(30)), (1.0, quantiles(300))]) or 0.0) / 1000}),
    ("a replica warm for 30 s counts in arrivals, not in p99 (its summary holds the warm-up)", Fleet({"a": (OLD, steady(0, NOW, 40)), "b": (NOW - 30, steady(NOW - 40, NOW, 10, p99_ms=250))}), 10, {"arrival_rps": 50, "p99_ms": 30}),
    ("only replicas warm for 30 s: no p99 (not measured, not 0 ms), arrivals still", Fleet({"b": (NOW - 30, steady(NOW - 40, NOW, 10, p99_ms=250))}), 10, {"arrival_rps": 10, "p99_ms": None}),
    ("a replica warm for 62 s counts in p99", Fleet({"b": (NOW - 62, steady(NOW - 70, NOW, 10, p99_ms=25))}), 10, {"p99_ms": 25}),
    ("warm-up requests before the gate are not arrivals", Fleet({"b": (NOW - 5, steady(NOW - 40, NOW - 5, 40) + steady(NOW - 4, NOW, 10, start=40 * 35 + 10))}), 2, {"arrival_rps": 10}),
    ("counter reset: Triton restarted mid-window", Fleet({"a": (OLD, reset_at(steady(0, NOW, 50), NOW - 5))}), 10, {"completion_rps": 50 * 9 / 10}),
    ("a replica that appears mid-window counts from its first serving sample", Fleet({"a": (OLD, steady(0, NOW, 40)), "b": (NOW - 6, steady(NOW - 5, NOW, 10))}), 10, {"arrival_rps": 40 + 10 * 5 / 10}),
    ("a replica that left mid-window counts up to its last sample", Fleet({"a": (OLD, steady(0, NOW, 40)), "b": (OLD, steady(0, NOW - 4, 10))}, gone={"b": NOW - 4}), 10, {"arrival_rps": 40 + 10 * 6 / 10}),
    ("a replica that left before the window is out of it", Fleet({"a": (OLD, steady(0, NOW, 40)), "b": (OLD, steady(0, NOW - 20, 10))}, gone={"b": NOW - 20}), 10, {"arrival_rps": 40}),
    ("saturated: the queue's growth is arrivals too", Fleet({"a": (OLD, steady(0, NOW, 40, pending=lambda t: max(0.0, 10 * (t - (NOW - 10)))))}), 10, {"arrival_rps": 50, "completion_rps": 40, "queue_growth_rps": 10}),
    ("rejections (queue time-outs) are arrivals and misses", Fleet({"a": (OLD, steady(0, NOW, 40, fail_rps=5))}), 10, {"arrival_rps": 45, "rejection_rps": 5}),
    ("just started: a window longer than the history is the history", Fleet({"a": (OLD, steady(NOW - 5, NOW, 50, start=1e6))}), 60, {"arrival_rps": 50}),
    ("idle: zeros, and no p99 (nothing completed)", Fleet({"a": (OLD, steady(0, NOW, 0, p99_ms=None))}), 10, {"arrival_rps": 0, "mean_latency_ms": 0, "p99_ms": None}),
    ("just started, nothing warm for a minute yet: no p99 in any window", Fleet({"a": (NOW - 20, steady(NOW - 20, NOW, 50, p99_ms=240))}), 60, {"p99_ms": None}),
    ("samples every 5 s: the 2 s window spans one scrape interval", Fleet({"a": (OLD, steady(0, NOW, 50, step=5))}), 2, {"arrival_rps": 50}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fleet", "window", "want"), CASES, ids=[c[0] for c in CASES])
def test_windows(name: str, fleet: Fleet, window: float, want: dict[str, float | None]) -> None:
    got = fleet.signals()
    assert got.ok, (name, got.errors)
    assert got.fleet is not None
    w = got.fleet.window(window)
    for k, v in want.items():
        if v is None:
            assert getattr(w, k) is None, (name, k, w)  # not measured: unknown, never 0
        else:
            assert getattr(w, k) == pytest.approx(v, rel=1e-6, abs=1e-6), (name, k, w)


def test_in_flight_is_queued_plus_executing_by_littles_law() -> None:
    got = Fleet({"a": (OLD, steady(0, NOW, 50, pending=3, executing=4))}).signals()
    assert got.fleet is not None
    assert got.fleet.queued == 3
    assert got.fleet.in_flight == pytest.approx(7)


def test_counts_of_replicas_and_sample_spacing() -> None:
    got = Fleet({"a": (OLD, steady(0, NOW, 10)), "b": (NOW - 30, steady(NOW - 40, NOW, 10, step=2))}).signals()
    assert (got.serving, got.p99_replicas, got.sample_interval_s, got.sample_age_s) == (2, 1, 2.0, 0.0)


ERRORS: list[tuple[str, Fleet, str | None]] = [
    ("all good", Fleet({"a": (OLD, steady(0, NOW, 10)), "b": (OLD, steady(0, NOW, 10))}), None),
    ("serving replicas without any series", Fleet({"a": (OLD, []), "b": (OLD, [])}), "no series for the 2 serving replicas"),
    ("a partial scrape: one serving replica silent", Fleet({"a": (OLD, steady(0, NOW, 10)), "b": (OLD, steady(0, NOW - 30, 10))}), "partial scrape: no sample in the last 10s from 1 of 2 serving replicas (b)"),
    ("a partial scrape: one serving replica without any series (its target removed)", Fleet({"a": (OLD, steady(0, NOW, 10)), "b": (OLD, [])}), "partial scrape: no sample in the last 10s from 1 of 2 serving replicas (b)"),
    ("stale: every sample old", Fleet({"a": (OLD, steady(0, NOW - 30, 10))}), "stale: newest sample 30s old"),
    ("a NaN counter", Fleet({"a": (OLD, [*steady(0, NOW - 1, 10), PodSample(NOW, float("nan"), 0, 0, 0, 0, 0)])}), "replica a: success = nan (not a finite number)"),
    ("a replica warm for 3 s without a serving sample yet is not missing", Fleet({"a": (OLD, steady(0, NOW, 10)), "b": (NOW - 3, steady(NOW - 20, NOW - 4, 10))}), None),
    ("no serving replica: nothing to measure, no error", Fleet({}), None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fleet", "error"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_per_service(name: str, fleet: Fleet, error: str | None) -> None:
    got = fleet.signals()
    if error is None:
        assert got.ok, (name, got.errors)
    else:
        assert not got.ok and got.fleet is None, name
        assert error in got.errors, (name, got.errors)
    assert got.no_series == (error is not None and error.startswith("no series")), name


def test_overlapping_reads_are_taken_once_and_the_ring_is_trimmed() -> None:
    store = ServiceCounters(MetricsSource.DIRECT)
    store.serving(NOW, [ServingPod("a", OLD)])
    samples = steady(0, NOW, 50)
    store.add("a", samples[:600])
    store.add("a", samples[500:])  # overlaps by 100 samples
    got = store.signals(NOW, 10.0)
    assert got.fleet is not None and got.fleet.source == MetricsSource.DIRECT
    assert got.fleet.window(60).arrival_rps == pytest.approx(50)
    assert len(store.rings["a"].points) <= 77  # HISTORY_S of 1 s samples, and the baseline before


def test_a_replica_gone_for_longer_than_the_history_is_forgotten() -> None:
    store = ServiceCounters(MetricsSource.PROMETHEUS)
    store.serving(NOW - 100, [ServingPod("a", OLD), ServingPod("b", OLD)])
    store.add("b", steady(0, NOW - 100, 10))
    store.serving(NOW - 99, [ServingPod("a", OLD)])
    store.serving(NOW, [ServingPod("a", OLD)])
    assert set(store.rings) == {"a"}


# Clock steps (issue 15, defect 2). The operator's wall clock (``now``, the pods' ``since``) may step or be
# skewed from the clock that stamps the samples; ``offset`` is the source's clock minus the operator's.
BOOT = 5_000.0  # the monotonic clock that stamps direct reads: seconds since boot
WALL = 1.7e9  # the operator's wall clock before any step


def direct_passes(step_at: float, step: float, end: float = 200.0) -> list[tuple[float, ServiceSignals]]:
    """One pass a second for ``end`` seconds of a direct store whose replicas complete 50 rps, 80 from
    t=120 (``a``, warm from the start) and, from t=150, 10 rps (``b``, warmed after the step: its ``since``
    is on the stepped wall clock, its warm-up's 40 rps before it); the wall clock steps by ``step`` at
    ``step_at``. A frozen store would miss both changes."""
    store = ServiceCounters(MetricsSource.DIRECT)

    def wall(t: float) -> float:
        return WALL + t + (step if t >= step_at else 0.0)

    a = steady(BOOT, BOOT + 120, 50) + steady(BOOT + 121, BOOT + end, 80, start=50 * 120 + 80)
    b = steady(BOOT + 140, BOOT + 150, 40) + steady(BOOT + 151, BOOT + end, 10, start=40 * 10 + 10)
    out = []
    for k in range(int(end) + 1):
        t = float(k)
        pods = [ServingPod("a", WALL)] + ([ServingPod("b", wall(150.0))] if t >= 150 else [])
        store.add("a", [s for s in a if s.t == BOOT + t])
        store.add("b", [s for s in b if s.t == BOOT + t])
        offset = (BOOT + t) - wall(t)  # what the operator measures at the pass: monotonic minus wall
        store.serving(wall(t), pods, offset)
        out.append((t, store.signals(wall(t), 10.0, offset)))
    return out


STEPS = [
    pytest.param(0.0, id="no step"),
    pytest.param(-5.0, id="wall clock 5 s back"),
    pytest.param(-600.0, id="wall clock 10 min back"),
    pytest.param(600.0, id="wall clock 10 min forward"),
]


@pytest.mark.parametrize("step", STEPS)
def test_direct_reads_keep_deciding_across_a_step_of_the_wall_clock(step: float) -> None:
    for t, sig in direct_passes(step_at=100.0, step=step):
        if t < 3:
            continue  # the 2 s window needs two samples
        assert sig.ok, (t, sig.errors)
        assert sig.sample_age_s == 0.0, t
        assert sig.fleet is not None
        if t <= 120 or t >= 122:  # b counts from its warm transition, not its warm-up
            want = (50.0 if t <= 120 else 80.0) + 10.0 * max(0.0, min(1.0, (t - 151) / 2))
            assert sig.fleet.window(2).arrival_rps == pytest.approx(want), (t, sig.fleet.window(2))
        if t >= 161:
            assert sig.fleet.window(10).arrival_rps == pytest.approx(90), t


PROM = 2.0e9  # Prometheus' clock, which stamps its scrapes

SKEWS = [
    pytest.param(0.0, 1.0, None, id="same clock: fresh"),
    pytest.param(0.0, 30.0, "stale: newest sample 30s old", id="same clock: stale"),
    pytest.param(3600.0, 1.0, None, id="operator 1 h ahead: fresh stays fresh"),
    pytest.param(3600.0, 30.0, "stale: newest sample 30s old", id="operator 1 h ahead: stale stays stale"),
    pytest.param(-3600.0, 1.0, None, id="operator 1 h behind: fresh stays fresh"),
    pytest.param(-3600.0, 30.0, "stale: newest sample 30s old", id="operator 1 h behind: stale stays stale"),
    pytest.param(3600.0, 5.0, "partial scrape", id="operator 1 h ahead: a silent replica is still a partial scrape"),
]


@pytest.mark.parametrize(("skew", "age", "error"), SKEWS)
def test_prometheus_freshness_is_judged_on_prometheus_clock(skew: float, age: float, error: str | None) -> None:
    """``skew``: the operator's clock minus Prometheus'; ``age``: how old the newest sample is on
    Prometheus' clock (in the partial case, only replica ``b``'s: ``a`` stays fresh)."""
    store = ServiceCounters(MetricsSource.PROMETHEUS)
    now = PROM + skew  # the operator's clock at the pass; Prometheus' is PROM
    pods = [ServingPod("a", now - 600), ServingPod("b", now - 600)]  # warm 10 min ago, on the operator's clock
    partial = error == "partial scrape"
    store.serving(now - 1, pods, -skew)
    store.add("a", steady(PROM - 300, PROM - (1.0 if partial else age), 10))
    store.add("b", steady(PROM - 300, PROM - (30.0 if partial else age), 10))
    store.serving(now, pods, -skew)
    got = store.signals(now, 10.0, -skew)
    if error is None:
        assert got.ok, got.errors
        assert got.sample_age_s == pytest.approx(age)
        assert got.fleet is not None and got.fleet.window(10).arrival_rps == pytest.approx(20)
        assert got.p99_replicas == 2  # warm for 10 min on either clock
    else:
        assert not got.ok and any(e.startswith(error) for e in got.errors), got.errors
