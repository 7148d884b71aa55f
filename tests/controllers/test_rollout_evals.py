"""The evaluation gate in the autoscaler's pass against a fake apiserver: its EvalJobs created once the canary is
ready, their verdict rolling back a regressed canary with the figures, and the jobs of an earlier rollout deleted."""

from __future__ import annotations

from typing import Any

from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import format_rfc3339
from foresail.api.rollout import Slot
from foresail.render.triton import revision
from foresail.rollout.evaluation import evaljob_name
from tests.controllers.objects import NOW, node
from tests.controllers.test_autoscaler import one_pass
from tests.controllers.test_rollouts import NEW_ENV, ROLLOUT, _condition, _pod, _rollout, _service, _slot
from tests.fakes.apiserver import FakeApiServer
from tests.fakes.counters import steady
from tests.fakes.prometheus import answer, matrix

EVALUATION = {"dataset": {"configMap": {"name": "golden"}}, "alpha": 0.01, "shards": 2}


def _setup(api: FakeApiServer, canary_ready: bool = True, **status: Any) -> tuple[str, str, dict[str, Any]]:
    rollout = {**ROLLOUT, "evaluation": EVALUATION}
    old, new = _service(rollout=rollout), _service(triton__env=NEW_ENV, rollout=rollout)
    old_rev = revision(InferenceService.model_validate(old))
    new_rev = revision(InferenceService.model_validate(new))
    new["status"] = {
        "rollout": {
            "phase": "Progressing", "stableRevision": old_rev, "stableSlot": "a", "canaryRevision": new_rev,
            "step": 0, "stepStarted": format_rfc3339(NOW - 120), "canaryPercent": 50, **status,
        }
    }  # fmt: skip
    canary = _pod(0, new_rev, Slot.B, started=format_rfc3339(NOW - 110))
    if not canary_ready:
        canary["status"]["conditions"] = [c for c in canary["status"]["conditions"] if c["type"] != "Ready"]
    api.put(new, _slot(old, Slot.A, 1), _slot(new, Slot.B, 1), _pod(0, old_rev), canary, node("n1"))
    return old_rev, new_rev, new


async def _pass(api: FakeApiServer) -> None:
    samples = {
        ("team-a", "resnet", "resnet-a0"): steady(NOW - 119, NOW - 1, 10.0, p99_ms=40.0),
        ("team-a", "resnet", "resnet-b0"): steady(NOW - 109, NOW - 1, 10.0, p99_ms=42.0),
    }
    await one_pass(api, answer(matrix(samples, model="resnet50")))


async def test_a_ready_canary_gets_two_evaljobs_and_holds_for_their_verdict(api: FakeApiServer) -> None:
    old_rev, new_rev, body = _setup(api)
    await _pass(api)
    names = [evaljob_name("resnet", old_rev), evaljob_name("resnet", new_rev)]
    stable, canary = (api.get("EvalJob", "team-a", n) for n in names)
    assert stable is not None and canary is not None
    assert stable["spec"]["target"] == {"inferenceService": "resnet", "revision": old_rev}
    assert canary["spec"]["target"] == {"inferenceService": "resnet", "revision": new_rev}
    assert canary["spec"]["baseline"] == {"evalJob": names[0], "alpha": 0.01}
    assert (canary["spec"]["mode"], canary["spec"]["priority"]) == ("shared", "batch"), "the yielding, lowest-priority settings"
    assert canary["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    st = _rollout(api)
    assert (st["phase"], st["step"], st["evaluations"]) == ("Progressing", 0, names), "held at step 1 though its other gates passed"
    assert "evaluation gate" in _condition(api, "RolloutProgressing")["message"]


async def test_no_evaljobs_before_the_canary_is_ready(api: FakeApiServer) -> None:
    _setup(api, canary_ready=False)
    await _pass(api)
    assert not api.writes("EvalJob")
    assert "waiting for a ready canary replica" in _condition(api, "RolloutProgressing")["message"]


def _finished(api: FakeApiServer, name: str, reason: str | None, **baseline: Any) -> None:
    body = api.get("EvalJob", "team-a", name)
    assert body is not None
    st: dict[str, Any] = {"phase": "Succeeded"}
    if reason is not None:
        st["conditions"] = [{"type": "Regressed", "status": "True", "reason": reason, "message": "", "lastTransitionTime": "2027-01-01T00:00:00Z"}]
        st["baseline"] = baseline
    api.put({**body, "status": st})


async def test_a_regressed_canary_is_rolled_back_with_the_flipped_items(api: FakeApiServer) -> None:
    old_rev, new_rev, _ = _setup(api)
    await _pass(api)  # creates the jobs
    _finished(api, evaljob_name("resnet", old_rev), None)
    _finished(api, evaljob_name("resnet", new_rev), "Regressed", paired=200, flippedWorse=19, pValue=1.9e-06, delta=-0.095)
    await _pass(api)
    st = _rollout(api)
    assert (st["phase"], st.get("canaryRevision"), st["failedRevision"]) == ("RolledBack", None, new_rev)
    msg = _condition(api, "RolloutProgressing")["message"]
    assert "evaluation gate failed: 19 of 200 items flipped worse" in msg and "p=1.9e-06" in msg, msg
    scales = {w.path.split("/")[-2]: w.body["spec"]["replicas"] for w in api.writes("Deployment", sub="scale")}
    assert scales["resnet-b"] == 0
    assert len(st["evaluations"]) == 2, "the jobs are left for inspection until the next rollout"


async def test_no_regression_lets_the_step_pass(api: FakeApiServer) -> None:
    old_rev, new_rev, _ = _setup(api)
    await _pass(api)
    _finished(api, evaljob_name("resnet", old_rev), None)
    _finished(api, evaljob_name("resnet", new_rev), "NoRegression", paired=200, flippedWorse=1, pValue=0.5, delta=0.0)
    await _pass(api)
    st = _rollout(api)
    # the step starts again: the evaluation's own requests are in the canary's figures so far
    assert (st["phase"], st["step"], st["stepStarted"]) == ("Progressing", 0, format_rfc3339(NOW)), st
    assert [g["gate"] for g in st["gates"] if g.get("passed")] == ["evaluation"]
    body = api.get("InferenceService", "team-a", "resnet")
    assert body is not None
    body["status"]["rollout"]["stepStarted"] = format_rfc3339(NOW - 120)  # as if the restarted step had run two minutes
    api.put(body)
    await _pass(api)
    st = _rollout(api)
    assert st["phase"] == "Promoted", st
    assert any(g["gate"] == "evaluation" and g.get("passed") for g in st["gates"]), "the verdict is kept as the evidence"


async def test_a_new_rollout_deletes_the_jobs_of_the_last_one(api: FakeApiServer) -> None:
    *_, body = _setup(api, evaluations=["resnet-eval-olderrev"], canaryRevision="olderrevision")
    uid = body["metadata"]["uid"]
    api.put(
        {"apiVersion": "foresail.dev/v1alpha1", "kind": "EvalJob", "metadata": {"name": "resnet-eval-olderrev", "namespace": "team-a",
         "ownerReferences": [{"apiVersion": "foresail.dev/v1alpha1", "kind": "InferenceService", "name": "resnet", "uid": uid, "controller": True}]},
         "spec": {"target": {"inferenceService": "resnet"}, "dataset": {"configMap": {"name": "golden"}}}}
    )  # fmt: skip
    await _pass(api)
    assert api.get("EvalJob", "team-a", "resnet-eval-olderrev") is None
