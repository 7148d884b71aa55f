"""Rollouts in the autoscaler's pass (``spec.rollout``): the step machine's input, its decision, and the
replicas of the two Deployment slots.

The autoscaler is the one writer of ``status.rollout`` and of the ``RolloutProgressing`` condition: it
already lists the slots and pods, reads Triton's counters from Prometheus and writes replicas, and it runs
every few seconds (the reconciler's resync is 30 s). The reconciler only *reads* ``status.rollout.stableSlot``
to render the slots (``render.slots``), so the two never write the same field.

Per due service with rollouts (``spec.rollout`` set, or a ``status.rollout`` or slot b already there):

1. the slots as listed, and ``render.slots.plan_slots``'s view of them: which slot is stable and the spec's
   revision (the same function the reconciler renders with, so both agree);
2. while a canary runs: what each revision served since ``status.rollout.stepStarted``
   (``scaling.revisions``, one Prometheus query of the service's raw counter samples, so a restarted
   operator counts the same step's requests again);
3. with ``spec.rollout.evaluation``, at the canary's first step: its EvalJobs and their verdict
   (``rollout_evals``, ``rollout.evaluation``);
4. ``rollout.steps.decide_step`` -> the next status, an action and its message;
5. the autoscaler's total (what demand needs) is split with ``rollout.split`` by the canary's percent:
   the arbiter is asked for ``replicas_wanted`` (a surge replica at total 1), the grant is split with
   ``slot_replicas``; a shrinking slot gives up replicas only as the other's become ready
   (``scaling.revisions.make_before_break``), except a canary dropped by a rollback or an abort, which goes
   to zero at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from foresail.api.conditions import Condition, set_condition
from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import LABEL_SLOT, parse_rfc3339, pod_is_live, pod_is_ready, spec_replicas
from foresail.api.reasons import ConditionType, Reason
from foresail.api.rollout import RolloutPhase, RolloutStatus, Slot
from foresail.clients.kube import Kube
from foresail.clients.prometheus import MetricsError, PromClient, Shard
from foresail.controllers import rollout_evals
from foresail.controllers.rollout_evals import EvaluationView
from foresail.render.meta import controlled_by
from foresail.render.slots import plan_slots
from foresail.render.triton import slot_name
from foresail.rollout.split import replicas_wanted, slot_replicas
from foresail.rollout.steps import StepAction, StepDecision, StepObservation, decide_step
from foresail.scaling.observe import serving_pods
from foresail.scaling.revisions import RevisionFigures, make_before_break, revision_figures

__all__ = [
    "MAX_STEP_QUERY_S",
    "RolloutPass",
    "decide",
    "evaluate",
    "involved",
    "observe",
    "rollout_condition",
    "slot_writes",
    "slots_of",
    "status_patch",
]

log = logging.getLogger("foresail.rollouts")
MAX_STEP_QUERY_S = 3600.0  # a step's counts reach back at most this far (a longer step counts its last hour)
QUERY_MARGIN_S = 5.0


@dataclass(frozen=True)
class RolloutPass:
    """A service's rollout this pass."""

    slots: dict[Slot, dict[str, Any] | None]
    decision: StepDecision | None  # None: the service has no spec.rollout (its slots still split: the other one at zero)
    status: RolloutStatus  # the next status.rollout
    write: bool  # whether status.rollout is written (a service that has or had a rollout)
    pods: Sequence[Mapping[str, Any]] = ()  # the service's pods as listed (ready replicas per slot)

    @property
    def percent(self) -> int:
        return self.status.canary_percent if self.status.canary_revision is not None else 0

    def wanted(self, total: int) -> int:
        """Replicas of both slots to ask the arbiter for."""
        return replicas_wanted(total, self.percent)

    def current(self) -> int:
        return sum(spec_replicas(d) for d in self.slots.values() if d is not None)


def slots_of(isvc: InferenceService, deployments: Mapping[tuple[str, str], dict[str, Any]]) -> dict[Slot, dict[str, Any] | None]:
    out: dict[Slot, dict[str, Any] | None] = {}
    for slot in Slot:
        dep = deployments.get((isvc.namespace, slot_name(isvc.name, slot)))
        out[slot] = dep if controlled_by(dep, isvc) else None
    return out


