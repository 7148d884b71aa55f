"""The scaling decision (pure): fleet signals -> capacity table, forecast, headroom, fast path, hold -> replicas.

``decide(settings, obs, state, now)`` never reads a clock and never acts; it updates ``state`` and returns
a ``Decision`` whose message and figures explain every number. The rules, in order:

1. **Signals missing** (None, NaN, infinite; stale ones arrive as None: their producer judges staleness):
   hold the current replicas, never scale down; after ``fallback_after_s`` scale *up* to
   ``fallback_replicas`` if that is more. The held count is recorded in the hold window, so the first
   tick after a long outage cannot scale down at once. Reasons ``MetricsUnavailable``, ``MetricsFallback``.
2. **Capacity** per replica at the SLO from the calibration, by replica count (``scaling.capacity``); the
   only online correction is the saturated-throughput ratio, learned while the replicas are saturated.
   Without a calibration or a capacity per replica: feedback on p99 only (``NoCapacityEstimate``).
3. **Plan**: the forecast at ``now + lead`` (lead = cold start p90 + one tick; the base rate with the
   forecast off) times the headroom; the forecaster's time constant, the headroom, the idle hold and the
   burst level are the cheapest combination that, replayed over the service's own recent history, keeps
   late requests within the error budget (``scaling.budget``); the replicas that serve it.
4. **Fast path** on the raw 2 s window: a burst onset after quiet (or requests queued on a quiet fleet) is
   sized at once for the burst level: the policy's quantile of past burst peaks, or the higher one the
   budget chose (``BurstOnset``). 2 s arrivals beyond ``fast_path_percent`` of what the ready *and
   starting* replicas serve (beyond 100% for a lead after that, and while more than a second of their
   work is queued) are sized for at once, times the headroom, with the queue drained within the lead
   (``FastPath``); the forecasters' level is re-anchored on the 10 s arrivals (a step, not a 2 s spike).
5. **Hold** (rent or buy): the most replicas wanted within the hold stay (``IdleHold``): capacity is
   released only once idle for longer than max(cold start, 1.5 x the learned quantile of the gaps after
   which a burst onset wanted capacity again: the next gap may be longer than any seen), or the 2 or 4
   times that or ``max_idle_hold_seconds`` when the
   budget finds that cheaper (bursts after long gaps), at most ``max_idle_hold_seconds``. The window keeps what was wanted before the bounds, so
   a changed minReplicas or maxReplicas applies at once.
6. **Safety**: scale-up/down rate limits per tick, then ``[min, max]``; ``apply_grant`` caps a decision
   to the tenant arbiter's grant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from foresail.api.reasons import DecisionReason, Limit
from foresail.api.scalingpolicy import ResolvedBehavior
from foresail.scaling.budget import LOAD_CAP, Choice, headroom
from foresail.scaling.capacity import Calibration, CapacitySource, CapacityTable, capacity_table
from foresail.scaling.forecast import TAUS
from foresail.scaling.signals import FleetSignals, WindowSignals
from foresail.scaling.state import DecisionState

__all__ = ["DEFAULT_HEADROOM", "Decision", "DecisionState", "Observation", "ServiceSettings", "apply_grant", "decide"]

DEFAULT_HEADROOM = 1.5  # before the history can size one
HEADROOM_EVERY_S = 60.0  # the replay is repeated at most this often
HOLD_STEPS = (1, 2, 4)  # holds the replay tries: the rule's, 2 and 4 times it, and the longest allowed
GAP_MARGIN = 1.5  # the rule holds through 1.5 times the learned gap: the next gap may be longer than any seen


@dataclass(frozen=True)
class ServiceSettings:
    """A service's scaling settings: its resolved behaviour, bounds, SLO and fallback."""

    behavior: ResolvedBehavior
    min_replicas: int
    max_replicas: int
    slo_p99_ms: float
    fallback_replicas: int | None = None
    fallback_after_s: float = 60.0


@dataclass(frozen=True)
class Observation:
    """What the autoscaler sees of one service at one tick."""

    signals: FleetSignals | None  # None: unavailable (missing, stale, broken)
    ready: int  # replicas serving (warm)
    starting: int  # replicas that exist, or are wanted, and do not serve yet
    current: int  # the Deployment's replicas
    cold_start_s: float | None = None  # measured create-to-warm p90
    calibration: Calibration = field(default_factory=Calibration)


@dataclass(frozen=True)
class Decision:
    replicas: int
    reason: DecisionReason
    message: str
    signals_ok: bool
    limited_by: Limit | None = None
    base_rps: float | None = None
    forecast_rps: float | None = None
    lead_s: float | None = None
    headroom: float | None = None
    planned_rps: float | None = None
    budget_percent: float | None = None
    late_floor_percent: float | None = None
    measured_late_percent: float | None = None
    capacity_rps: float | None = None
    capacity_source: CapacitySource | None = None
    capacity_ratio: float | None = None
    fast_rps: float | None = None
    burst_rps: float | None = None
    hold_s: float | None = None


