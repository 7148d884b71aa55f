"""Which Deployment slot runs which revision of an InferenceService (pure).

A service has two Deployment slots (``api.rollout.Slot``): ``<name>`` (a) and ``<name>-b`` (b). The
*stable* slot is ``status.rollout.stableSlot`` (written by the autoscaler when a canary is promoted); when
status has no rollout (a service that never had one, or status lost), the one slot with replicas, and with
both, the one not running the spec's revision (the canary of the rollout under way; ``stable_slot``). Each slot Deployment carries its revision and the serving fields it was rendered from
(``render.triton.REVISION_ANNOTATION`` / ``SERVING_ANNOTATION``), so the stable revision survives a spec
that moved on and a lost status.

- Without ``spec.rollout``, or when the spec's revision is the stable one: the stable slot is rendered from
  the spec (a serving change rolls its replicas in place, as before rollouts existed); the other slot, if
  any, is left as it is (its replicas go to zero: ``SlotPlan.canary`` is None).
- With ``spec.rollout`` and a new revision: the other slot is the *canary*, rendered from the spec; the
  stable slot is rendered from its own annotation's serving fields, with the spec's other fields
  (priority, warm-up, pod placement stay current).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from foresail.api.inferenceservice import InferenceService, ModelSpec, TritonSpec
from foresail.api.objects import spec_replicas
from foresail.api.rollout import Slot
from foresail.render.triton import (
    DEFAULT_OPERATOR_IMAGE,
    REVISION_ANNOTATION,
    SERVING_ANNOTATION,
    decode_serving,
    render_deployment,
    revision,
    slot_name,
)

__all__ = ["SlotPlan", "deployment_revision", "plan_slots", "stable_slot", "with_serving"]


@dataclass(frozen=True)
class SlotPlan:
    stable: Slot
    stable_revision: str
    revision: str  # of the spec
    canary: Slot | None  # the slot running the spec's revision as a canary; None: no canary
    deployments: list[dict[str, Any]] = field(default_factory=list)  # to apply, stable first

    def name(self, slot: Slot, service: str) -> str:
        return slot_name(service, slot)


def _annotations(dep: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((dep or {}).get("metadata") or {}).get("annotations") or {}


def deployment_revision(dep: Mapping[str, Any] | None) -> str | None:
    """The revision a slot Deployment was rendered for (None: none, or rendered before revisions existed)."""
    return _annotations(dep).get(REVISION_ANNOTATION)


def with_serving(isvc: InferenceService, dep: Mapping[str, Any] | None) -> InferenceService | None:
    """``isvc`` with spec.model and spec.triton as the Deployment's serving annotation has them (None: no
    readable annotation)."""
    raw = _annotations(dep).get(SERVING_ANNOTATION)
    if not raw:
        return None
    try:
        fields = decode_serving(raw)
        model, triton = ModelSpec.model_validate(fields["model"]), TritonSpec.model_validate(fields["triton"])
    except (ValueError, KeyError, TypeError, ValidationError):
        return None
    return isvc.model_copy(update={"spec": isvc.spec.model_copy(update={"model": model, "triton": triton})})


def stable_slot(isvc: InferenceService, deployments: Mapping[Slot, Mapping[str, Any] | None]) -> Slot:
    """The stable slot: status.rollout's. Without it (status lost, or never rolled out): the only slot with
    replicas; when both have replicas a rollout was under way, and the spec names its canary, so the slot
    whose revision is not the spec's; otherwise slot a."""
    if isvc.status.rollout is not None:
        return isvc.status.rollout.stable_slot
    a, b = deployments.get(Slot.A), deployments.get(Slot.B)
    if b is None or spec_replicas(b) == 0:
        return Slot.A
    if a is None or spec_replicas(a) == 0:
        return Slot.B
    return Slot.A if deployment_revision(b) == revision(isvc) else Slot.B


def plan_slots(
    isvc: InferenceService, deployments: Mapping[Slot, Mapping[str, Any] | None], operator_image: str = DEFAULT_OPERATOR_IMAGE
) -> SlotPlan:
    """The slot Deployments to apply and which slot is stable, from the spec, status and the listed slots."""
    rev = revision(isvc)
    stable = stable_slot(isvc, deployments)
    dep = deployments.get(stable)
    stable_rev = deployment_revision(dep) or rev
    rendered_stable = with_serving(isvc, dep)
    if isvc.spec.rollout is None or stable_rev == rev or deployment_revision(dep) is None:
        # in place: no rollout asked for, nothing new, or a stable Deployment from before revisions existed
        return SlotPlan(stable, rev, rev, None, [render_deployment(isvc, stable, operator_image)])
    canary = stable.other
    if rendered_stable is None:
        # its serving fields cannot be read back (edited by hand, or a model this version refuses): the stable
        # Deployment is left exactly as it is rather than rolled to the canary's revision
        return SlotPlan(stable, stable_rev, rev, canary, [render_deployment(isvc, canary, operator_image)])
    # both with the operator image the replicas' init container runs (the stable one too: a default image there
    # would roll the stable replicas onto an image the cluster may not hold)
    deps = [render_deployment(rendered_stable, stable, operator_image), render_deployment(isvc, canary, operator_image)]
    return SlotPlan(stable, stable_rev, rev, canary, deps)
