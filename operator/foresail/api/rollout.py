"""Safe model rollouts of an InferenceService (``spec.rollout``) and what status says of them.

A change to what a replica serves (``spec.model`` or ``spec.triton``) is a new *revision*: with
``spec.rollout`` set it runs beside the stable revision in the other of the service's two Deployment
*slots* (``<name>`` is slot ``a``, ``<name>-b`` slot ``b``), both behind the service's Service, and takes
traffic in steps, by its share of ready replicas (per connection, approximate). Each step passes gates on
the canary's latency and errors and, optionally, an evaluation paired item by item with the stable
revision; a failed gate scales the canary to zero and keeps the stable revision serving. Without
``spec.rollout`` a change rolls the replicas in place (a Deployment rolling update), as before.

Changes that do not change what a replica serves (scaling, SLO, warm-up, tenant, priority) make no
revision.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from foresail.api.evaljob import DatasetSource, ScorerSpec
from foresail.api.meta import SpecModel

__all__ = [
    "REVISION_LENGTH",
    "GateName",
    "GateResult",
    "RolloutAction",
    "RolloutEvaluation",
    "RolloutGates",
    "RolloutPhase",
    "RolloutSpec",
    "RolloutStatus",
    "RolloutStep",
    "Slot",
    "TrafficSplit",
    "revision_of",
    "serving_fields",
]

REVISION_LENGTH = 10


class Slot(StrEnum):
    """The service's two Deployment slots: ``a`` is the Deployment ``<name>``, ``b`` is ``<name>-b``."""

    A = "a"
    B = "b"

    @property
    def other(self) -> Slot:
        return Slot.B if self is Slot.A else Slot.A


class RolloutStep(SpecModel):
    percent: int = Field(ge=1, le=100, description="The canary's share of the service's replicas in this step, percent.")
    min_seconds: int = Field(
        default=60, alias="minSeconds", ge=0, le=86_400, description="Least time in the step before it may pass."
    )
    min_requests: int = Field(
        default=200,
        alias="minRequests",
        ge=0,
        le=100_000_000,
        description="Least requests the canary serves in the step before its gates may pass.",
    )


class RolloutGates(SpecModel):
    p99_margin_percent: float = Field(
        default=20.0,
        alias="p99MarginPercent",
        ge=0,
        le=1000,
        description="The canary's p99 may exceed the stable revision's by at most this, percent (and never the SLO).",
    )
    error_alpha: float = Field(
        default=0.01,
        alias="errorAlpha",
        gt=0,
        lt=0.5,
        description="Significance of the anytime-valid (sequential) test that the canary's error rate is higher than the stable one's.",
    )


class RolloutEvaluation(SpecModel):
    """Two EvalJobs at the first step, once the canary has a ready replica (``<service>-eval-<revision[:8]>``, owned by
    the service, mode shared at batch priority): the stable revision's, and the canary's compared with it item by item.
    Regressed rolls back; NoRegression or Undecided passes; a failed job or comparison holds for spec.rollout.action."""

    dataset: DatasetSource = Field(description="The items to evaluate (as an EvalJob's spec.dataset).")
    scorer: ScorerSpec = Field(default_factory=ScorerSpec, description="How outputs are scored (as an EvalJob's spec.scorer).")
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="Significance of the paired test that the canary scores worse.")
    shards: int = Field(default=1, ge=1, le=1000, description="Shards of each EvalJob.")


class RolloutAction(StrEnum):
    PROMOTE = "Promote"
    ABORT = "Abort"


