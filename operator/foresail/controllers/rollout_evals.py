"""The evaluation gate's EvalJobs (``spec.rollout.evaluation``), in the autoscaler's pass: created, read, deleted.

``rollout.evaluation`` says what the jobs are and what their verdict means; this module does the I/O:

* while the spec's revision is the canary at its first step: the two EvalJobs are read by name; missing ones
  are created once the canary has a ready (warm) replica (a 409 is someone else's create: read next pass); one
  the service does not control holds the gate (the name is taken); one whose spec no longer matches
  ``spec.rollout.evaluation`` is deleted and created again on a later pass;
* the names in ``status.rollout.evaluations`` that the rollout no longer wants (a new rollout started) are
  deleted. A rollout that ended (promoted, rolled back, aborted, reverted) leaves its jobs for inspection until
  the next one starts; they are owned by the InferenceService, so they go with it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from foresail.api.evaljob import EvalJob, EvalJobSpec
from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import LABEL_REVISION, pod_is_live, pod_is_ready
from foresail.api.rollout import GateName, GateResult, RolloutStatus
from foresail.clients.kube import Kube
from foresail.render.meta import controlled_by, controller_reference
from foresail.rollout.evaluation import evaljob_bodies, evaljob_name, evaluation_gate

__all__ = ["EvaluationView", "cleanup", "sync"]

log = logging.getLogger("foresail.rollouts")
_COMPARED = {"target", "dataset", "scorer", "shards", "baseline"}


@dataclass(frozen=True)
class EvaluationView:
    gate: GateResult
    names: list[str]  # recorded in status.rollout.evaluations


def _canary_ready(pods: Sequence[Mapping[str, Any]], revision: str) -> bool:
    return any(
        pod_is_live(p) and pod_is_ready(p) and ((p.get("metadata") or {}).get("labels") or {}).get(LABEL_REVISION) == revision
        for p in pods
    )


def _pending(message: str) -> GateResult:
    return GateResult(gate=GateName.EVALUATION, passed=None, message=message)


def _differs(have: dict[str, Any], want: dict[str, Any]) -> bool:
    """Whether the job as stored is not the one wanted (both read through the model: defaults do not count)."""
    try:
        a = EvalJobSpec.model_validate(have.get("spec") or {}).model_dump(by_alias=True, mode="json", include=_COMPARED)
    except ValidationError:
        return True
    b = EvalJobSpec.model_validate(want["spec"]).model_dump(by_alias=True, mode="json", include=_COMPARED)
    return a != b


def sync(kube: Kube, isvc: InferenceService, status: RolloutStatus, revision: str, pods: Sequence[Mapping[str, Any]]) -> EvaluationView | None:
    """The gate's verdict on the running canary, creating its EvalJobs when due; None: no evaluation this pass
    (no spec.rollout.evaluation, no canary, a later step, or the spec's revision is not the canary's)."""
    spec = isvc.spec.rollout
    canary = status.canary_revision
    if spec is None or spec.evaluation is None or canary is None or canary != revision or status.step != 0:
        return None
    ns = isvc.namespace
    owner = controller_reference(isvc)
    wanted = evaljob_bodies(isvc.name, ns, owner, spec.evaluation, status.stable_revision, canary)
    names = [b["metadata"]["name"] for b in wanted]
    found: list[dict[str, Any] | None] = [kube.get("EvalJob", ns, n) for n in names]
    for body, have in zip(wanted, found, strict=True):
        name = body["metadata"]["name"]
        if have is None:
            continue
        if not controlled_by(have, isvc):
            return EvaluationView(_pending(f"EvalJob {name} exists and is not this service's: delete or rename it"), [])
        if have["metadata"].get("deletionTimestamp"):
            return EvaluationView(_pending(f"EvalJob {name} is being deleted"), names)
        if _differs(have, body):
            log.info("%s/%s: EvalJob %s does not match spec.rollout.evaluation: deleted", ns, isvc.name, name)
            kube.delete("EvalJob", ns, name, have["metadata"].get("uid"))
            return EvaluationView(_pending(f"EvalJob {name} replaced (spec.rollout.evaluation changed)"), names)
    if any(h is None for h in found):
        if not _canary_ready(pods, canary):
            return EvaluationView(_pending("waiting for a ready canary replica to evaluate"), [])
        for body, have in zip(wanted, found, strict=True):
            if have is None:
                try:
                    kube.create(body)
                    log.info("%s/%s: rollout evaluation: EvalJob %s created", ns, isvc.name, body["metadata"]["name"])
                except ApiException as e:
                    if e.status != 409:
                        raise
        return EvaluationView(_pending(f"EvalJobs {names[0]} (stable), {names[1]} (canary) created"), names)
    try:
        stable_job, canary_job = (EvalJob.model_validate(h) for h in found)
    except ValidationError as e:
        return EvaluationView(_pending(f"EvalJobs unreadable: {e.errors()[0].get('msg', e)}"), names)
    return EvaluationView(evaluation_gate(canary_job, stable_job), names)


def cleanup(kube: Kube, isvc: InferenceService, before: RolloutStatus | None, after: RolloutStatus) -> None:
    """Delete the EvalJobs of ``before.evaluations`` that ``after`` no longer lists (a new rollout started).
    A name the new rollout will use again (the same stable revision) is kept: its job is reused."""
    if before is None or not before.evaluations:
        return
    keep = set(after.evaluations)
    if after.canary_revision is not None:
        keep |= {evaljob_name(isvc.name, after.stable_revision), evaljob_name(isvc.name, after.canary_revision)}
    for name in before.evaluations:
        if name in keep:
            continue
        body = kube.get("EvalJob", isvc.namespace, name)
        if body is not None and controlled_by(body, isvc):
            log.info("%s/%s: rollout evaluation: EvalJob %s of an earlier rollout deleted", isvc.namespace, isvc.name, name)
            kube.delete("EvalJob", isvc.namespace, name, body["metadata"].get("uid"))