def involved(isvc: InferenceService, slots: Mapping[Slot, dict[str, Any] | None]) -> bool:
    """Whether the service has (or had) rollouts; the others are scaled exactly as before rollouts existed."""
    return isvc.spec.rollout is not None or isvc.status.rollout is not None or slots.get(Slot.B) is not None


def _initial(isvc: InferenceService, slots: Mapping[Slot, dict[str, Any] | None]) -> RolloutStatus:
    if isvc.status.rollout is not None:
        return isvc.status.rollout
    plan = plan_slots(isvc, slots)
    return RolloutStatus(stable_slot=plan.stable, stable_revision=plan.stable_revision)


def _figures_observation(
    isvc: InferenceService, status: RolloutStatus, figures: Mapping[str, RevisionFigures]
) -> StepObservation:
    canary = figures.get(status.canary_revision or "", RevisionFigures())
    stable = figures.get(status.stable_revision, RevisionFigures())
    return StepObservation(
        canary_requests=canary.requests,
        canary_errors=canary.errors,
        canary_p99_ms=canary.p99_ms,
        stable_requests=stable.requests,
        stable_errors=stable.errors,
        stable_p99_ms=stable.p99_ms,
        slo_p99_ms=isvc.spec.slo.p99_latency_ms,
    )


async def observe(
    prom: PromClient | None,
    isvc: InferenceService,
    slots: Mapping[Slot, dict[str, Any] | None],
    pods: Sequence[Mapping[str, Any]],
    now: float,
) -> StepObservation | None:
    """What the canary and the stable revision served since the step started; None: no canary, no
    Prometheus or a failed query (the step holds: it never passes or fails on figures it lacks)."""
    status = _initial(isvc, slots)
    if prom is None or isvc.spec.rollout is None or status.canary_revision is None or not status.step_started:
        return None
    started = parse_rfc3339(status.step_started)
    if started is None:
        return None
    span = min(MAX_STEP_QUERY_S, max(1.0, now - started)) + QUERY_MARGIN_S
    key = (isvc.namespace, isvc.name)
    try:
        read = await prom.counter_samples(span, {key: isvc.spec.model.name}, Shard.one(key))
    except MetricsError as e:
        log.warning("%s/%s: rollout gates: %s", key[0], key[1], e)
        return None
    since = max(started, now - MAX_STEP_QUERY_S)
    figures = revision_figures(read.samples.get(key, {}), pods, serving_pods(pods, now), since, now, read.clock_offset_s or 0.0)
    return _figures_observation(isvc, status, figures)


def evaluate(
    kube: Kube, isvc: InferenceService, slots: Mapping[Slot, dict[str, Any] | None], pods: Sequence[Mapping[str, Any]]
) -> EvaluationView | None:
    """The evaluation gate of the running canary (``rollout_evals.sync``: its EvalJobs created when due)."""
    return rollout_evals.sync(kube, isvc, _initial(isvc, slots), plan_slots(isvc, slots).revision, pods)


def decide(
    isvc: InferenceService,
    slots: dict[Slot, dict[str, Any] | None],
    observed: StepObservation | None,
    now: float,
    pods: Sequence[Mapping[str, Any]] = (),
    evaluation: EvaluationView | None = None,
) -> RolloutPass:
    """The step machine's decision for the spec's revision (pure)."""
    status = _initial(isvc, slots)
    write = isvc.status.rollout is not None or isvc.spec.rollout is not None
    if isvc.spec.rollout is None:
        # no rollout asked for: the spec renders into the stable slot in place; a canary left over is dropped
        plan = plan_slots(isvc, slots)
        nxt = status.model_copy(
            update={
                "stable_revision": plan.revision,
                "canary_revision": None,
                "canary_percent": 0,
                "step": 0,
                "step_started": None,
                "gates": [],
            }
        )
        if status.canary_revision is not None or status.phase is RolloutPhase.PROGRESSING:
            nxt = nxt.model_copy(
                update={"phase": RolloutPhase.STABLE, "message": "spec.rollout removed: the spec serves in place"}
            )
        return RolloutPass(slots, None, nxt, write, pods)
    plan = plan_slots(isvc, slots)
    ev, names = (evaluation.gate, evaluation.names) if evaluation is not None else (None, None)
    d = decide_step(isvc.spec.rollout, status, plan.revision, observed, datetime.fromtimestamp(now, UTC), ev, names)
    return RolloutPass(slots, d, d.status, True, pods)