class RolloutSpec(SpecModel):
    steps: list[RolloutStep] = Field(
        default_factory=lambda: [RolloutStep(percent=10), RolloutStep(percent=50)],
        min_length=1,
        max_length=20,
        description="The canary's steps, increasing percent; after the last one passes the canary is promoted (100%).",
    )
    gates: RolloutGates = Field(default_factory=RolloutGates, description="Latency and error gates of every step.")
    evaluation: RolloutEvaluation | None = Field(
        default=None,
        description="An evaluation gate at the first step (once per rollout): the canary must not score worse than the stable revision.",
    )
    action: RolloutAction | None = Field(
        default=None,
        description=(
            "Promote or Abort the rollout in progress by hand. It applies to the canary revision present when the "
            "operator first sees it (status.rollout.actionRevision), never to a later revision."
        ),
    )

    @model_validator(mode="after")
    def _increasing(self) -> RolloutSpec:
        percents = [s.percent for s in self.steps]
        if any(b <= a for a, b in itertools.pairwise(percents)):
            raise ValueError(f"spec.rollout.steps: percent must increase from step to step (got {percents})")
        return self


class RolloutPhase(StrEnum):
    STABLE = "Stable"  # one revision serves
    PROGRESSING = "Progressing"  # a canary takes a share of the traffic
    PROMOTED = "Promoted"  # the last canary became the stable revision
    ROLLED_BACK = "RolledBack"  # a gate failed: the canary was scaled to zero
    ABORTED = "Aborted"  # spec.rollout.action=Abort


class TrafficSplit(StrEnum):
    """How a canary's share of the traffic is made (``status.trafficSplit``)."""

    REPLICA_SHARE = "ReplicaShare"  # its share of the ready replicas behind the one Service (per connection)
    GATEWAY_WEIGHTS = "GatewayWeights"  # the weights of the HTTPRoute <name> on the operator's Gateway (per request)


class GateName(StrEnum):
    LATENCY = "latency"
    ERRORS = "errors"
    EVALUATION = "evaluation"


class GateResult(SpecModel):
    gate: GateName = Field(description="latency, errors or evaluation.")
    passed: bool | None = Field(default=None, description="True passed, False failed, absent: not decided yet.")
    message: str = Field(default="", description="The figures the gate judged, in words.")


class RolloutStatus(SpecModel):
    phase: RolloutPhase = Field(default=RolloutPhase.STABLE, description="Stable, Progressing, Promoted, RolledBack or Aborted.")
    stable_revision: str = Field(default="", alias="stableRevision", description="Revision serving production.")
    stable_slot: Slot = Field(default=Slot.A, alias="stableSlot", description="Deployment slot of the stable revision.")
    canary_revision: str | None = Field(default=None, alias="canaryRevision", description="Revision being rolled out.")
    step: int = Field(default=0, ge=0, description="Index of the current step in spec.rollout.steps.")
    step_started: str | None = Field(default=None, alias="stepStarted", description="When the current step began (RFC 3339).")
    canary_percent: int = Field(default=0, alias="canaryPercent", description="The canary's planned share of replicas, percent.")
    canary_replicas: int = Field(default=0, alias="canaryReplicas", description="Replicas of the canary revision.")
    stable_replicas: int = Field(default=0, alias="stableReplicas", description="Replicas of the stable revision.")
    gates: list[GateResult] = Field(default_factory=list, description="The current step's gates; from the second step on, also the evaluation gate's passed verdict.")
    evaluations: list[str] = Field(
        default_factory=list, description="The EvalJobs of the evaluation gate: the stable revision's, then the canary's."
    )
    action_revision: str | None = Field(
        default=None, alias="actionRevision", description="The revision spec.rollout.action was applied to."
    )
    failed_revision: str | None = Field(
        default=None, alias="failedRevision", description="The last revision rolled back or aborted (not retried)."
    )
    message: str = Field(default="", description="What the rollout is doing or why it ended, in words.")
    time: str | None = Field(default=None, description="Last change of the phase (RFC 3339).")


def serving_fields(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of an InferenceService spec (camelCase, as stored) that decides what a replica serves:
    the model and the Triton container. A change to anything else makes no new revision."""
    return {"model": spec.get("model") or {}, "triton": spec.get("triton") or {}}


def revision_of(spec: dict[str, Any]) -> str:
    """The revision of a spec: a short hash of its serving fields in canonical JSON (key order and
    defaults written or omitted do not matter: callers pass the model's dump with defaults)."""
    blob = json.dumps(serving_fields(spec), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:REVISION_LENGTH]
