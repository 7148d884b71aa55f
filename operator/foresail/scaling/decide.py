"""The scaling decision (pure): metric snapshot -> forecast -> capacity -> desired replicas, and why.

``decide(settings, obs, state, now)`` never reads a clock and never acts; it updates ``state`` (the
windows, the forecaster, the capacity estimate) and returns a ``Decision``. The order of rules:

1. Signals missing, NaN or infinite (stale ones arrive as missing: the Prometheus client judges
   staleness): hold the current replicas (never scale down on them); after ``fallback_after_s`` scale
   *up* to ``fallback_replicas`` if that is more. Reasons ``MetricsUnavailable``, ``MetricsFallback``.
2. Demand: the average arrival rate over the stable window (``stable``), and the forecaster's upper
   bound at ``now + lead`` (lead = measured cold start p90 + one tick) when forecasting is on; the
   replicas are planned for the higher of the two (``planned``).
3. Capacity per replica at the SLO (online estimate, prior from calibration); plan at the target
   utilization, plus headroom; a queue backlog adds the replicas that drain it within the lead time,
   counting replicas already starting as capacity on the way (so a spike does not launch a second wave).
4. Panic: when demand over the panic window exceeds ``panic_threshold`` x ready capacity, or p99 is over
   the SLO with a queue, enter panic for a stable window: size for the panic demand, never scale down.
5. Safety: scale-up/down rate limits per tick, scale-down stabilization (the highest recommendation of the
   delay window), then ``[min, max]``.
6. The GPU budget: the tenant arbiter sees every service's decision at once and grants replicas;
   ``apply_grant`` caps a decision to its grant (below minReplicas too: quota is the harder limit).

A decision's ``reason`` names the rule that set the replicas (``DecisionReason``), its ``message``
gives the figures, and ``limited_by`` the bound or rate limit that capped it (``Limit``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from foresail.api.reasons import DecisionReason, Limit
from foresail.api.scalingpolicy import ResolvedBehavior
from foresail.scaling.forecast import Forecaster
from foresail.scaling.windows import TimeWindow

__all__ = [
    "CapacityEstimator",
    "Decision",
    "DecisionState",
    "Observation",
    "ServiceSettings",
    "apply_grant",
    "decide",
]


@dataclass
class CapacityEstimator:
    """Requests/s one replica serves within the SLO, learned from observed throughput vs p99.

    Downward only on evidence of saturation: p99 over the SLO while the queue *grows* at this
    throughput (a backlog being drained says nothing about capacity). Upward when replicas served more
    than the estimate comfortably within the SLO. With a prior (calibration or spec hint) the estimate
    stays within [prior / 2, 2 x prior].
    """

    estimate: float | None = None
    learn: float = 0.2
    prior: float | None = None
    last_queue: float | None = None

    def observe(self, per_replica_rps: float, p99_ms: float, slo_ms: float, queue_per_replica: float) -> None:
        growing = self.last_queue is not None and queue_per_replica > self.last_queue
        self.last_queue = queue_per_replica
        if per_replica_rps <= 0 or not math.isfinite(per_replica_rps):
            return
        if self.estimate is None:
            if p99_ms <= slo_ms or not growing:
                return  # a lightly loaded replica says little about its limit; wait for a prior or pressure
            self.estimate = per_replica_rps
            return
        if p99_ms > slo_ms and queue_per_replica > 0.5 and growing:
            # over the SLO with a growing queue at this throughput: the limit is below it
            self.estimate += self.learn * (min(self.estimate, per_replica_rps * 0.95) - self.estimate)
        elif p99_ms <= 0.8 * slo_ms and per_replica_rps > self.estimate:
            # served more than we thought, comfortably within the SLO
            self.estimate += self.learn * (per_replica_rps - self.estimate)
        if self.prior:
            self.estimate = min(max(self.estimate, self.prior / 2), self.prior * 2)


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
    """What the autoscaler sees of one service at one tick (None: that signal is unavailable)."""

    arrival_rps: float | None
    queue: float | None
    p99_ms: float | None
    ready: int  # replicas serving (warm)
    starting: int  # replicas that exist, or are wanted, and do not serve yet
    current: int  # the Deployment's replicas
    cold_start_s: float | None = None  # measured create-to-warm p90


@dataclass
class DecisionState:
    stable: TimeWindow = field(default_factory=lambda: TimeWindow(60))
    panic_window: TimeWindow = field(default_factory=lambda: TimeWindow(6))
    recommendations: TimeWindow = field(default_factory=lambda: TimeWindow(300))
    forecaster: Forecaster = field(default_factory=Forecaster)
    capacity: CapacityEstimator = field(default_factory=CapacityEstimator)
    panic_until: float | None = None
    metrics_bad_since: float | None = None

    def to_dict(self) -> dict[str, object]:
        """What survives an operator restart (kept in status): stabilization, panic, capacity."""
        return {
            "recommendations": [[round(t, 3), v] for t, v in self.recommendations.samples],
            "panicUntil": self.panic_until,
            "capacityRps": self.capacity.estimate,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> DecisionState:
        st = cls()
        recs = data.get("recommendations") or []
        assert isinstance(recs, list)
        st.recommendations.samples = [(float(t), float(v)) for t, v in recs]
        pu = data.get("panicUntil")
        st.panic_until = float(pu) if isinstance(pu, int | float) else None
        cap = data.get("capacityRps")
        st.capacity.estimate = float(cap) if isinstance(cap, int | float) else None
        return st


@dataclass(frozen=True)
class Decision:
    replicas: int
    reason: DecisionReason
    message: str
    signals_ok: bool
    panic: bool = False
    stable_rps: float | None = None  # average arrival rate over the stable window
    forecast_rps: float | None = None
    capacity_rps: float | None = None
    limited_by: Limit | None = None


def _valid(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x >= 0


def _clamp(n: int, s: ServiceSettings) -> tuple[int, Limit | None]:
    if n > s.max_replicas:
        return s.max_replicas, Limit.MAX_REPLICAS
    if n < s.min_replicas:
        return s.min_replicas, Limit.MIN_REPLICAS
    return n, None


def decide(s: ServiceSettings, obs: Observation, state: DecisionState, now: float) -> Decision:
    b = s.behavior
    state.stable.span, state.panic_window.span = b.stable_window_seconds, b.panic_window_seconds
    state.recommendations.span = max(b.scale_down_delay_seconds, 1.0)
    current = max(obs.current, 0)

    # 1. signals
    ok = _valid(obs.arrival_rps) and _valid(obs.queue) and _valid(obs.p99_ms)
    if not ok:
        state.metrics_bad_since = now if state.metrics_bad_since is None else state.metrics_bad_since
        hold, why, msg = current, DecisionReason.METRICS_UNAVAILABLE, "holding replicas"
        if s.fallback_replicas is not None and now - state.metrics_bad_since >= s.fallback_after_s and s.fallback_replicas > hold:
            hold, why = s.fallback_replicas, DecisionReason.METRICS_FALLBACK
            msg = f"metrics unavailable for {now - state.metrics_bad_since:.0f}s: fallback up to {s.fallback_replicas}"
        n, limit = _clamp(hold, s)
        n = max(n, current) if limit != Limit.MAX_REPLICAS else n  # never scale down on missing metrics
        return Decision(n, why, msg, signals_ok=False, limited_by=limit)
    state.metrics_bad_since = None
    assert obs.arrival_rps is not None and obs.queue is not None and obs.p99_ms is not None

    # 2. demand and forecast
    state.stable.add(now, obs.arrival_rps)
    state.panic_window.add(now, obs.arrival_rps)
    state.forecaster.observe(now, obs.arrival_rps)
    stable = state.stable.average(now) or 0.0
    panic_demand = state.panic_window.average(now) or 0.0
    lead = (obs.cold_start_s or 0.0) + b.tick_seconds
    forecast = state.forecaster.upper(now, lead, b.forecast_quantile, b.tick_seconds) if b.forecast_enabled else None
    planned = max(stable, forecast or 0.0)

    # 3. capacity
    if obs.ready > 0:
        state.capacity.observe(obs.arrival_rps / obs.ready, obs.p99_ms, s.slo_p99_ms, obs.queue / obs.ready)
    cap = state.capacity.estimate
    over_slo = obs.p99_ms > s.slo_p99_ms and obs.queue > 0
    panic = state.panic_until is not None and now < state.panic_until
    reasons: list[str] = []
    if cap is None or cap <= 0:
        # no capacity estimate yet: feedback only
        why = DecisionReason.NO_CAPACITY_ESTIMATE
        want = math.ceil(current * 1.5) if over_slo else current
        reasons.append("no capacity estimate yet: " + ("p99 over SLO, +50%" if over_slo else "holding"))
    else:
        per = cap * b.target_utilization_percent / 100.0
        want = math.ceil(planned * (1 + b.headroom_percent / 100.0) / per - 1e-9) if planned > 0 else 0
        by_forecast = forecast is not None and forecast >= stable
        why = DecisionReason.FORECAST_DEMAND if by_forecast else DecisionReason.STABLE_DEMAND
        reasons.append(f"{'forecast' if by_forecast else 'stable demand'} {planned:.1f} rps / {per:.1f} rps per replica")
        if obs.queue > 0 and lead > 0:
            incoming = (obs.ready + obs.starting) * cap
            drain = obs.queue / lead
            extra = math.ceil(max(0.0, planned + drain - incoming) / cap - 1e-9)
            if extra > 0 and obs.ready + obs.starting + extra > want:
                want = obs.ready + obs.starting + extra
                why = DecisionReason.QUEUE_BACKLOG
                reasons.append(f"queue {obs.queue:.0f} drained within {lead:.0f}s")
        # 4. panic
        ready_cap = max(obs.ready, 1) * cap
        if panic_demand >= ready_cap * b.panic_threshold_percent / 100.0 or over_slo:
            state.panic_until = now + b.stable_window_seconds
            panic = True
        if panic:
            panic_want = math.ceil(panic_demand / per - 1e-9)
            want = max(want, panic_want, current)
            why = DecisionReason.PANIC
            reasons.append(f"panic: {panic_demand:.1f} rps over the panic window" + (", p99 over SLO" if over_slo else ""))

    # 5. safety: rate limits, stabilization, bounds
    up_limit = max(current + 1, math.ceil(current * b.max_scale_up_rate))
    down_limit = math.floor(current / b.max_scale_down_rate)
    limited: Limit | None = None
    if want > up_limit:
        want, limited = up_limit, Limit.MAX_SCALE_UP_RATE
    if want < down_limit:
        want, limited = down_limit, Limit.MAX_SCALE_DOWN_RATE
    state.recommendations.add(now, float(want))
    if want < current:
        stabilized = int(state.recommendations.maximum(now) or want)
        if stabilized > want:
            reasons.append(f"scale-down stabilized at {min(stabilized, current)} over {b.scale_down_delay_seconds:.0f}s")
            want = min(stabilized, current)
            why = DecisionReason.SCALE_DOWN_STABILIZED
    n, bound = _clamp(want, s)
    limited = bound or limited
    if bound:
        reasons.append(f"limited by {bound}")
    return Decision(
        replicas=n,
        reason=why,
        message="; ".join(reasons),
        signals_ok=True,
        panic=panic,
        stable_rps=round(stable, 3),
        forecast_rps=None if forecast is None else round(forecast, 3),
        capacity_rps=None if cap is None else round(cap, 3),
        limited_by=limited,
    )


def apply_grant(d: Decision, granted: int, why: str) -> Decision:
    """Cap a decision to the replicas the tenant arbiter grants."""
    if d.replicas <= granted:
        return d
    return replace(d, replicas=granted, message=f"{d.message}; limited by quota to {granted}: {why}", limited_by=Limit.QUOTA)
