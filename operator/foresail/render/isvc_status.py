"""The observed status of an InferenceService from its Deployment and pods (pure; ``now`` passed in)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from foresail.api.conditions import Condition, set_condition
from foresail.api.inferenceservice import InferenceService, InferenceServiceStatus
from foresail.api.objects import condition_status, is_condition_true, pod_is_live, pod_is_ready
from foresail.render.triton import LABEL_ISVC, WARM_GATE

__all__ = ["ProblemReport", "is_warm", "observe"]


class ProblemReport:
    """Why the service cannot be reconciled (repository missing, ...): reason + message for Ready."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message


def is_warm(pod: dict[str, Any]) -> bool:
    return is_condition_true(pod, WARM_GATE)


def observe(
    isvc: InferenceService,
    deployment: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    now: datetime,
    problem: ProblemReport | None = None,
) -> InferenceServiceStatus:
    """Status with replica counts and the Ready condition; other fields of the old status are kept."""
    old = isvc.status
    live = [p for p in pods if pod_is_live(p)]
    ready = sum(1 for p in live if pod_is_ready(p))
    warm = sum(1 for p in live if is_warm(p)) if isvc.spec.warmup.enabled else ready
    dep_status = (deployment or {}).get("status", {})
    desired = int((deployment or {}).get("spec", {}).get("replicas", 0) or 0)
    gen = isvc.generation
    conds: list[Condition] = list(old.conditions)
    if problem is not None:
        conds = set_condition(conds, "Ready", False, problem.reason, problem.message, gen, now)
    elif deployment is None:
        conds = set_condition(conds, "Ready", False, "Reconciling", "the Deployment does not exist yet", gen, now)
    elif desired == 0:
        conds = set_condition(conds, "Ready", True, "ScaledToZero", "no replicas are wanted", gen, now)
    elif ready >= 1:
        conds = set_condition(conds, "Ready", True, "Serving", f"{ready}/{desired} replicas ready", gen, now)
    else:
        starting = len(live) - warm
        conds = set_condition(
            conds, "Ready", False, "NoReadyReplicas", f"0/{desired} replicas ready ({starting} starting or warming up)", gen, now
        )
    failing = [
        p["metadata"]["name"]
        for p in live
        if condition_status(p, WARM_GATE) == "False"
    ]
    if failing:
        conds = set_condition(
            conds,
            "WarmupFailing",
            True,
            "ReplicasFailedWarmup",
            f"{len(failing)} replica(s) failed warm-up: {', '.join(sorted(failing)[:5])}",
            gen,
            now,
        )
    else:
        conds = set_condition(conds, "WarmupFailing", False, "NoFailures", "no replica is failing its warm-up", gen, now)
    return old.model_copy(
        update={
            "observed_generation": gen,
            "replicas": int(dep_status.get("replicas", len(live)) or 0),
            "ready_replicas": ready,
            "warm_replicas": warm,
            "starting_replicas": max(0, len(live) - warm),
            "desired_replicas": desired if old.recommendation is None else old.desired_replicas,
            "selector": f"{LABEL_ISVC}={isvc.name}",
            "conditions": conds,
        }
    )
