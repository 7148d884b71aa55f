"""The rollout's evaluation gate (pure): the two EvalJobs of ``spec.rollout.evaluation`` and their verdict.

At the first step, once the canary has a ready (hence warm) replica, the autoscaler creates two EvalJobs owned by
the InferenceService: one of the stable revision, one of the canary revision whose ``spec.baseline.evalJob`` is
the stable one (``alpha`` from the spec). Both run in mode shared at batch priority, yielding to production
traffic, each on its own revision's pods only (``spec.target.revision``). The evaluation runs once per rollout,
at its first step; later steps have only the latency and error gates.

The gate reads the canary job's ``Regressed`` condition:

* ``NoRegression``: passed;
* ``Regressed``: failed, with the flipped-worse count, the p-value and the score delta (the rollback's reason);
* ``Undecided`` (too few discordant items for the test to show anything): passed, saying so: the gate asks
  that the canary is not shown worse, and the paired test found no evidence that it is;
* the job Failed, or its baseline NotFound / Invalid / the comparison failed: undecided, with a message asking
  for a decision (``spec.rollout.action`` Promote or Abort): never promoted, never rolled back, silently;
* anything else (running, comparing, the stable job not finished): undecided, waiting.
"""

from __future__ import annotations

import hashlib
from typing import Any

from foresail.api.conditions import find_condition
from foresail.api.evaljob import MAX_NAME_LENGTH, BaselineStatus, EvalJob, EvalJobStatus
from foresail.api.objects import LABEL_ISVC, LABEL_REVISION
from foresail.api.reasons import ConditionType, Reason
from foresail.api.rollout import GateName, GateResult, RolloutEvaluation

__all__ = ["LABEL_ROLLOUT_EVAL", "evaljob_bodies", "evaljob_name", "evaluation_gate"]

LABEL_ROLLOUT_EVAL = "foresail.dev/rollout-evaluation"  # "stable" or "canary"
MANAGED_BY = "app.kubernetes.io/managed-by"
_SUFFIX = "-eval-"
_REV = 8


def evaljob_name(service: str, revision: str) -> str:
    """``<service>-eval-<revision[:8]>``, at most an EvalJob's 40 characters: a longer service name is cut and
    a hash of the whole of it added, so two services never share a name."""
    tail = f"{_SUFFIX}{revision[:_REV]}"
    if len(service) + len(tail) <= MAX_NAME_LENGTH:
        return service + tail
    digest = hashlib.sha256(service.encode()).hexdigest()[:6]
    keep = MAX_NAME_LENGTH - len(tail) - len(digest) - 1
    return f"{service[:keep].rstrip('-')}-{digest}{tail}"


def _body(
    service: str, namespace: str, owner: dict[str, Any], ev: RolloutEvaluation, revision: str, role: str, baseline: str | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "target": {"inferenceService": service, "revision": revision},
        "mode": "shared",  # production replicas, yielding to production traffic
        "priority": "batch",
        "dataset": ev.dataset.model_dump(by_alias=True, mode="json", exclude_none=True),
        "scorer": ev.scorer.model_dump(by_alias=True, mode="json", exclude_none=True),
        "shards": ev.shards,
        "parallelism": min(ev.shards, 2),
    }
    if baseline is not None:
        spec["baseline"] = {"evalJob": baseline, "alpha": ev.alpha}
    return {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "EvalJob",
        "metadata": {
            "name": evaljob_name(service, revision),
            "namespace": namespace,
            "labels": {MANAGED_BY: "foresail", LABEL_ISVC: service, LABEL_REVISION: revision, LABEL_ROLLOUT_EVAL: role},
            "ownerReferences": [owner],
        },
        "spec": spec,
    }


def evaljob_bodies(
    service: str, namespace: str, owner: dict[str, Any], ev: RolloutEvaluation, stable: str, canary: str
) -> list[dict[str, Any]]:
    """The stable revision's EvalJob, then the canary's (compared with the stable one's)."""
    first = _body(service, namespace, owner, ev, stable, "stable", None)
    return [first, _body(service, namespace, owner, ev, canary, "canary", first["metadata"]["name"])]


def _figures(b: BaselineStatus | None) -> str:
    if b is None:
        return "no figures"
    parts = [f"{b.flipped_worse} of {b.paired} items flipped worse ({b.flipped_better} better)"]
    if b.p_value is not None:
        parts.append(f"p={b.p_value:.2g}")
    if b.delta is not None:
        parts.append(f"delta={b.delta:+.4f}")
    return ", ".join(parts)


def evaluation_gate(canary: EvalJob | None, stable: EvalJob | None) -> GateResult:
    """The gate's verdict from the two EvalJobs as read (None: not there yet)."""
    if canary is None or stable is None:
        return GateResult(gate=GateName.EVALUATION, passed=None, message="EvalJobs not created yet (waiting for a ready canary replica)")
    for role, job in (("stable", stable), ("canary", canary)):
        if job.status.phase == "Failed":
            return GateResult(
                gate=GateName.EVALUATION,
                passed=None,
                message=f"EvalJob {job.name} ({role}) failed: set spec.rollout.action to Promote or Abort",
            )
    st: EvalJobStatus = canary.status
    c = find_condition(st.conditions, ConditionType.REGRESSED)
    name = canary.name
    if c is None or st.phase != "Succeeded":
        return GateResult(gate=GateName.EVALUATION, passed=None, message=f"EvalJobs {stable.name}, {name} running")
    if c.reason == Reason.REGRESSED:
        return GateResult(gate=GateName.EVALUATION, passed=False, message=f"{_figures(st.baseline)} (EvalJob {name})")
    if c.reason == Reason.NO_REGRESSION:
        return GateResult(gate=GateName.EVALUATION, passed=True, message=f"no regression: {_figures(st.baseline)}")
    if c.reason == Reason.UNDECIDED:
        return GateResult(
            gate=GateName.EVALUATION, passed=True, message=f"undecided, passed (no evidence of a regression): {_figures(st.baseline)}"
        )
    if c.reason in (Reason.AWAITING_RESULTS, Reason.BASELINE_INCOMPLETE, Reason.COMPARING):
        return GateResult(gate=GateName.EVALUATION, passed=None, message=f"comparing {name} with {stable.name} ({c.reason})")
    return GateResult(
        gate=GateName.EVALUATION,
        passed=None,
        message=f"EvalJob {name}: {c.reason}: {c.message[:200]}; set spec.rollout.action to Promote or Abort",
    )
