"""The rollout step machine (pure) with a passed clock: each transition as a named case, a whole rollout
walked step by step, and a resume from a status round-tripped through JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from foresail.api.objects import format_rfc3339
from foresail.api.rollout import GateName, GateResult, RolloutPhase, RolloutSpec, RolloutStatus, Slot
from foresail.rollout.steps import StepAction, StepObservation, decide_step

T0 = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)
STABLE, CANARY, NEWER, OLDER = "aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc", "dddddddddd"
EVALUATION = {"dataset": {"configMap": {"name": "golden"}}}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def spec(**changes: Any) -> RolloutSpec:
    """Two steps, 10% then 50%, each 60 s and 200 requests at least."""
    base: dict[str, Any] = {
        "steps": [{"percent": 10, "minSeconds": 60, "minRequests": 200}, {"percent": 50, "minSeconds": 60, "minRequests": 200}]
    }
    return RolloutSpec.model_validate({**base, **changes})


def status(**changes: Any) -> RolloutStatus:
    """The stable revision serving alone from slot a."""
    return RolloutStatus(stable_revision=STABLE).model_copy(update=changes)


def running(step: int = 0, **changes: Any) -> RolloutStatus:
    """CANARY in slot b at ``step``, started at T0."""
    base: dict[str, Any] = {
        "phase": RolloutPhase.PROGRESSING,
        "canary_revision": CANARY,
        "step": step,
        "step_started": format_rfc3339(T0),
        "canary_percent": (10, 50)[min(step, 1)],
    }
    return status(**{**base, **changes})


def seen(
    requests: int = 1000, errors: int = 0, p99: float | None = 50.0, stable_p99: float | None = 50.0
) -> StepObservation:
    return StepObservation(
        canary_requests=requests,
        canary_errors=errors,
        canary_p99_ms=p99,
        stable_requests=10 * requests,
        stable_errors=0,
        stable_p99_ms=stable_p99,
        slo_p99_ms=100.0,
    )


EVAL_PASSED = GateResult(gate=GateName.EVALUATION, passed=True, message="0 of 500 items flipped")
EVAL_FAILED = GateResult(gate=GateName.EVALUATION, passed=False, message="51 of 500 items flipped to wrong, McNemar p = 1e-12")
ROLLED_BACK = {"phase": RolloutPhase.ROLLED_BACK, "canary_revision": None, "canary_percent": 0, "failed_revision": CANARY}

# name, spec, status, the spec's revision, observation, now -> action, status fields, words in the message
CASES: list[tuple[str, RolloutSpec, RolloutStatus, str, StepObservation | None, datetime, StepAction, dict[str, Any], str]] = [
    ("a new service: its first revision is stable", spec(), RolloutStatus(), STABLE, None, at(0), StepAction.HOLD,
     {"phase": RolloutPhase.STABLE, "stable_revision": STABLE, "stable_slot": Slot.A, "canary_revision": None}, "is the first"),
    ("the stable revision, nothing to do", spec(), status(), STABLE, None, at(0), StepAction.HOLD, {"phase": RolloutPhase.STABLE}, "is stable"),
    ("a new revision starts step 0 in the other slot", spec(), status(), CANARY, None, at(5), StepAction.START,
     {"phase": RolloutPhase.PROGRESSING, "canary_revision": CANARY, "step": 0, "step_started": "2026-01-02T03:00:05Z", "canary_percent": 10},
     "canary bbbbbbbbbb starts in slot b at step 1 of 2 (10%)"),
    ("stable in slot b: the canary starts in slot a", spec(), status(stable_slot=Slot.B), CANARY, None, at(0), StepAction.START,
     {"stable_slot": Slot.B}, "in slot a"),
    ("a rolled-back revision is not retried", spec(), status(phase=RolloutPhase.ROLLED_BACK, failed_revision=CANARY, message="latency"), CANARY,
     seen(), at(999), StepAction.HOLD, {"phase": RolloutPhase.ROLLED_BACK, "canary_revision": None, "message": "latency"}, "not retried"),
    ("an aborted revision is not retried", spec(), status(phase=RolloutPhase.ABORTED, failed_revision=CANARY), CANARY, None, at(0),
     StepAction.HOLD, {"phase": RolloutPhase.ABORTED}, "was aborted: not retried"),
    ("after a rollback another revision starts", spec(), status(phase=RolloutPhase.ROLLED_BACK, failed_revision=CANARY), NEWER, None, at(0),
     StepAction.START, {"canary_revision": NEWER, "failed_revision": None}, "new revision cccccccccc"),
    ("after a rollback the spec reverted: Stable again", spec(), status(phase=RolloutPhase.ROLLED_BACK, failed_revision=CANARY), STABLE,
     None, at(0), StepAction.HOLD, {"phase": RolloutPhase.STABLE, "failed_revision": None, "time": "2026-01-02T03:00:00Z"}, "reverted"),
    ("too early: held with the gates passed", spec(), running(), CANARY, seen(), at(30), StepAction.HOLD,
     {"step": 0, "canary_percent": 10, "phase": RolloutPhase.PROGRESSING}, "waiting for 30 of 60 s"),
    ("too few requests: held, gates undecided", spec(), running(), CANARY, seen(requests=120), at(90), StepAction.HOLD,
     {"step": 0}, "120 of 200 requests"),
    ("no metrics: held, never failed", spec(), running(), CANARY, None, at(90), StepAction.HOLD, {"step": 0}, "no metrics of the canary"),
    ("step 0 passed: the next step", spec(), running(), CANARY, seen(), at(61), StepAction.NEXT_STEP,
     {"step": 1, "canary_percent": 50, "step_started": "2026-01-02T03:01:01Z", "gates": []}, "passed step 1 of 2 (10%); now at step 2 of 2 (50%)"),
    ("the last step passed: promoted, slots swapped", spec(), running(step=1), CANARY, seen(), at(61), StepAction.PROMOTE,
     {"phase": RolloutPhase.PROMOTED, "stable_revision": CANARY, "stable_slot": Slot.B, "canary_revision": None, "canary_percent": 0},
     "all 2 steps passed"),
    ("slow canary: rolled back with the p99 numbers", spec(), running(), CANARY, seen(p99=150.0, stable_p99=50.0), at(61), StepAction.ROLL_BACK,
     {**ROLLED_BACK, "stable_revision": STABLE, "message": "canary bbbbbbbbbb rolled back at step 1 of 2 (10%): latency gate failed: canary p99 150 ms > SLO 100 ms"},
     "canary p99 150 ms > SLO 100 ms"),
    ("slower than stable by more than the margin, before minSeconds", spec(), running(), CANARY, seen(p99=80.0, stable_p99=40.0), at(10),
     StepAction.ROLL_BACK, ROLLED_BACK, "canary p99 80 ms > stable 40 ms x 1.20 = 48 ms"),
    ("errors: rolled back with the counts", spec(), running(), CANARY, seen(errors=40), at(61), StepAction.ROLL_BACK, ROLLED_BACK,
     "errors gate failed: canary 40/1000 errors (4.00%), stable 0/10000 (0.00%): canary higher"),
    ("evaluation at step 0 not started: held", spec(evaluation=EVALUATION), running(), CANARY, seen(), at(600), StepAction.HOLD,
     {"step": 0}, "evaluation gate: evaluation not started"),
    ("no evaluation after step 0", spec(evaluation=EVALUATION), running(step=1), CANARY, seen(), at(61), StepAction.PROMOTE,
     {"stable_revision": CANARY}, "all 2 steps passed"),
    ("action Promote: at once, recorded", spec(action="Promote"), running(), CANARY, seen(requests=0), at(1), StepAction.PROMOTE,
     {"stable_revision": CANARY, "stable_slot": Slot.B, "action_revision": CANARY, "phase": RolloutPhase.PROMOTED}, "spec.rollout.action=Promote"),
    ("action Promote recorded for this canary: still applies", spec(action="Promote"), running(action_revision=CANARY), CANARY, None, at(1),
     StepAction.PROMOTE, {"stable_revision": CANARY}, "promoted"),
    ("action Promote wins over a failing gate", spec(action="Promote"), running(), CANARY, seen(p99=500.0), at(1), StepAction.PROMOTE,
     {"stable_revision": CANARY}, "promoted"),
    ("action Abort: canary to zero, not retried", spec(action="Abort"), running(), CANARY, seen(), at(1), StepAction.ABORT,
     {"phase": RolloutPhase.ABORTED, "canary_revision": None, "canary_percent": 0, "failed_revision": CANARY, "action_revision": CANARY},
     "aborted by spec.rollout.action=Abort"),
    ("an action recorded for another revision does not apply", spec(action="Promote"), running(action_revision=OLDER), CANARY, seen(), at(30),
     StepAction.HOLD, {"canary_revision": CANARY, "action_revision": OLDER}, "waiting"),
    ("an action set with the new revision: recorded, applied next pass", spec(action="Promote"), status(), CANARY, None, at(0),
     StepAction.START, {"action_revision": CANARY}, "starts"),
    ("an action set with no rollout: recorded against the stable revision", spec(action="Abort"), status(), STABLE, None, at(0),
     StepAction.HOLD, {"action_revision": STABLE, "phase": RolloutPhase.STABLE}, "is stable"),
    ("an action set after a rollback: recorded against the stable revision", spec(action="Promote"),
     status(phase=RolloutPhase.ROLLED_BACK, failed_revision=CANARY), CANARY, None, at(0), StepAction.HOLD,
     {"action_revision": STABLE, "canary_revision": None}, "not retried"),
    ("an action already recorded does not apply to the next revision", spec(action="Promote"), status(action_revision=STABLE), CANARY,
     None, at(0), StepAction.START, {"action_revision": STABLE}, "starts"),
    ("the action removed: its record cleared", spec(), running(action_revision=OLDER), CANARY, seen(), at(30), StepAction.HOLD,
     {"action_revision": None}, "waiting"),
    ("the spec reverted mid-rollout: canary dropped, not failed", spec(), running(), STABLE, seen(), at(30), StepAction.ABORT,
     {"phase": RolloutPhase.STABLE, "canary_revision": None, "canary_percent": 0, "failed_revision": None, "stable_revision": STABLE},
     "spec reverted to the stable revision aaaaaaaaaa: canary bbbbbbbbbb dropped"),
    ("a newer revision replaces the canary at step 0", spec(), running(step=1), NEWER, seen(), at(30), StepAction.START,
     {"canary_revision": NEWER, "step": 0, "canary_percent": 10, "stable_revision": STABLE, "stable_slot": Slot.A}, "replaces canary bbbbbbbbbb"),
    ("the spec asks for a failed revision mid-rollout: canary dropped", spec(), running(failed_revision=OLDER), OLDER, seen(), at(30),
     StepAction.ABORT, {"phase": RolloutPhase.ROLLED_BACK, "canary_revision": None, "failed_revision": OLDER}, "not retried"),
    ("steps removed from the spec mid-rollout: the last one left", spec(steps=[{"percent": 20, "minSeconds": 0, "minRequests": 0}]),
     running(step=1), CANARY, seen(), at(1), StepAction.PROMOTE, {"stable_revision": CANARY}, "all 1 steps passed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "spec_", "status_", "revision", "observed", "now", "action", "fields", "words"), CASES, ids=[c[0] for c in CASES]
)
def test_decide_step(
    name: str,
    spec_: RolloutSpec,
    status_: RolloutStatus,
    revision: str,
    observed: StepObservation | None,
    now: datetime,
    action: StepAction,
    fields: dict[str, Any],
    words: str,
) -> None:
    before = status_.model_copy(deep=True)
    d = decide_step(spec_, status_, revision, observed, now)
    assert d.action is action, (name, d.message)
    assert {k: getattr(d.status, k) for k in fields} == fields, (name, d.message)
    assert words in d.message, (name, d.message)
    assert status_ == before, "the input status is not changed"
    RolloutStatus.model_validate(d.status.model_dump(by_alias=True))  # a valid status to write


EVAL_PENDING = GateResult(gate=GateName.EVALUATION, passed=None, message="EvalJobs x-eval-aaaaaaaa, x-eval-bbbbbbbb running")
EVAL_HELD = GateResult(gate=GateName.EVALUATION, passed=None, message="EvalJob x-eval-bbbbbbbb failed: set spec.rollout.action")
JOBS = ["x-eval-aaaaaaaa", "x-eval-bbbbbbbb"]

# name, status, observation, the evaluation gate's verdict, its EvalJobs, now -> action, status fields, words in the message
EVAL_CASES: list[tuple[str, RolloutStatus, StepObservation | None, GateResult | None, list[str] | None, datetime, StepAction, dict[str, Any], str]] = [
    ("jobs running: held, their names recorded", running(), seen(), EVAL_PENDING, JOBS, at(600), StepAction.HOLD,
     {"step": 0, "evaluations": JOBS}, "evaluation gate: EvalJobs x-eval-aaaaaaaa, x-eval-bbbbbbbb running"),
    ("the evaluation just passed: the step's window starts again", running(), seen(), EVAL_PASSED, JOBS, at(61), StepAction.HOLD,
     {"step": 0, "step_started": format_rfc3339(at(61)), "gates": [EVAL_PASSED]}, "window starts now"),
    ("a slow canary is not rolled back on figures holding the evaluation's requests", running(), seen(p99=150.0), EVAL_PENDING, JOBS,
     at(61), StepAction.HOLD, {"step": 0}, "not judged: the evaluation's own requests"),
    ("within the p99 window after the evaluation: latency not judged yet", running(gates=[EVAL_PASSED]), seen(p99=150.0), EVAL_PASSED,
     JOBS, at(30), StepAction.HOLD, {"step": 0}, "not judged"),
    ("no regression, other gates passed: the next step", running(gates=[EVAL_PASSED]), seen(), EVAL_PASSED, JOBS, at(61), StepAction.NEXT_STEP,
     {"step": 1, "evaluations": JOBS}, "passed step 1"),
    ("no regression but too early: held", running(gates=[EVAL_PASSED]), seen(), EVAL_PASSED, JOBS, at(30), StepAction.HOLD, {"step": 0},
     "30 of 60 s"),
    ("no regression but the latency gate fails: rolled back", running(gates=[EVAL_PASSED]), seen(p99=150.0), EVAL_PASSED, JOBS, at(61),
     StepAction.ROLL_BACK,
     ROLLED_BACK, "latency gate failed"),
    ("regressed: rolled back with the flipped items, jobs kept", running(), seen(), EVAL_FAILED, JOBS, at(61), StepAction.ROLL_BACK,
     {**ROLLED_BACK, "evaluations": JOBS}, "evaluation gate failed: 51 of 500 items flipped to wrong, McNemar p = 1e-12"),
    ("regressed before minSeconds: rolled back at once", running(), seen(), EVAL_FAILED, JOBS, at(5), StepAction.ROLL_BACK, ROLLED_BACK,
     "evaluation gate failed"),
    ("regressed without metrics: still rolled back", running(), None, EVAL_FAILED, JOBS, at(61), StepAction.ROLL_BACK, ROLLED_BACK,
     "evaluation gate failed"),
    ("a failed EvalJob: held with its message, never promoted", running(), seen(), EVAL_HELD, JOBS, at(6000), StepAction.HOLD,
     {"step": 0, "phase": RolloutPhase.PROGRESSING}, "failed: set spec.rollout.action"),
    ("no verdict yet (no ready canary): held, no names", running(), seen(), None, None, at(61), StepAction.HOLD, {"evaluations": []},
     "evaluation not started"),
    ("after step 0 the verdict is not asked for", running(step=1), seen(), None, None, at(61), StepAction.PROMOTE,
     {"stable_revision": CANARY}, "all 2 steps passed"),

    ("a new revision: the earlier jobs forgotten", running(evaluations=JOBS), seen(), None, None, at(61), StepAction.START,
     {"canary_revision": NEWER, "evaluations": []}, "replaces canary"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "status_", "observed", "verdict", "jobs", "now", "action", "fields", "words"), EVAL_CASES, ids=[c[0] for c in EVAL_CASES]
)
def test_evaluation_gate_in_the_step_machine(
    name: str,
    status_: RolloutStatus,
    observed: StepObservation | None,
    verdict: GateResult | None,
    jobs: list[str] | None,
    now: datetime,
    action: StepAction,
    fields: dict[str, Any],
    words: str,
) -> None:
    revision = NEWER if "new revision" in name else CANARY
    d = decide_step(spec(evaluation=EVALUATION), status_, revision, observed, now, verdict, jobs)
    assert d.action is action, (name, d.message)
    assert {k: getattr(d.status, k) for k in fields} == fields, (name, d.message)
    assert words in d.message, (name, d.message)
    if action is StepAction.ROLL_BACK and verdict is EVAL_FAILED:
        assert d.status.message == d.message, "the gate and its figures are the rollout's reason"


def test_the_passed_evaluation_stays_in_the_gates_until_promotion() -> None:
    """The verdict judged at step 0 is the evidence of the promotion: carried in status.gates to the later
    steps and into the promoted status, never asked for again."""
    restarted = decide_step(spec(evaluation=EVALUATION), running(), CANARY, seen(), at(61), EVAL_PASSED, JOBS)
    assert restarted.action is StepAction.HOLD and restarted.status.step_started == format_rfc3339(at(61)), restarted.message
    d = decide_step(spec(evaluation=EVALUATION), roundtrip(restarted.status), CANARY, seen(), at(122), EVAL_PASSED, JOBS)
    assert d.action is StepAction.NEXT_STEP and d.status.gates == [EVAL_PASSED], d.status.gates
    held = decide_step(spec(evaluation=EVALUATION), roundtrip(d.status), CANARY, seen(), at(150), None, None)
    assert held.action is StepAction.HOLD and held.status.step == 1, held.message
    assert [g.gate for g in held.status.gates] == [GateName.LATENCY, GateName.ERRORS, GateName.EVALUATION]
    assert held.status.gates[-1] == EVAL_PASSED
    done = decide_step(spec(evaluation=EVALUATION), roundtrip(held.status), CANARY, seen(), at(300), None, None)
    assert done.action is StepAction.PROMOTE and done.status.gates[-1] == EVAL_PASSED, done.message
    assert all(g.passed for g in done.status.gates)


def roundtrip(st: RolloutStatus) -> RolloutStatus:
    """What the controller writes to status and reads back after a restart."""
    return RolloutStatus.model_validate(json.loads(json.dumps(st.model_dump(mode="json", by_alias=True, exclude_none=True))))


def test_resume_after_a_restart_keeps_the_step_and_its_time() -> None:
    s = spec()
    started = decide_step(s, status(), CANARY, None, at(0))
    assert started.action is StepAction.START
    # the operator restarts 30 s into step 0: the step's time already spent counts
    resumed = roundtrip(started.status)
    held = decide_step(s, resumed, CANARY, seen(), at(30))
    assert (held.action, held.status.step) == (StepAction.HOLD, 0)
    assert "30 of 60 s" in held.message
    moved = decide_step(s, roundtrip(held.status), CANARY, seen(), at(60))
    assert (moved.action, moved.status.step, moved.status.step_started) == (StepAction.NEXT_STEP, 1, "2026-01-02T03:01:00Z")


def test_a_whole_rollout_with_a_passed_clock() -> None:
    s = spec(steps=[{"percent": 10, "minSeconds": 60, "minRequests": 200}, {"percent": 50}, {"percent": 90, "minSeconds": 0}])
    st, actions, percents = status(), [], []
    for now, observed in [(0, None), (30, seen()), (60, seen()), (90, seen()), (120, seen()), (121, seen()), (122, seen())]:
        d = decide_step(s, roundtrip(st), CANARY, observed, at(now))
        st = d.status
        actions.append(d.action)
        percents.append(st.canary_percent)
    assert actions == [StepAction.START, StepAction.HOLD, StepAction.NEXT_STEP, StepAction.HOLD, StepAction.NEXT_STEP,
                       StepAction.PROMOTE, StepAction.HOLD]  # fmt: skip
    assert percents == [10, 10, 50, 50, 90, 0, 0]
    assert (st.phase, st.stable_revision, st.stable_slot, st.canary_revision) == (RolloutPhase.PROMOTED, CANARY, Slot.B, None)
    # the next revision starts in slot a, the promoted one's other
    nxt = decide_step(s, st, NEWER, None, at(200))
    assert (nxt.action, nxt.status.stable_slot, nxt.status.stable_revision) == (StepAction.START, Slot.B, CANARY)
    assert "slot a" in nxt.message


def test_phase_time_changes_only_with_the_phase() -> None:
    started = decide_step(spec(), status(time="2025-01-01T00:00:00Z"), CANARY, None, at(7))
    assert started.status.time == "2026-01-02T03:00:07Z"
    held = decide_step(spec(), started.status, CANARY, seen(), at(20))
    assert held.status.time == "2026-01-02T03:00:07Z"


def test_a_status_without_step_start_starts_the_step_now() -> None:
    d = decide_step(spec(), running(step_started=None), CANARY, seen(), at(100))
    assert (d.action, d.status.step_started) == (StepAction.HOLD, "2026-01-02T03:01:40Z")


def test_an_action_applies_only_to_the_canary_it_was_first_seen_with() -> None:
    promote = spec(action="Promote")
    # applied with the new revision: START records it, the next pass promotes
    started = decide_step(promote, status(), CANARY, None, at(0))
    promoted = decide_step(promote, roundtrip(started.status), CANARY, None, at(5))
    assert (started.action, promoted.action, promoted.status.stable_revision) == (StepAction.START, StepAction.PROMOTE, CANARY)
    # still in the spec when the next revision comes: recorded for CANARY, it does not promote NEWER
    nxt = decide_step(promote, roundtrip(promoted.status), NEWER, None, at(10))
    held = decide_step(promote, roundtrip(nxt.status), NEWER, seen(), at(20))
    assert (nxt.action, held.action, held.status.canary_revision) == (StepAction.START, StepAction.HOLD, NEWER)
    # removed, then set again: it applies to the canary present then
    cleared = decide_step(spec(), roundtrip(held.status), NEWER, seen(), at(25))
    again = decide_step(promote, roundtrip(cleared.status), NEWER, seen(), at(30))
    assert (cleared.status.action_revision, again.action, again.status.stable_revision) == (None, StepAction.PROMOTE, NEWER)