def _ready_by_slot(pods: Sequence[Mapping[str, Any]]) -> dict[Slot, int]:
    out = dict.fromkeys(Slot, 0)
    for p in pods:
        if pod_is_live(p) and pod_is_ready(p):
            slot = Slot.B if ((p.get("metadata") or {}).get("labels") or {}).get(LABEL_SLOT) == Slot.B.value else Slot.A
            out[slot] += 1
    return out


def slot_writes(isvc: InferenceService, rp: RolloutPass, granted: int) -> dict[str, tuple[int, int]]:
    """Deployment name -> (current, new) replicas of the slots whose replicas change (pure)."""
    targets = slot_replicas(rp.status, granted)
    current = {s: spec_replicas(d) for s, d in rp.slots.items() if d is not None}
    dropped = rp.decision is not None and rp.decision.action in (StepAction.ROLL_BACK, StepAction.ABORT)
    if dropped or rp.status.phase in (RolloutPhase.ROLLED_BACK, RolloutPhase.ABORTED):
        # a canary that failed or was aborted goes at once; the stable slot grows to the total meanwhile
        plan = dict(targets)
    else:
        ready = _ready_by_slot(rp.pods)
        plan = make_before_break({s: targets[s] for s in current}, current, {s: ready[s] for s in current})
    out = {}
    for slot, want in plan.items():
        dep = rp.slots.get(slot)
        if dep is None:
            continue
        have = spec_replicas(dep)
        if want != have:
            out[slot_name(isvc.name, slot)] = (have, want)
    return out


_REASONS = {
    StepAction.START: Reason.ROLLOUT_STARTED,
    StepAction.NEXT_STEP: Reason.ROLLOUT_STEP,
    StepAction.HOLD: Reason.ROLLOUT_WAITING,
}
_ENDED = {
    RolloutPhase.PROMOTED: Reason.PROMOTED,
    RolloutPhase.ROLLED_BACK: Reason.ROLLED_BACK,
    RolloutPhase.ABORTED: Reason.ABORTED,
    RolloutPhase.STABLE: Reason.NO_ROLLOUT,
}


def rollout_condition(conds: list[Condition], rp: RolloutPass, generation: int, now: float) -> list[Condition]:
    """RolloutProgressing: True while a canary runs (its step and gates), False with how the last one ended."""
    t = datetime.fromtimestamp(now, UTC)
    st = rp.status
    c = ConditionType.ROLLOUT_PROGRESSING
    if st.phase is RolloutPhase.PROGRESSING and st.canary_revision is not None:
        action = rp.decision.action if rp.decision is not None else StepAction.HOLD
        msg = rp.decision.message if rp.decision is not None else st.message
        return set_condition(conds, c, True, _REASONS.get(action, Reason.ROLLOUT_WAITING), msg[:1000], generation, t)
    return set_condition(
        conds, c, False, _ENDED.get(st.phase, Reason.NO_ROLLOUT), (st.message or "one revision serves")[:1000], generation, t
    )


def status_patch(rp: RolloutPass, service: str, writes: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """status.rollout as a merge patch, with each revision's replicas after ``writes``; absent fields are
    written as null, so they are cleared."""

    def replicas(slot: Slot) -> int:
        name = slot_name(service, slot)
        return writes[name][1] if name in writes else spec_replicas(rp.slots.get(slot))

    st = rp.status
    canary = replicas(st.stable_slot.other) if st.canary_revision is not None else 0
    st = st.model_copy(update={"stable_replicas": replicas(st.stable_slot), "canary_replicas": canary})
    return dict(st.model_dump(by_alias=True, mode="json"))