def _windows(sig: FleetSignals | None) -> tuple[WindowSignals, WindowSignals] | None:
    """The 2 s and 10 s windows when every figure is a finite number, else None (a p99 may be None: not
    measured yet, which is unknown, not missing signals)."""
    if sig is None:
        return None
    try:
        w2, w10 = sig.window(2.0), sig.window(10.0)
    except KeyError:
        return None
    nums = [sig.queued, sig.in_flight, *(getattr(w, f) for w in sig.windows for f in (
        "arrival_rps", "completion_rps", "rejection_rps", "queue_growth_rps", "mean_queue_wait_ms"))]  # fmt: skip
    nums += [w.p99_ms for w in sig.windows if w.p99_ms is not None]
    return (w2, w10) if all(math.isfinite(x) for x in nums) else None


def _missed(w: WindowSignals, slo_ms: float) -> bool | None:
    """Whether a window missed the SLO: rejections, or a p99 over it; None (unknown) without a p99."""
    if w.rejection_rps > 0:
        return True
    return None if w.p99_ms is None else w.p99_ms > slo_ms


def _rate_over(sig: FleetSignals, dt: float) -> float:
    """Arrivals per second over the shortest window that covers the last ``dt`` seconds."""
    ws = sorted(sig.windows, key=lambda w: w.window_s)
    w = next((w for w in ws if w.window_s >= dt - 1e-9), ws[-1])
    return max(w.arrival_rps, 0.0)


def _clamp(n: int, s: ServiceSettings) -> tuple[int, Limit | None]:
    if n > s.max_replicas:
        return s.max_replicas, Limit.MAX_REPLICAS
    if n < s.min_replicas:
        return s.min_replicas, Limit.MIN_REPLICAS
    return n, None


def _held(s: ServiceSettings, obs: Observation, state: DecisionState, now: float) -> Decision:
    """Rule 1: signals unavailable."""
    current = max(obs.current, 0)
    state.metrics_bad_since = now if state.metrics_bad_since is None else state.metrics_bad_since
    out, why, msg = current, DecisionReason.METRICS_UNAVAILABLE, "holding replicas"
    down_for = now - state.metrics_bad_since
    if s.fallback_replicas is not None and down_for >= s.fallback_after_s and s.fallback_replicas > out:
        out, why = s.fallback_replicas, DecisionReason.METRICS_FALLBACK
        msg = f"metrics unavailable for {down_for:.0f}s: fallback up to {s.fallback_replicas}"
    state.hold.add(now, out, s.behavior.max_idle_hold_seconds)  # recovery must not scale down at once
    n, limit = _clamp(out, s)
    n = max(n, current) if limit != Limit.MAX_REPLICAS else n  # never down on missing metrics
    return Decision(n, why, msg + (f"; limited by {limit}" if limit else ""), signals_ok=False, limited_by=limit)


def _feedback(s: ServiceSettings, obs: Observation, w10: WindowSignals, queued: float) -> Decision:
    """Rule 2 without a capacity: +50% while p99 is over the SLO with a queue, otherwise hold (a p99 not
    measured yet is not over it)."""
    current = max(obs.current, 0)
    over = w10.p99_ms is not None and w10.p99_ms > s.slo_p99_ms and queued > 0
    want = math.ceil(max(current, 1) * 1.5) if over else current
    n, limit = _clamp(want, s)
    msg = "no calibration or capacityPerReplicaRps: " + ("p99 over the SLO with a queue, +50%" if over else "holding")
    return Decision(n, DecisionReason.NO_CAPACITY_ESTIMATE, msg, True, limited_by=limit, capacity_source=CapacitySource.NONE)


@dataclass(frozen=True)
class _Plan:
    """Rule 3's figures."""

    base: float
    forecast: float
    trend: float
    tau_s: float
    lead: float
    multiplier: float
    hold_s: float
    rule_s: float  # the rent-or-buy rule's hold
    burst: float | None  # the rate a burst onset is sized for
    budget: float


