"""The observed status of an InferenceService from its Deployment and pods (pure; ``now`` passed in)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from foresail.api.conditions import Condition, set_condition
from foresail.api.inferenceservice import InferenceService, InferenceServiceStatus
from foresail.api.objects import LABEL_ISVC, WARM_GATE, condition_status, pod_is_live, pod_is_ready, pod_is_warm, spec_replicas
from foresail.api.reasons import ConditionType, Problem, Reason
from foresail.render.storage import fetch_observation

__all__ = ["observe"]


def observe(
    isvc: InferenceService,
    deployment: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    now: datetime,
    problem: Problem | None = None,
) -> InferenceServiceStatus:
    """Status with replica counts and the Ready condition; other fields of the old status are kept."""
    old = isvc.status
    live = [p for p in pods if pod_is_live(p)]
    ready = sum(1 for p in live if pod_is_ready(p))
    warm = sum(1 for p in live if pod_is_warm(p)) if isvc.spec.warmup.enabled else ready
    dep_status = (deployment or {}).get("status", {})
    desired = spec_replicas(deployment)
    gen = isvc.generation
    conds: list[Condition] = list(old.conditions)
    r = ConditionType.READY
    fetched, fetch_failed = fetch_observation(isvc, live)
    if problem is None and fetch_failed is not None and ready == 0:
        # the init container cannot fetch (or read) the repository: say why instead of "0 ready" over a crash loop
        field = "pvc" if isvc.spec.model.repository.pvc is not None else "storageUri"
        msg = f"spec.model.repository.{field}: {fetch_failed.message} (pod {fetch_failed.pod})"
        problem = Problem(Reason.MODEL_FETCH_FAILED, msg[:1000])
    if problem is not None:
        conds = set_condition(conds, r, False, problem.reason, problem.message, gen, now)
    elif deployment is None:
        conds = set_condition(conds, r, False, Reason.RECONCILING, "the Deployment does not exist yet", gen, now)
    elif desired == 0:
        conds = set_condition(conds, r, True, Reason.SCALED_TO_ZERO, "no replicas are wanted", gen, now)
    elif ready >= 1:
        conds = set_condition(conds, r, True, Reason.SERVING, f"{ready}/{desired} replicas ready", gen, now)
    else:
        msg = f"0/{desired} replicas ready ({len(live) - warm} starting or warming up)"
        conds = set_condition(conds, r, False, Reason.NO_READY_REPLICAS, msg, gen, now)
    failing = sorted(p["metadata"]["name"] for p in live if condition_status(p, WARM_GATE) == "False")
    w = ConditionType.WARMUP_FAILING
    if failing:
        msg = f"{len(failing)} replica(s) failed warm-up: {', '.join(failing[:5])}"
        conds = set_condition(conds, w, True, Reason.REPLICAS_FAILED_WARMUP, msg, gen, now)
    else:
        conds = set_condition(conds, w, False, Reason.NO_FAILURES, "no replica is failing its warm-up", gen, now)
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
            "model": fetched or (old.model if old.model and old.model.describes(isvc.spec.model.repository) else None),
        }
    )
