"""The scaling decision: every rule a named case with a clock passed in.

Numbers are kept simple: a flat capacity of 10 rps per replica (round robin), SLO 100 ms, cold start 10 s,
tick 2 s (lead 12 s), and before any history the default headroom of 1.5. A first tick's arrivals are
its 2 s window's (the shortest window covering the tick).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from foresail.api.reasons import DecisionReason, Limit
from foresail.api.scalingpolicy import ScalingBehavior
from foresail.scaling.bursts import BurstTracker
from foresail.scaling.capacity import Calibration
from foresail.scaling.decide import DEFAULT_HEADROOM, Decision, DecisionState, Observation, ServiceSettings, apply_grant, decide
from foresail.scaling.signals import WINDOWS, FleetSignals, WindowSignals

CAL = Calibration(capacity_rps=10.0)
BEHAVIOR: dict[str, Any] = {"tick_seconds": 2, "budget_feedback": False}


def settings(min_r: int = 1, max_r: int = 50, **behavior: Any) -> ServiceSettings:
    b = ScalingBehavior.model_validate({**BEHAVIOR, **behavior}).resolve()
    return ServiceSettings(behavior=b, min_replicas=min_r, max_replicas=max_r, slo_p99_ms=100.0, fallback_replicas=None)


def sig(rate: float, *, r2: float | None = None, queued: float = 0.0, p99: float | None = 50.0, rejected: float = 0.0) -> FleetSignals:
    """Every window at ``rate`` (the 2 s one at ``r2``); ``rejected`` of the arrivals rejected; ``p99`` None: not measured."""

    def w(s: float, r: float) -> WindowSignals:
        return WindowSignals(s, r, r - rejected, rejected, 0.0, 5.0, p99)

    return FleetSignals(tuple(w(s, r2 if s == 2.0 and r2 is not None else rate) for s in WINDOWS), queued=queued, in_flight=queued)


def obs(signals: FleetSignals | None, ready: int, starting: int = 0, current: int | None = None, cal: Calibration = CAL) -> Observation:
    return Observation(signals, ready, starting, ready + starting if current is None else current, 10.0, cal)


@dataclass(frozen=True)
class Case:
    name: str
    steps: list[tuple[float, ServiceSettings, Observation]]  # (now, settings, observation) decided in turn
    replicas: int
    reason: DecisionReason
    limited_by: Limit | None = None
    prepare: Callable[[DecisionState], None] | None = None


def peaks(st: DecisionState) -> None:
    st.bursts = BurstTracker(busy=False, since=0.0, peaks=[60.0, 80.0, 100.0])  # quiet since 0; level (p75) 90 rps


def wanted_8_at_0(st: DecisionState) -> None:
    st.hold.add(0.0, 8, 900.0)


def wanted_8_at_0_with_long_gaps(st: DecisionState) -> None:
    wanted_8_at_0(st)
    st.hold.gaps = [40.0, 50.0, 60.0, 200.0]  # the longest 200 s: held 300 s


S = settings()
CASES = [
    # 3. plan: forecast x headroom through the capacity
    Case("steady demand, no history yet: 30 rps x 1.5 at 10 rps each", [(10.0, S, obs(sig(30.0), 3))], 5, DecisionReason.FORECAST_DEMAND),
    Case("forecast off: the base rate x the headroom", [(10.0, settings(forecast_enabled=False), obs(sig(30.0), 3))], 5,
         DecisionReason.BASE_DEMAND),
    Case("no load: the minimum", [(10.0, settings(min_r=2), obs(sig(0.0), 3))], 2, DecisionReason.FORECAST_DEMAND, Limit.MIN_REPLICAS),
    # 4. fast path
    Case("2 s arrivals beyond 150% of what 2 ready replicas serve: at once, x1.5, the queue drained in the lead",
         [(10.0, S, obs(sig(30.0, r2=100.0, queued=24.0), 2))], 16, DecisionReason.FAST_PATH),
    Case("starting replicas count as incoming capacity: no fast path",
         [(10.0, S, obs(sig(30.0, r2=100.0, queued=24.0), 2, starting=8))], 15, DecisionReason.FORECAST_DEMAND),
    Case("the fast path off: the forecast only", [(10.0, settings(fast_path_enabled=False), obs(sig(30.0, r2=100.0, queued=24.0), 2))],
         15, DecisionReason.FORECAST_DEMAND),
    Case("a burst after quiet: sized for the typical burst peak, not its first 2 s", [(10.0, S, obs(sig(2.0, r2=20.0), 1))], 9,
         DecisionReason.BURST_ONSET, prepare=peaks),
    Case("requests queued on a quiet fleet: a burst onset", [(10.0, S, obs(sig(0.0, r2=0.2, queued=3.0), 1))], 9,
         DecisionReason.BURST_ONSET, prepare=peaks),
    Case("rejections are arrivals: the fast path sees them", [(10.0, S, obs(sig(30.0, r2=100.0, queued=24.0, rejected=60.0), 2))],
         16, DecisionReason.FAST_PATH),
    # 5. the hold (rent or buy)
    Case("capacity wanted 5 s ago is kept through the cold start", [(5.0, S, obs(sig(20.0), 8))], 8, DecisionReason.IDLE_HOLD,
         prepare=wanted_8_at_0),
    Case("idle longer than the cold start: released (at most halved per tick)", [(11.0, S, obs(sig(20.0), 8))], 4,
         DecisionReason.FORECAST_DEMAND, Limit.MAX_SCALE_DOWN_RATE, prepare=wanted_8_at_0),
    Case("long gaps between bursts: held through 1.5x the longest", [(290.0, S, obs(sig(20.0), 8))], 8, DecisionReason.IDLE_HOLD,
         prepare=wanted_8_at_0_with_long_gaps),
    Case("... and released after it", [(301.0, S, obs(sig(20.0), 8))], 4, DecisionReason.FORECAST_DEMAND, Limit.MAX_SCALE_DOWN_RATE,
         prepare=wanted_8_at_0_with_long_gaps),
    Case("a lower gap quantile holds less", [(100.0, settings(idle_gap_quantile=0.5), obs(sig(20.0), 8))], 4,
         DecisionReason.FORECAST_DEMAND, Limit.MAX_SCALE_DOWN_RATE, prepare=wanted_8_at_0_with_long_gaps),
    Case("the hold never raises above the current replicas", [(5.0, S, obs(sig(20.0), 2))], 3, DecisionReason.FORECAST_DEMAND,
         prepare=wanted_8_at_0),
    # bounds change at once
    Case("minReplicas lowered: takes effect at once (the hold kept what was wanted, not the clamp)",
         [(0.0, settings(min_r=8), obs(sig(20.0), 8)), (2.0, settings(min_r=1, max_scale_down_rate=100), obs(sig(20.0), 8))], 3,
         DecisionReason.FORECAST_DEMAND),
    Case("maxReplicas lowered: at once", [(0.0, S, obs(sig(60.0), 9)), (2.0, settings(max_r=4), obs(sig(60.0), 9))], 4,
         DecisionReason.FORECAST_DEMAND, Limit.MAX_REPLICAS),
    # 6. rate limits
    Case("at most x2 per tick, and at least 4 more", [(10.0, settings(max_scale_up_rate=2), obs(sig(1000.0), 3))], 7,
         DecisionReason.FORECAST_DEMAND, Limit.MAX_SCALE_UP_RATE),
    # 1. signals missing
    Case("no signals: hold", [(10.0, S, obs(None, 4))], 4, DecisionReason.METRICS_UNAVAILABLE),
    Case("a NaN in a window: hold", [(10.0, S, obs(sig(math.nan), 4))], 4, DecisionReason.METRICS_UNAVAILABLE),
    Case("no 2 s window: hold", [(10.0, S, obs(FleetSignals(sig(5.0).windows[1:], 0.0, 0.0), 4))], 4, DecisionReason.METRICS_UNAVAILABLE),
    Case("an outage holds the count, and recovery does not scale down at once (issue 15, 1)",
         [(0.0, S, obs(sig(60.0), 10)), *[(2.0 * i, S, obs(None, 10)) for i in range(1, 301)], (602.0, S, obs(sig(40.0), 10))], 10,
         DecisionReason.IDLE_HOLD),
    Case("after an outage the hold runs from its end: still held a cold start after the last held tick",
         [(0.0, S, obs(sig(60.0), 10)), *[(2.0 * i, S, obs(None, 10)) for i in range(1, 301)], (602.0, S, obs(sig(40.0), 10)),
          (604.0, S, obs(sig(40.0), 10)), (608.0, S, obs(sig(40.0), 10))], 10, DecisionReason.IDLE_HOLD),
    Case("... and released once idle past it, to what recovery wanted (40 rps: 6)",
         [(0.0, S, obs(sig(60.0), 10)), *[(2.0 * i, S, obs(None, 10)) for i in range(1, 301)], (602.0, S, obs(sig(40.0), 10)),
          (612.0, S, obs(sig(20.0), 10))], 6, DecisionReason.IDLE_HOLD),
    # 2. no capacity known
    Case("no capacity known, p99 over the SLO with a queue: +50%", [(10.0, S, obs(sig(30.0, queued=5, p99=300.0), 4, cal=Calibration()))],
         6, DecisionReason.NO_CAPACITY_ESTIMATE),
    Case("no capacity known, within the SLO: hold", [(10.0, S, obs(sig(30.0), 4, cal=Calibration()))], 4, DecisionReason.NO_CAPACITY_ESTIMATE),
    # no p99 (no replica warm for a minute yet): unknown, neither 0 ms nor missing signals
    Case("no p99 yet: the plan still runs on the arrivals (not held)", [(10.0, S, obs(sig(30.0, p99=None), 3))], 5,
         DecisionReason.FORECAST_DEMAND),
    Case("no p99 yet, a burst: the fast path still acts", [(10.0, S, obs(sig(30.0, r2=100.0, queued=24.0, p99=None), 2))], 16,
         DecisionReason.FAST_PATH),
    Case("no capacity known, no p99 yet with a queue: hold (unknown is not over the SLO)",
         [(10.0, S, obs(sig(30.0, queued=5, p99=None), 4, cal=Calibration()))], 4, DecisionReason.NO_CAPACITY_ESTIMATE),
]  # fmt: skip


# the outer loop's measured share of late requests after ticks of 10 rps with these p99s (ms; SLO 100 ms)
LOOP_CASES = [
    pytest.param([50.0, 50.0, 50.0], 0.0, 0.0, id="measured within the SLO: on time"),
    pytest.param([300.0, 300.0, 300.0], 0.0, 100.0, id="measured over the SLO: late"),
    pytest.param([None, None, None], 0.0, None, id="no p99 in any window: unknown, not on time"),
    pytest.param([None, None, None], 1.0, 100.0, id="no p99 but rejections: late"),
    pytest.param([300.0, None, None], 0.0, 100.0, id="windows without a p99 do not dilute a measured miss"),
    pytest.param([50.0, None, 300.0], 0.0, 50.0, id="only measured windows count"),
]


@pytest.mark.parametrize(("p99s", "rejected", "late_percent"), LOOP_CASES)
def test_the_outer_loop_counts_only_windows_with_a_measurement(p99s: list[float | None], rejected: float, late_percent: float | None) -> None:
    st, s = DecisionState(), settings(budget_feedback=True)
    d = None
    for i, p99 in enumerate(p99s):
        d = decide(s, obs(sig(10.0, p99=p99, rejected=rejected), 3), st, 2.0 * i)
    assert d is not None
    if late_percent is None:
        assert d.measured_late_percent is None
    else:
        assert d.measured_late_percent == pytest.approx(late_percent, rel=0.05)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decide(case: Case) -> None:
    st = DecisionState()
    if case.prepare:
        case.prepare(st)
    d: Decision | None = None
    for now, s, o in case.steps:
        d = decide(s, o, st, now)
    assert d is not None
    assert (d.replicas, d.reason, d.limited_by) == (case.replicas, case.reason, case.limited_by), (case.name, d.message)


def test_the_fallback_scales_only_up_after_its_delay() -> None:
    s = replace(settings(), fallback_replicas=6, fallback_after_s=60.0)
    st = DecisionState()
    assert decide(s, obs(None, 2), st, 0.0).replicas == 2
    assert decide(s, obs(None, 2), st, 59.0).replicas == 2
    d = decide(s, obs(None, 2), st, 60.0)
    assert (d.replicas, d.reason, d.signals_ok) == (6, DecisionReason.METRICS_FALLBACK, False)
    assert decide(s, obs(None, 9), DecisionState(metrics_bad_since=0.0), 100.0).replicas == 9, "never down on missing metrics"


@pytest.mark.parametrize("restart_at", [pytest.param(2.0, id="restart early in the outage"), pytest.param(590.0, id="restart late in the outage")])
def test_an_outage_across_an_operator_restart_does_not_scale_down_at_recovery(restart_at: float) -> None:
    """The held count is in the state kept in status: a new leader (or a restart) mid-outage keeps holding it."""
    s, st = settings(), DecisionState()
    decide(s, obs(sig(60.0), 10), st, 0.0)
    t = 2.0
    while t <= 600.0:
        if t == restart_at:
            st = DecisionState.from_dict(st.to_dict())
        assert decide(s, obs(None, 10), st, t).replicas == 10
        t += 2.0
    d = decide(s, obs(sig(40.0), 10), st, 602.0)
    assert (d.replicas, d.reason) == (10, DecisionReason.IDLE_HOLD), d.message


def test_every_number_is_explained_in_the_message() -> None:
    st = DecisionState()
    st.hold.add(9.0, 8, 900.0)
    d = decide(settings(), obs(sig(30.0), 8), st, 10.0)
    assert d.reason == DecisionReason.IDLE_HOLD
    assert (d.forecast_rps, d.headroom, d.planned_rps, d.capacity_rps, d.hold_s) == (30.0, DEFAULT_HEADROOM, 45.0, 10.0, 10.0)
    for words in ("forecast 30.0 rps at now+12s", "x headroom 1.50 = 45.0 rps -> 5 at 10.0 rps/replica", "default headroom",
                  "holding 8: wanted 1s ago, released once idle 10s (the cold start)"):  # fmt: skip
        assert words in d.message, (words, d.message)


def test_rejected_windows_count_as_missed_in_the_outer_loop() -> None:
    st = DecisionState()
    s = settings(budget_feedback=True)
    decide(s, obs(sig(10.0), 3), st, 0.0)
    decide(s, obs(sig(10.0, rejected=1.0), 3), st, 2.0)
    assert st.loop.late > 0 and st.loop.predicted == 0


def test_a_clock_step_back_does_not_fail() -> None:
    st = DecisionState()
    decide(settings(), obs(sig(30.0), 3), st, 100.0)
    assert decide(settings(), obs(sig(30.0), 3), st, 50.0).replicas >= 1


def test_the_headroom_comes_from_the_history_once_there_is_enough() -> None:
    st, s = DecisionState(), settings()
    d = None
    for i in range(120):
        d = decide(s, obs(sig(40.0 + (7.0 if i % 3 else -7.0)), 6), st, 2.0 * i)
    assert d is not None and st.headroom is not None
    assert d.headroom == round(st.headroom.multiplier, 3) and d.headroom != DEFAULT_HEADROOM
    assert "replayed over" in d.message and "default headroom" not in d.message


def test_apply_grant_caps_and_says_why() -> None:
    d = Decision(8, DecisionReason.FORECAST_DEMAND, "forecast", True)
    capped = apply_grant(d, 5, "tenant limit")
    assert (capped.replicas, capped.limited_by) == (5, Limit.QUOTA)
    assert capped.message.endswith("limited by quota to 5: tenant limit")
    assert apply_grant(d, 10, "plenty") is d
