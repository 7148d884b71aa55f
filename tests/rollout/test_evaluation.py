"""The evaluation gate (pure): the EvalJobs' names and bodies, and the verdict read from the canary job, as named cases."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.api.evaljob import MAX_NAME_LENGTH, EvalJob
from foresail.api.meta import service_name_problem
from foresail.api.rollout import RolloutEvaluation
from foresail.rollout.evaluation import evaljob_bodies, evaljob_name, evaluation_gate

STABLE, CANARY = "aaaaaaaaaaaa", "bbbbbbbbbbbb"
OWNER = {"apiVersion": "foresail.dev/v1alpha1", "kind": "InferenceService", "name": "svc", "uid": "u1", "controller": True}
EV = RolloutEvaluation.model_validate({"dataset": {"configMap": {"name": "golden"}}, "alpha": 0.01, "shards": 3})


@pytest.mark.parametrize(
    ("name", "service", "expected"),
    [
        ("short: service-eval-revision", "svc", "svc-eval-aaaaaaaa"),
        ("26 characters: fits as it is", "a" * 26, "a" * 26 + "-eval-aaaaaaaa"),
        ("longer: cut, with a hash of the whole name", "a" * 45, None),
    ],
)
def test_names_fit_an_evaljob(name: str, service: str, expected: str | None) -> None:
    got = evaljob_name(service, STABLE)
    assert len(got) <= MAX_NAME_LENGTH and service_name_problem(got, MAX_NAME_LENGTH) is None, got
    assert got.endswith("-eval-aaaaaaaa")
    if expected is not None:
        assert got == expected
    else:
        assert evaljob_name("a" * 44 + "b", STABLE) != got, "two long names sharing a prefix get two names"


def test_bodies_stable_then_canary_compared_with_it() -> None:
    stable, canary = evaljob_bodies("svc", "ns", OWNER, EV, STABLE, CANARY)
    assert [b["metadata"]["name"] for b in (stable, canary)] == ["svc-eval-aaaaaaaa", "svc-eval-bbbbbbbb"]
    for b, rev in ((stable, STABLE), (canary, CANARY)):
        job = EvalJob.model_validate(b)  # a valid EvalJob
        assert job.spec.target.revision == rev and job.spec.target.inference_service == "svc"
        assert job.spec.mode.value == "shared" and job.spec.priority.value == "batch" and job.spec.traffic.yield_to_production
        assert job.spec.shards == 3 and job.spec.dataset == EV.dataset and job.spec.scorer == EV.scorer
        assert b["metadata"]["ownerReferences"] == [OWNER]
    assert stable["spec"].get("baseline") is None
    assert canary["spec"]["baseline"] == {"evalJob": "svc-eval-aaaaaaaa", "alpha": 0.01}


def job(name: str, phase: str = "Succeeded", reason: str | None = None, status: str = "Unknown", baseline: dict[str, Any] | None = None) -> EvalJob:
    st: dict[str, Any] = {"phase": phase}
    if reason is not None:
        st["conditions"] = [{"type": "Regressed", "status": status, "reason": reason, "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    if baseline:
        st["baseline"] = baseline
    body = {"metadata": {"name": name, "namespace": "ns"}, "spec": {"target": {"inferenceService": "svc"}, "dataset": {"configMap": {"name": "g"}}}, "status": st}
    return EvalJob.model_validate(body)


FIGS = {"paired": 200, "flippedWorse": 19, "flippedBetter": 0, "pValue": 1.9e-06, "delta": -0.095}
S = job("s")

# name, canary job, stable job -> passed, words in the message
GATE_CASES: list[tuple[str, EvalJob | None, EvalJob | None, bool | None, str]] = [
    ("no jobs yet: pending", None, None, None, "not created yet"),
    ("running: pending", job("c", "Running"), job("s", "Running"), None, "running"),
    ("succeeded, comparison not written yet: pending", job("c"), S, None, "running"),
    ("stable job not finished: pending", job("c", reason="BaselineIncomplete"), job("s", "Running"), None, "BaselineIncomplete"),
    ("comparing: pending", job("c", reason="Comparing"), S, None, "comparing c with s"),
    ("regressed: failed with the figures", job("c", reason="Regressed", status="True", baseline=FIGS), S, False,
     "19 of 200 items flipped worse (0 better), p=1.9e-06, delta=-0.0950"),
    ("no regression: passed", job("c", reason="NoRegression", status="False", baseline={**FIGS, "flippedWorse": 1, "pValue": 0.5}), S, True,
     "no regression: 1 of 200 items flipped worse"),
    ("undecided: passed, saying so", job("c", reason="Undecided", baseline={**FIGS, "flippedWorse": 0, "pValue": None}), S, True,
     "undecided, passed (no evidence of a regression)"),
    ("the canary job failed: held, asking for a decision", job("c", "Failed"), S, None, "EvalJob c (canary) failed: set spec.rollout.action"),
    ("the stable job failed: held", job("c", "Running"), job("s", "Failed"), None, "EvalJob s (stable) failed"),
    ("baseline invalid: held, asking for a decision", job("c", reason="BaselineInvalid"), S, None, "BaselineInvalid: m; set spec.rollout.action"),
    ("baseline not found: held", job("c", reason="BaselineNotFound"), S, None, "BaselineNotFound"),
    ("compare failed: held", job("c", reason="CompareFailed"), S, None, "CompareFailed"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "canary", "stable", "passed", "words"), GATE_CASES, ids=[c[0] for c in GATE_CASES])
def test_evaluation_gate(name: str, canary: EvalJob | None, stable: EvalJob | None, passed: bool | None, words: str) -> None:
    g = evaluation_gate(canary, stable)
    assert g.gate.value == "evaluation"
    assert g.passed is passed, (name, g.message)
    assert words in g.message, (name, g.message)
