"""The scaling decision: tables of named cases with a clock passed in."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from foresail.api.reasons import DecisionReason, Limit
from foresail.api.scalingpolicy import ScalingBehavior
from foresail.scaling.decide import DecisionState, Observation, ServiceSettings, apply_grant, decide

BEHAVIOR = ScalingBehavior(forecast_enabled=False, headroom_percent=0, target_utilization_percent=100).resolve()


def settings(**kw: object) -> ServiceSettings:
    base = ServiceSettings(behavior=BEHAVIOR, min_replicas=1, max_replicas=50, slo_p99_ms=100.0)
    return replace(base, **kw)  # type: ignore[arg-type]


def obs(
    rps: float | None = 10.0,
    *,
    ready: int = 1,
    starting: int = 0,
    current: int | None = None,
    queue: float | None = 0.0,
    p99: float | None = 50.0,
    cold: float | None = 10.0,
) -> Observation:
    return Observation(
        arrival_rps=rps,
        queue=queue,
        p99_ms=p99,
        ready=ready,
        starting=starting,
        current=ready + starting if current is None else current,
        cold_start_s=cold,
    )


def state(cap: float | None = 10.0, learn: float = 0.0) -> DecisionState:
    """A decision state with a fixed capacity estimate (learning off unless asked for)."""
    st = DecisionState()
    st.capacity.estimate = cap
    st.capacity.learn = learn
    return st


@pytest.mark.parametrize(
    ("name", "o"),
    [
        ("missing arrival rate", obs(None, ready=4)),
        ("NaN p99", obs(p99=math.nan, ready=4)),
        ("infinite queue", obs(queue=math.inf, ready=4)),
        ("negative rate", obs(-1.0, ready=4)),
        ("missing queue", obs(queue=None, ready=4)),
    ],
)
def test_bad_metrics_hold_replicas(name: str, o: Observation) -> None:
    d = decide(settings(), o, state(), now=100.0)
    assert d.replicas == 4, name
    assert not d.signals_ok
    assert d.reason == DecisionReason.METRICS_UNAVAILABLE


def test_fallback_applies_only_upward_and_only_after_its_delay() -> None:
    st = state()
    s = settings(fallback_replicas=6, fallback_after_s=60)
    assert decide(s, obs(None, ready=2), st, now=0.0).replicas == 2
    assert decide(s, obs(None, ready=2), st, now=59.0).replicas == 2
    d = decide(s, obs(None, ready=2), st, now=60.0)
    assert (d.replicas, d.reason) == (6, DecisionReason.METRICS_FALLBACK)
    # a fallback below the current replicas never scales down
    st2 = state()
    assert decide(settings(fallback_replicas=1, fallback_after_s=0), obs(None, ready=8), st2, now=0.0).replicas == 8


@pytest.mark.parametrize(
    ("name", "rps", "cap", "util", "headroom", "want"),
    [
        ("exact fit", 40.0, 10.0, 100, 0, 4),
        ("target utilization", 40.0, 10.0, 50, 0, 8),
        ("headroom", 40.0, 10.0, 100, 50, 6),
        ("idle: at most halves per tick", 0.0, 10.0, 100, 0, 2),
    ],
)
def test_steady_demand(name: str, rps: float, cap: float, util: float, headroom: float, want: int) -> None:
    b = ScalingBehavior(
        forecast_enabled=False, headroom_percent=headroom, target_utilization_percent=util, scale_down_delay_seconds=0
    ).resolve()
    st = state(cap)
    d = decide(settings(behavior=b), obs(rps, ready=4), st, now=10.0)
    assert d.replicas == want, (name, d)


def test_scale_down_is_stabilized_over_the_delay_window() -> None:
    b = ScalingBehavior(
        forecast_enabled=False,
        headroom_percent=0,
        target_utilization_percent=100,
        scale_down_delay_seconds=300,
        stable_window_seconds=10,
    ).resolve()
    st = state(10.0)
    s = settings(behavior=b)
    assert decide(s, obs(80.0, ready=8), st, now=0.0).replicas == 8
    for t in range(5, 300, 5):
        assert decide(s, obs(10.0, ready=8), st, now=float(t)).replicas == 8, t
    assert decide(s, obs(10.0, ready=8), st, now=305.0).replicas < 8


def test_restart_keeps_stabilization() -> None:
    b = ScalingBehavior(
        forecast_enabled=False,
        headroom_percent=0,
        target_utilization_percent=100,
        scale_down_delay_seconds=300,
        stable_window_seconds=10,
    ).resolve()
    s = settings(behavior=b)
    st = state(10.0)
    decide(s, obs(80.0, ready=8), st, now=0.0)
    restored = DecisionState.from_dict(st.to_dict())  # the operator restarts: state comes back from status
    assert decide(s, obs(10.0, ready=8), restored, now=100.0).replicas == 8
    fresh = state(10.0)  # without it, it would drop at once
    assert decide(s, obs(10.0, ready=8), fresh, now=100.0).replicas < 8


def test_scale_up_rate_limit() -> None:
    b = ScalingBehavior(forecast_enabled=False, headroom_percent=0, target_utilization_percent=100, max_scale_up_rate=2).resolve()
    d = decide(settings(behavior=b), obs(1000.0, ready=3), state(10.0), now=0.0)
    assert d.replicas == 6
    assert d.limited_by == Limit.MAX_SCALE_UP_RATE


@pytest.mark.parametrize(
    ("name", "cap_grant", "want", "limit"), [("max replicas", None, 50, Limit.MAX_REPLICAS), ("quota grant", 12, 12, Limit.QUOTA)]
)
def test_bounds(name: str, cap_grant: int | None, want: int, limit: Limit) -> None:
    b = ScalingBehavior(
        forecast_enabled=False, headroom_percent=0, target_utilization_percent=100, max_scale_up_rate=100
    ).resolve()
    d = decide(settings(behavior=b), obs(10_000.0, ready=10), state(10.0), now=0.0)
    if cap_grant is not None:
        d = apply_grant(d, cap_grant, "tenant 'a' limit of 12 nvidia.com/gpu reached")
        assert d.message.endswith("limited by quota to 12: tenant 'a' limit of 12 nvidia.com/gpu reached")
    assert (d.replicas, d.limited_by) == (want, limit), name
    assert apply_grant(d, 60, "plenty") is d


def test_panic_on_p99_over_slo_never_scales_down_while_it_lasts() -> None:
    b = ScalingBehavior(
        forecast_enabled=False,
        headroom_percent=0,
        target_utilization_percent=100,
        stable_window_seconds=60,
        scale_down_delay_seconds=0,
    ).resolve()
    s = settings(behavior=b)
    st = state(10.0)
    d = decide(s, obs(40.0, ready=4, queue=50, p99=400.0), st, now=0.0)
    assert d.panic
    assert d.replicas >= 4
    # demand collapses, but panic lasts a stable window: no scale-down
    d2 = decide(s, obs(1.0, ready=d.replicas), st, now=30.0)
    assert d2.panic
    assert d2.replicas >= d.replicas
    d3 = decide(s, obs(1.0, ready=d.replicas), st, now=61.0)
    assert not d3.panic
    assert d3.replicas < d.replicas


def test_starting_replicas_count_so_a_spike_does_not_launch_a_second_wave() -> None:
    b = ScalingBehavior(
        forecast_enabled=False, headroom_percent=0, target_utilization_percent=100, max_scale_up_rate=100, stable_window_seconds=6
    ).resolve()
    s = settings(behavior=b)
    st = state(10.0)
    first = decide(s, obs(100.0, ready=2, queue=20), st, now=0.0)
    # next tick: the new replicas are starting, the queue is still there
    second = decide(s, obs(100.0, ready=2, starting=first.replicas - 2, queue=25), st, now=5.0)
    assert second.replicas == first.replicas


def test_forecast_scales_ahead_of_a_ramp() -> None:
    ahead = ScalingBehavior(
        forecast_enabled=True, headroom_percent=0, target_utilization_percent=100, forecast_quantile=0.9, stable_window_seconds=30
    ).resolve()
    behind = ScalingBehavior(
        forecast_enabled=False, headroom_percent=0, target_utilization_percent=100, stable_window_seconds=30
    ).resolve()
    sa, sb = state(10.0), state(10.0)
    for t in range(0, 120, 5):
        rps = 10.0 + t  # +1 rps per second
        da = decide(settings(behavior=ahead), obs(rps, ready=5, cold=60.0), sa, now=float(t))
        db = decide(settings(behavior=behind), obs(rps, ready=5, cold=60.0), sb, now=float(t))
    assert da.forecast_rps is not None and da.forecast_rps > 115 + 50  # planning for ~60 s ahead
    assert da.replicas > db.replicas


def test_capacity_is_learned_from_pressure() -> None:
    st = state(None, learn=0.2)
    s = settings()
    decide(s, obs(30.0, ready=1, queue=5, p99=300.0), st, now=0.0)
    assert st.capacity.estimate is None, "one look at a queue is no evidence"
    decide(s, obs(30.0, ready=1, queue=10, p99=300.0), st, now=1.0)
    assert st.capacity.estimate == pytest.approx(30.0)
    for t in range(1, 20):
        decide(s, obs(30.0, ready=2, queue=0, p99=20.0), st, now=float(t))
    assert st.capacity.estimate == pytest.approx(30.0)  # 15 rps per replica says nothing new


def test_a_draining_backlog_does_not_lower_capacity() -> None:
    st = state(40.0, learn=0.2)
    st.capacity.prior = 40.0
    s = settings()
    for t, q in enumerate([900.0, 700.0, 400.0, 100.0]):  # p99 is bad, but the queue shrinks
        decide(s, obs(30.0, ready=10, queue=q, p99=5000.0), st, now=float(t))
    assert st.capacity.estimate == 40.0
    for t, q in enumerate([10.0, 30.0, 60.0, 120.0], start=10):  # the queue grows at 30 rps per replica
        decide(s, obs(300.0, ready=10, queue=q, p99=500.0), st, now=float(t))
    assert st.capacity.estimate is not None and 20.0 <= st.capacity.estimate < 40.0
