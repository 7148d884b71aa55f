"""The rollout step machine (pure): spec + status + what the current step observed + ``now`` -> the next status,
one action and its message. It decides; the controller scales the slots, runs the evaluation and writes status.

Everything needed to resume is in ``RolloutStatus`` (revisions, slot, step, ``stepStarted`` in RFC 3339): an
operator restarted mid-rollout resumes the same step with the time already spent in it. The observation's
counts are "since ``stepStarted``" (the controller asks Prometheus for that window), so they survive a restart.

Rules, in this order (``revision`` is the spec's, ``revision_of(spec)``):

1. ``spec.rollout.action`` unset clears ``actionRevision`` (a later action applies again).
2. No stable revision yet (a new service): the spec's revision becomes the stable one in slot a. HOLD.
3. No canary:
   * the spec's revision is the stable one: HOLD; a RolledBack/Aborted phase becomes Stable (the user
     reverted the spec) and ``failedRevision`` is cleared;
   * the spec's revision is ``failedRevision``: HOLD, not retried until the spec asks for another revision;
   * in both an action set now has no canary to apply to: it is recorded against the stable revision, so it
     never applies to a later one;
   * else START: the canary runs in the other slot at step 0, ``failedRevision`` cleared. An action not yet
     recorded is recorded against this canary and applies on the next pass.
4. A canary runs:
   * the spec's revision is the stable one (the user reverted the spec): ABORT, phase Stable, the canary is
     dropped and not marked failed;
   * the spec's revision is ``failedRevision``: ABORT of the running canary, phase RolledBack (not retried);
   * another new revision: START of it in the canary's slot, replacing the canary (its step 0);
   * ``spec.rollout.action`` set and ``actionRevision`` None or the canary: Promote -> PROMOTE at once,
     Abort -> ABORT (canary to zero, ``failedRevision`` set); ``actionRevision`` records the canary;
   * the gates of the step (latency, errors; the evaluation at step 0 only when ``spec.rollout.evaluation``
     is set, once per rollout: ``rollout.evaluation``): any failed -> ROLL_BACK (canary to zero,
     ``failedRevision`` set, the gate's message in ``status.message``). At step 0 with an evaluation, the
     latency and error failures are not acted upon while the evaluation runs (its own requests are in the
     canary's figures); when it passes, the step starts again (HOLD, ``stepStarted`` = now) and latency
     waits ``EVALUATION_P99_WINDOW_S`` more; the passed verdict is carried in the later steps' gates;
   * ``minSeconds`` elapsed, ``minRequests`` served by the canary and every gate passed: NEXT_STEP, or
     PROMOTE after the last step (the canary's slot becomes the stable slot);
   * else HOLD, with the gates as they stand.

Without an observation (no metrics) the gates are undecided and the step holds: a step never passes, and
never fails, on figures it does not have. A step whose gates cannot be judged (no traffic) holds until
traffic comes or the user acts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from foresail.api.objects import format_rfc3339, parse_rfc3339
from foresail.api.rollout import (
    GateName,
    GateResult,
    RolloutAction,
    RolloutPhase,
    RolloutSpec,
    RolloutStatus,
    RolloutStep,
)
from foresail.rollout.gates import error_gate, latency_gate

__all__ = ["StepAction", "StepDecision", "StepObservation", "decide_step"]


class StepAction(StrEnum):
    HOLD = "Hold"  # nothing changes in the slots (status may: gates, phase, actionRevision)
    START = "Start"  # a new canary at step 0 in the slot that is not the stable one
    NEXT_STEP = "NextStep"  # the canary's share grows to the next step's percent
    PROMOTE = "Promote"  # the canary becomes the stable revision (100%), the old stable slot goes to zero
    ROLL_BACK = "RollBack"  # a gate failed: the canary goes to zero
    ABORT = "Abort"  # spec.rollout.action=Abort or the spec reverted: the canary goes to zero


@dataclass(frozen=True)
class StepObservation:
    """What the current step saw, counted since ``status.stepStarted``. Totals include errors."""

    canary_requests: int
    canary_errors: int
    canary_p99_ms: float | None
    stable_requests: int
    stable_errors: int
    stable_p99_ms: float | None
    slo_p99_ms: float


@dataclass(frozen=True)
class StepDecision:
    status: RolloutStatus
    action: StepAction
    message: str  # in words, for the Event (and the log on HOLD)
    gates: list[GateResult] = field(default_factory=list)  # the gates judged this pass (also in status.gates)


def _update(status: RolloutStatus, now: datetime, **changes: Any) -> RolloutStatus:
    phase = changes.get("phase", status.phase)
    if phase != status.phase:
        changes["time"] = format_rfc3339(now)
    return status.model_copy(update=changes)


def _step_of(spec: RolloutSpec, status: RolloutStatus) -> tuple[int, RolloutStep]:
    i = min(status.step, len(spec.steps) - 1)  # steps removed from the spec mid-rollout: the last one left
    return i, spec.steps[i]


def _where(spec: RolloutSpec, i: int) -> str:
    return f"step {i + 1} of {len(spec.steps)} ({spec.steps[i].percent}%)"


def _start(spec: RolloutSpec, status: RolloutStatus, revision: str, now: datetime, why: str) -> StepDecision:
    slot = status.stable_slot.other
    action_revision = status.action_revision
    if spec.action is not None and action_revision is None:
        action_revision = revision  # the canary present when the action was first seen: it applies next pass
    msg = f"{why}: canary {revision} starts in slot {slot.value} at {_where(spec, 0)}"
    st = _update(
        status,
        now,
        phase=RolloutPhase.PROGRESSING,
        canary_revision=revision,
        step=0,
        step_started=format_rfc3339(now),
        canary_percent=spec.steps[0].percent,
        gates=[],
        evaluations=[],
        action_revision=action_revision,
        failed_revision=None,
        message=msg,
    )
    return StepDecision(st, StepAction.START, msg)


def _drop_canary(status: RolloutStatus, now: datetime, phase: RolloutPhase, msg: str, **changes: Any) -> RolloutStatus:
    # status.evaluations stays: the EvalJobs are left for inspection until the next rollout starts
    return _update(status, now, phase=phase, canary_revision=None, canary_percent=0, step=0, step_started=None, message=msg, **changes)


def _promote(status: RolloutStatus, now: datetime, why: str, gates: list[GateResult]) -> StepDecision:
    canary = status.canary_revision or ""
    slot = status.stable_slot.other
    msg = f"canary {canary} promoted ({why}): it serves 100% from slot {slot.value}; {status.stable_revision} in slot {status.stable_slot.value} goes to zero"
    st = _drop_canary(status, now, RolloutPhase.PROMOTED, msg, stable_revision=canary, stable_slot=slot, gates=gates)
    return StepDecision(st, StepAction.PROMOTE, msg, gates)


def _gates(
    spec: RolloutSpec, i: int, step: RolloutStep, seen: StepObservation | None, evaluation: GateResult | None
) -> list[GateResult]:
    wants_evaluation = i == 0 and spec.evaluation is not None
    if seen is None:
        out = [
            GateResult(gate=GateName.LATENCY, passed=None, message="no metrics of the canary"),
            GateResult(gate=GateName.ERRORS, passed=None, message="no metrics of the canary"),
        ]
    else:
        out = [
            latency_gate(
                seen.canary_p99_ms,
                seen.stable_p99_ms,
                seen.slo_p99_ms,
                spec.gates.p99_margin_percent,
                seen.canary_requests,
                step.min_requests,
            ),
            error_gate(
                seen.canary_errors,
                seen.canary_requests,
                seen.stable_errors,
                seen.stable_requests,
                spec.gates.error_alpha,
                step.min_requests,
            ),
        ]
    if wants_evaluation:
        # judged with or without metrics: a regression found rolls back even while Prometheus is away
        out.append(evaluation or GateResult(gate=GateName.EVALUATION, passed=None, message="evaluation not started"))
    return out


# Triton's latency summary covers about a minute: a canary's p99 still holds the evaluation's requests for
# this long after the evaluation ended
EVALUATION_P99_WINDOW_S = 60.0


def _held_during_evaluation(g: GateResult) -> GateResult:
    """A latency or error gate not acted upon while the evaluation's own requests are in the canary's figures
    (a failure only: a regression found by the evaluation still rolls back at once)."""
    if g.gate is GateName.EVALUATION or g.passed is not False:
        return g
    return g.model_copy(update={"passed": None, "message": f"{g.message} (not judged: the evaluation's own requests are in these figures)"})


def _since_start(status: RolloutStatus, now: datetime) -> float:
    return now.timestamp() - parse_rfc3339(status.step_started) if status.step_started else 0.0


def decide_step(
    spec: RolloutSpec,
    status: RolloutStatus,
    revision: str,
    observed: StepObservation | None,
    now: datetime,
    evaluation: GateResult | None = None,
    evaluations: list[str] | None = None,
) -> StepDecision:
    """The next rollout status and action for the spec's ``revision`` (module docstring: the rules).

    ``evaluation``: the evaluation gate's verdict on the running canary (``rollout.evaluation``), None: not
    started; ``evaluations``: the names of its EvalJobs, recorded in ``status.evaluations`` while the canary runs."""
    if spec.action is None and status.action_revision is not None:
        status = status.model_copy(update={"action_revision": None})

    if not status.stable_revision:
        msg = f"revision {revision} is the first: stable in slot {status.stable_slot.value}"
        return StepDecision(_update(status, now, phase=RolloutPhase.STABLE, stable_revision=revision, message=msg), StepAction.HOLD, msg)

    canary = status.canary_revision
    if canary is None:
        starts = revision not in (status.stable_revision, status.failed_revision)
        if spec.action is not None and status.action_revision is None and not starts:
            # no canary to apply it to: recorded against the stable revision, so it never applies to a later one
            status = status.model_copy(update={"action_revision": status.stable_revision})
        if revision == status.stable_revision:
            if status.phase in (RolloutPhase.ROLLED_BACK, RolloutPhase.ABORTED):
                msg = f"spec reverted to the stable revision {revision}"
                st = _update(status, now, phase=RolloutPhase.STABLE, failed_revision=None, message=msg)
                return StepDecision(st, StepAction.HOLD, msg)
            return StepDecision(status, StepAction.HOLD, f"revision {revision} is stable")
        if revision == status.failed_revision:
            msg = f"revision {revision} was {status.phase.value.lower()}: not retried until spec.model or spec.triton changes"
            return StepDecision(status, StepAction.HOLD, msg)
        return _start(spec, status, revision, now, f"new revision {revision}")

    if revision == status.stable_revision:
        msg = f"spec reverted to the stable revision {revision}: canary {canary} dropped"
        return StepDecision(_drop_canary(status, now, RolloutPhase.STABLE, msg, gates=[]), StepAction.ABORT, msg)
    if revision == status.failed_revision:
        msg = f"spec asks for revision {revision}, rolled back before: canary {canary} dropped, {revision} not retried"
        return StepDecision(_drop_canary(status, now, RolloutPhase.ROLLED_BACK, msg, gates=[]), StepAction.ABORT, msg)
    if revision != canary:
        return _start(spec, status, revision, now, f"new revision {revision} replaces canary {canary}")

    if evaluations is not None and evaluations != status.evaluations:
        status = status.model_copy(update={"evaluations": list(evaluations)})
    if spec.action is not None and status.action_revision in (None, canary):
        status = status.model_copy(update={"action_revision": canary})
        if spec.action is RolloutAction.PROMOTE:
            return _promote(status, now, "spec.rollout.action=Promote", status.gates)
        msg = f"canary {canary} aborted by spec.rollout.action=Abort: scaled to zero, not retried until the spec changes"
        st = _drop_canary(status, now, RolloutPhase.ABORTED, msg, failed_revision=canary)
        return StepDecision(st, StepAction.ABORT, msg)

    i, step = _step_of(spec, status)
    just_passed = evaluation is not None and evaluation.passed and not any(g.gate is GateName.EVALUATION and g.passed for g in status.gates)
    if i == 0 and spec.evaluation is not None and evaluation is not None and just_passed:
        # the evaluation just passed: its own requests sit in the canary's counts and p99 (Triton's metrics
        # do not tell them from production's), so the step's measurement starts again from now
        msg = f"canary {canary} at {_where(spec, i)}: evaluation passed; the step's latency and error window starts now"
        st = _update(status, now, step=i, step_started=format_rfc3339(now), canary_percent=step.percent, gates=[evaluation], message=msg)
        return StepDecision(st, StepAction.HOLD, msg, [evaluation])
    gates = _gates(spec, i, step, observed, evaluation)
    if i == 0 and spec.evaluation is not None and not (evaluation is not None and evaluation.passed):
        gates = [_held_during_evaluation(g) for g in gates]
    elif i == 0 and spec.evaluation is not None and _since_start(status, now) < EVALUATION_P99_WINDOW_S:
        gates = [_held_during_evaluation(g) if g.gate is GateName.LATENCY else g for g in gates]
    if i > 0:  # the evaluation gate's verdict at step 0 stays in status.gates, the evidence of what it judged
        gates += [g for g in status.gates if g.gate is GateName.EVALUATION and g.passed]
    where = _where(spec, i)
    failed = [g for g in gates if g.passed is False]
    if failed:
        reasons = "; ".join(f"{g.gate.value} gate failed: {g.message}" for g in failed)
        msg = f"canary {canary} rolled back at {where}: {reasons}"
        st = _drop_canary(status, now, RolloutPhase.ROLLED_BACK, msg, failed_revision=canary, gates=gates)
        return StepDecision(st, StepAction.ROLL_BACK, msg, gates)

    started = parse_rfc3339(status.step_started) if status.step_started else None
    if started is None:  # a status written without the step's start (by hand): the step starts now
        started = now.timestamp()
        status = status.model_copy(update={"step_started": format_rfc3339(now)})
    elapsed = now.timestamp() - started
    served = observed.canary_requests if observed is not None else 0
    waiting = []
    if elapsed < step.min_seconds:
        waiting.append(f"{elapsed:.0f} of {step.min_seconds} s")
    if served < step.min_requests:
        waiting.append(f"{served} of {step.min_requests} requests")
    waiting += [f"{g.gate.value} gate: {g.message}" for g in gates if g.passed is None]
    if waiting:
        msg = f"canary {canary} at {where}: waiting for " + "; ".join(waiting)
        st = _update(status, now, step=i, canary_percent=step.percent, gates=gates, message=f"canary {canary} at {where}")
        return StepDecision(st, StepAction.HOLD, msg, gates)

    if i + 1 >= len(spec.steps):
        return _promote(status, now, f"all {len(spec.steps)} steps passed", gates)
    nxt = i + 1
    msg = f"canary {canary} passed {where}; now at {_where(spec, nxt)}"
    st = _update(
        status,
        now,
        step=nxt,
        step_started=format_rfc3339(now),
        canary_percent=spec.steps[nxt].percent,
        gates=[g for g in gates if g.gate is GateName.EVALUATION],  # passed: carried to the later steps
        message=f"canary {canary} at {_where(spec, nxt)}",
    )
    return StepDecision(st, StepAction.NEXT_STEP, msg, gates)