def _plan(s: ServiceSettings, state: DecisionState, table: CapacityTable, rate: float, cold: float, now: float) -> _Plan:
    """Rule 3: the forecast, and the headroom, hold and burst level the budget's replay chooses."""
    b = s.behavior
    lead = cold + b.tick_seconds
    state.observe(now, rate)
    gap = state.hold.gap(b.idle_gap_quantile)
    rule_s = min(max(cold, GAP_MARGIN * (gap or 0.0)), b.max_idle_hold_seconds)
    budget = b.error_budget_percent / 100.0 * (state.loop.factor if b.budget_feedback else 1.0)
    least = state.bursts.level(b.burst_quantile)
    if state.headroom_at is None or now - state.headroom_at >= HEADROOM_EVERY_S or now < state.headroom_at:
        holds = sorted({*(min(rule_s * k, b.max_idle_hold_seconds) for k in HOLD_STEPS), max(b.max_idle_hold_seconds, rule_s)})
        levels = sorted({lv for q in {b.burst_quantile, max(b.burst_quantile, 0.9), 1.0} if (lv := state.bursts.level(q))}) or [0.0]
        choices = [Choice(tau, h, lv) for tau in TAUS for lv in levels for h in holds]
        fresh = headroom(state.history, table, budget, lead, cold, choices, s.slo_p99_ms / 1000.0, b.forecast_enabled)
        if fresh is not None:
            state.headroom, state.headroom_at = fresh, now
    hr = state.headroom
    f = state.forecaster(hr.tau_s if hr is not None else TAUS[1])
    base, fc = f.at(now, 0.0, trend=False) or 0.0, f.at(now, lead, trend=b.forecast_enabled) or 0.0
    if hr is None:
        return _Plan(base, fc, f.trend, f.tau_s, lead, DEFAULT_HEADROOM, rule_s, rule_s, least, budget)
    hold = max(rule_s, min(hr.hold_s, b.max_idle_hold_seconds))
    burst = max(least, hr.burst_rps) if least is not None else None
    return _Plan(base, fc, f.trend, f.tau_s, lead, hr.multiplier, hold, rule_s, burst, budget)


def _limits(s: ServiceSettings, want: int, current: int, reasons: list[str]) -> tuple[int, Limit | None]:
    """Rule 6: rate limits per tick, then the bounds."""
    b = s.behavior
    up_limit = max(current + 4, math.ceil(current * b.max_scale_up_rate))
    down_limit = math.floor(current / b.max_scale_down_rate)
    limited: Limit | None = None
    if want > up_limit:
        want, limited = up_limit, Limit.MAX_SCALE_UP_RATE
    if want < down_limit:
        want, limited = down_limit, Limit.MAX_SCALE_DOWN_RATE
    n, bound = _clamp(want, s)
    if bound or limited:
        reasons.append(f"limited by {bound or limited}")
    return n, bound or limited


