"""What the autoscaler writes into an InferenceService's status (pure; ``now`` is an argument).

The autoscaler owns ``desiredReplicas``, ``recommendation``, ``observed``, ``scalingState``, ``quota``
and the conditions ``MetricsAvailable``, ``ScalingActive``, ``ScalingLimited``, ``QuotaLimited`` and ``Paused``;
each function here takes the conditions as they are now (other writers' included) and returns them
with its own set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from foresail.api.conditions import Condition, ConditionStatus, find_condition, set_condition
from foresail.api.inferenceservice import ObservedMetrics, QuotaStatus, Recommendation, WindowObservation
from foresail.api.objects import PROM_LABEL_ISVC, format_rfc3339
from foresail.api.reasons import ConditionType, DecisionReason, Problem, Reason
from foresail.scaling.counters import ServiceSignals
from foresail.scaling.decide import Decision
from foresail.scaling.observe import HEADLINE_WINDOW_S

__all__ = ["NO_SERIES_HINT", "StatusUpdate", "autoscaler_status", "observed_status", "quota_condition", "quota_status"]


NO_SERIES_HINT = (
    f"Prometheus has no Triton series labelled {PROM_LABEL_ISVC} (with namespace and pod) for this service: enable "
    "the chart's podMonitor.enabled or add the scrape config of charts/foresail/README.md (Metrics)"
)


@dataclass(frozen=True)
class StatusUpdate:
    patch: dict[str, Any]  # the status fields the autoscaler owns
    announce: str | None = None  # MetricsAvailable just turned False: the message of a Warning Event


def quota_condition(
    conds: Sequence[Condition], quota: QuotaStatus | None, missing_tenant: str | None, generation: int, t: datetime
) -> list[Condition]:
    """QuotaLimited: the tenant does not exist ("": none owns the namespace), the grant is below the
    request, or all is granted; absent when no tenant arbitrates the service."""
    q = ConditionType.QUOTA_LIMITED
    if missing_tenant is not None:
        msg = (
            f"spec.tenant: tenant {missing_tenant!r} does not exist: no GPUs are granted until it does"
            if missing_tenant
            else "no Tenant owns the namespace: no GPUs are granted until one does"
        )
        return set_condition(list(conds), q, True, Reason.TENANT_NOT_FOUND, msg, generation, t)
    if quota is None:
        return [c for c in conds if c.type != q]  # no tenant: nothing to say
    granted, asked = quota.granted_replicas, quota.requested_replicas
    if granted < asked:
        msg = f"tenant {quota.tenant!r} grants {granted} of {asked} replicas ({quota.gpus_per_replica} GPU each): {quota.reason}"
        return set_condition(list(conds), q, True, Reason.QUOTA_EXCEEDED, msg[:1000], generation, t)
    return set_condition(list(conds), q, False, Reason.WITHIN_QUOTA, f"tenant {quota.tenant!r} grants all {granted} replicas", generation, t)


def _dump(quota: QuotaStatus | None) -> dict[str, Any] | None:
    return None if quota is None else quota.model_dump(by_alias=True)


def quota_status(
    conds: Sequence[Condition], quota: QuotaStatus | None, missing_tenant: str | None, generation: int, now: float
) -> dict[str, Any]:
    """The status patch of a service that is not due for a decision: only its grant and QuotaLimited."""
    out = quota_condition(conds, quota, missing_tenant, generation, datetime.fromtimestamp(now, UTC))
    return {"quota": _dump(quota), "conditions": [c.model_dump(by_alias=True, mode="json") for c in out]}


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, digits)


def observed_status(signals: ServiceSignals, now: float) -> dict[str, Any]:
    """``status.observed``: the live signals (every window), their source and freshness; every field, so
    that a merge patch clears the figures (and the note) of an earlier pass that no longer hold."""
    f = signals.fleet
    obs = ObservedMetrics(
        time=format_rfc3339(now),
        source=None if f is None else f.source.value,
        note=signals.note or None,
        age_seconds=_r(signals.sample_age_s),
        sample_interval_seconds=_r(signals.sample_interval_s),
        serving_replicas=signals.serving,
        p99_replicas=signals.p99_replicas,
    )
    if f is not None:
        head = f.window(HEADLINE_WINDOW_S)
        obs.arrival_rps, obs.p99_ms = _r(head.arrival_rps), _r(head.p99_ms)
        obs.queue_depth, obs.in_flight = _r(f.queued), _r(f.in_flight)
        obs.windows = [
            WindowObservation(
                seconds=w.window_s,
                arrival_rps=round(w.arrival_rps, 3),
                completion_rps=round(w.completion_rps, 3),
                rejection_rps=round(w.rejection_rps, 3),
                queue_growth_rps=round(w.queue_growth_rps, 3),
                mean_queue_wait_ms=round(w.mean_queue_wait_ms, 3),
                mean_latency_ms=round(w.mean_latency_ms, 3),
                p99_ms=_r(w.p99_ms),
            )
            for w in f.windows
        ]
    out = obs.model_dump(by_alias=True)  # None as null: the merge patch removes what no longer holds
    # a list is replaced whole by a merge patch: each window carries only what it measured (no p99: absent, not 0)
    out["windows"] = [{k: v for k, v in w.items() if v is not None} for w in out["windows"]]
    return out


def autoscaler_status(
    conds: Sequence[Condition],
    d: Decision,
    signals: ServiceSignals,
    policy_problem: Problem | None,
    quota: QuotaStatus | None,
    missing_tenant: str | None,
    scaling_state: dict[str, object],
    generation: int,
    now: float,
) -> StatusUpdate:
    """The status patch after a decision, and whether MetricsAvailable just turned False (an Event)."""
    t, gen = datetime.fromtimestamp(now, UTC), generation
    out = list(conds)
    announce: str | None = None
    if d.signals_ok:
        msg = f"Triton's counters from {signals.source or 'nowhere'} are complete and fresh"
        out = set_condition(out, ConditionType.METRICS_AVAILABLE, True, Reason.METRICS_OK, msg, gen, t)
    else:
        msg = "; ".join(signals.errors)[:500] or "metrics unavailable"
        if signals.no_series:
            msg = f"{msg}: {NO_SERIES_HINT}"
        prev = find_condition(out, ConditionType.METRICS_AVAILABLE)
        if prev is None or prev.status != ConditionStatus.FALSE:
            announce = msg
        why = Reason.NO_SERIES if signals.no_series else Reason.METRICS_UNAVAILABLE
        out = set_condition(out, ConditionType.METRICS_AVAILABLE, False, why, msg, gen, t)
    if d.reason == DecisionReason.PAUSED:
        out = set_condition(out, ConditionType.PAUSED, True, Reason.PAUSED, d.message[:500], gen, t)
        out = set_condition(out, ConditionType.SCALING_ACTIVE, False, Reason.PAUSED, d.message[:500], gen, t)
    elif policy_problem is not None:
        out = set_condition(out, ConditionType.SCALING_ACTIVE, False, policy_problem.reason, policy_problem.message, gen, t)
    else:
        why = Reason.DECIDED if d.signals_ok else Reason.HOLDING
        out = set_condition(out, ConditionType.SCALING_ACTIVE, d.signals_ok, why, d.message[:500], gen, t)
    if d.reason != DecisionReason.PAUSED:
        out = [c for c in out if c.type != ConditionType.PAUSED]  # absent unless paused, as QuotaLimited without a tenant
    out = quota_condition(out, quota, missing_tenant, gen, t)
    bound = d.limited_by is not None and d.limited_by.is_bound
    out = set_condition(
        out,
        ConditionType.SCALING_LIMITED,
        bound,
        d.limited_by or Reason.WITHIN_BOUNDS,
        d.message[:500] if bound else "within bounds",
        gen,
        t,
    )
    rec = Recommendation(
        replicas=d.replicas,
        reason=d.reason,
        message=d.message,
        time=format_rfc3339(now),
        base_rps=d.base_rps,
        forecast_rps=d.forecast_rps,
        lead_seconds=d.lead_s,
        headroom=d.headroom,
        planned_rps=d.planned_rps,
        error_budget_percent=d.budget_percent,
        late_floor_percent=d.late_floor_percent,
        measured_late_percent=d.measured_late_percent,
        capacity_rps=d.capacity_rps,
        capacity_source=d.capacity_source,
        capacity_ratio=d.capacity_ratio,
        fast_rps=d.fast_rps,
        burst_rps=d.burst_rps,
        hold_seconds=d.hold_s,
    )
    patch = {
        "desiredReplicas": d.replicas,
        "recommendation": rec.model_dump(by_alias=True, exclude_none=True),
        "observed": observed_status(signals, now),
        "scalingState": scaling_state,
        "quota": _dump(quota),
        "conditions": [c.model_dump(by_alias=True, mode="json") for c in out],
    }
    return StatusUpdate(patch, announce)
