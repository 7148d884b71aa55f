"""What the autoscaler writes into an InferenceService's status (pure; ``now`` is an argument).

The autoscaler owns ``desiredReplicas``, ``recommendation``, ``observed``, ``scalingState``, ``quota``
and the conditions ``MetricsAvailable``, ``ScalingActive``, ``ScalingLimited`` and ``QuotaLimited``;
each function here takes the conditions as they are now (other writers' included) and returns them
with its own set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from foresail.api.conditions import Condition, ConditionStatus, find_condition, set_condition
from foresail.api.inferenceservice import QuotaStatus, Recommendation
from foresail.api.objects import format_rfc3339
from foresail.api.reasons import ConditionType, Problem, Reason
from foresail.scaling.decide import Decision
from foresail.scaling.observe import ServiceSignals

__all__ = ["StatusUpdate", "autoscaler_status", "quota_condition", "quota_status"]


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
        msg = "queue depth, p99 and arrival rate are fresh"
        out = set_condition(out, ConditionType.METRICS_AVAILABLE, True, Reason.METRICS_OK, msg, gen, t)
    else:
        msg = "; ".join(signals.errors)[:500] or "metrics unavailable"
        prev = find_condition(out, ConditionType.METRICS_AVAILABLE)
        if prev is None or prev.status != ConditionStatus.FALSE:
            announce = msg
        out = set_condition(out, ConditionType.METRICS_AVAILABLE, False, Reason.METRICS_UNAVAILABLE, msg, gen, t)
    if policy_problem is not None:
        out = set_condition(out, ConditionType.SCALING_ACTIVE, False, policy_problem.reason, policy_problem.message, gen, t)
    else:
        why = Reason.DECIDED if d.signals_ok else Reason.HOLDING
        out = set_condition(out, ConditionType.SCALING_ACTIVE, d.signals_ok, why, d.message[:500], gen, t)
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
        panic=d.panic,
        stable_rps=d.stable_rps,
        forecast_rps=d.forecast_rps,
        capacity_rps=d.capacity_rps,
    )
    patch = {
        "desiredReplicas": d.replicas,
        "recommendation": rec.model_dump(by_alias=True, exclude_none=True),
        "observed": {**signals.rounded(), "time": format_rfc3339(now)},
        "scalingState": scaling_state,
        "quota": _dump(quota),
        "conditions": [c.model_dump(by_alias=True, mode="json") for c in out],
    }
    return StatusUpdate(patch, announce)