def decide(s: ServiceSettings, obs: Observation, state: DecisionState, now: float) -> Decision:
    b = s.behavior
    current = max(obs.current, 0)
    wins = _windows(obs.signals)
    if wins is None or obs.signals is None:
        return _held(s, obs, state, now)
    state.metrics_bad_since = None
    sig, (w2, w10) = obs.signals, wins
    dt = now - state.last_t if state.last_t is not None and now > state.last_t else b.tick_seconds
    state.last_t = now
    rate = _rate_over(sig, dt)
    arrivals_2s = max(w2.arrival_rps, 0.0)

    # 2. capacity
    cal = obs.calibration
    state.saturation.observe(cal, obs.ready, state.last_ready, sig.in_flight, w2.queue_growth_rps, w2.completion_rps)
    table = capacity_table(cal, s.slo_p99_ms, max(s.max_replicas, current, obs.ready + obs.starting, 1), state.saturation.ratio)
    if table is None:
        return _feedback(s, obs, w10, sig.queued)

    # 3. forecast, headroom, hold and burst level from the budget
    p = _plan(s, state, table, rate, max(obs.cold_start_s or 0.0, 0.0), now)

    # 4. fast path on the raw 2 s window
    quiet_rps = b.quiet_percent / 100.0 * table.single
    onset = state.bursts.observe(now, arrivals_2s, sig.queued, quiet_rps, max(b.burst_onset_percent / 100.0 * table.single, quiet_rps))
    incoming = float(table.fleet_rps(obs.ready + obs.starting))
    fast_rps, fast_why, shift = 0.0, None, 0.0
    if b.fast_path_enabled and onset:
        fast_rps, fast_why = max(arrivals_2s, p.burst or 0.0), DecisionReason.BURST_ONSET
    else:
        # armed for a lead after a trigger, and while more than a second of the incoming capacity's work is queued
        armed = (state.fast_until is not None and state.fast_until >= now > state.fast_until - 2 * p.lead) or sig.queued > incoming
        demand = max(p.multiplier, 1.0) * arrivals_2s + sig.queued / p.lead
        if b.fast_path_enabled and (arrivals_2s > incoming * b.fast_path_percent / 100.0 or (armed and demand > incoming)):
            fast_rps, fast_why = demand, DecisionReason.FAST_PATH
            state.fast_until = now + p.lead if not armed else state.fast_until
            shift = max(w10.arrival_rps, 0.0)  # the base rate stepped: re-anchor the level on the 10 s arrivals
            for f in state.forecasters:
                f.shift(shift)
    state.history.add(now, rate, arrivals_2s if onset and b.fast_path_enabled else 0.0,
                      fast_rps if fast_why == DecisionReason.FAST_PATH else 0.0, shift, b.history_seconds)  # fmt: skip
    if b.budget_feedback:
        missed = _missed(w10, s.slo_p99_ms)  # None: no p99 yet, the window counts neither way
        served = float(table.fleet_rps(state.last_ready if state.last_ready is not None else obs.ready))
        load = rate / served if served > 0 else LOAD_CAP
        state.loop.observe(now, rate * dt, missed, load, s.slo_p99_ms / 1000.0, b.error_budget_percent / 100.0, b.history_seconds)
    state.last_ready = obs.ready

    planned = p.multiplier * p.forecast
    want_plan = int(table.replicas_for(planned))
    want_fast = int(table.replicas_for(fast_rps))
    want = max(want_plan, want_fast)
    why = DecisionReason.FORECAST_DEMAND if b.forecast_enabled else DecisionReason.BASE_DEMAND
    hr = state.headroom
    reasons = [
        f"{'forecast' if b.forecast_enabled else 'base rate'} {p.forecast:.1f} rps at now+{p.lead:.0f}s (base {p.base:.1f}, trend "
        f"{p.trend:+.2f} rps/s over {p.tau_s:g}s) x headroom {p.multiplier:.2f} = {planned:.1f} rps -> {want_plan} at "
        f"{table.at(want_plan):.1f} rps/replica"
        + (f" (budget {100 * p.budget:.2f}%, replayed over {hr.span_s:.0f}s: {100 * hr.late_share:.2f}% late, floor {100 * hr.floor:.2f}%)"
           if hr is not None else " (default headroom: too little history yet)")
    ]  # fmt: skip
    if fast_why is not None and want_fast > want_plan:
        why = fast_why
        reasons.append(
            f"burst onset after quiet: sized for {fast_rps:.1f} rps (2 s arrivals {arrivals_2s:.1f}, burst level "
            + (f"{p.burst:.1f}) -> {want_fast}" if p.burst is not None else f"unknown) -> {want_fast}")
            if fast_why == DecisionReason.BURST_ONSET
            else f"2 s arrivals {arrivals_2s:.1f} rps beyond {b.fast_path_percent:g}% of the {obs.ready} ready + {obs.starting} "
            f"starting replicas' {incoming:.1f} rps (beyond 100% within a lead of that or with a backlog): sized for them x headroom and "
            f"the {sig.queued:.0f} queued drained within the {p.lead:.0f}s lead -> {want_fast}"
        )

    # 5. the hold: release only capacity idle for longer
    onset_sized = fast_why == DecisionReason.BURST_ONSET and want_fast > want_plan
    state.hold.add(now, want, b.max_idle_hold_seconds, 1.5 * b.tick_seconds if onset_sized else None)
    held = state.hold.most(now, p.hold_s)
    if held is not None and min(held[0], current) > want:
        want = min(held[0], current)
        why = DecisionReason.IDLE_HOLD
        basis = f"the {b.idle_gap_quantile:g} quantile of gaps between bursts" if p.rule_s > max(obs.cold_start_s or 0.0, 0.0) else "the cold start"
        basis += f", {p.hold_s / max(p.rule_s, 1e-9):.1f}x that by the budget" if p.hold_s > p.rule_s * 1.01 else ""
        reasons.append(f"holding {want}: wanted {now - held[1]:.0f}s ago, released once idle {p.hold_s:.0f}s ({basis})")

    # 6. safety
    n, limited = _limits(s, want, current, reasons)
    return Decision(
        replicas=n,
        reason=why,
        message="; ".join(reasons),
        signals_ok=True,
        limited_by=limited,
        base_rps=round(p.base, 3),
        forecast_rps=round(p.forecast, 3),
        lead_s=round(p.lead, 2),
        headroom=round(p.multiplier, 3),
        planned_rps=round(planned, 3),
        budget_percent=round(100 * p.budget, 4),
        late_floor_percent=None if hr is None else round(100 * hr.floor, 4),
        measured_late_percent=None if state.loop.measured is None else round(100 * state.loop.measured, 4),
        capacity_rps=round(table.at(max(n, 1)), 3),
        capacity_source=cal.source,
        capacity_ratio=round(state.saturation.ratio, 4),
        fast_rps=round(fast_rps, 3) if fast_why is not None else None,
        burst_rps=None if p.burst is None else round(p.burst, 3),
        hold_s=round(p.hold_s, 2),
    )


def apply_grant(d: Decision, granted: int, why: str) -> Decision:
    """Cap a decision to the replicas the tenant arbiter grants."""
    if d.replicas <= granted:
        return d
    return replace(d, replicas=granted, message=f"{d.message}; limited by quota to {granted}: {why}", limited_by=Limit.QUOTA)

