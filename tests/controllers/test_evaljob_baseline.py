"""spec.baseline against a fake apiserver: the compare Job once both jobs succeeded, the Regressed condition and
status.baseline from its report (one Event), and bad baselines as conditions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from foresail.api.evaljob import EvalJob, spec_hash
from foresail.controllers.evaljob import in_progress, reconcile_evaljob
from foresail.evaluation.compare import compare
from foresail.render.evaljob_baseline import Baseline, compare_id
from tests.controllers.objects import isvc
from tests.controllers.test_evaljob import SHA, dataset
from tests.fakes.apiserver import FakeApiServer

NOW = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


def evaljob(name: str, phase: str = "Succeeded", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"target": {"inferenceService": "resnet"}, "dataset": {"configMap": {"name": "iris"}}, "shards": 2}
    cond = {"type": phase if phase in ("Succeeded", "Failed") else "Running", "status": "True", "reason": "X", "message": "",
            "lastTransitionTime": "2027-01-15T07:00:00Z"}  # fmt: skip
    status = {
        "phase": phase,
        "observedGeneration": 1,
        "conditions": [cond],
        "provenance": {"datasetSha256": SHA, "specHash": f"{name}-hash"},
        "results": {"location": f"pvc:{name}-results/results/{name}-0123456789ab"},
    }
    return {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "EvalJob",
        "metadata": {"name": name, "namespace": "team-a", "generation": 1},
        "spec": {**base, **spec},
        "status": status,
    }


def candidate(baseline: dict[str, Any] | None = None, phase: str = "Succeeded") -> dict[str, Any]:
    return evaljob("iris-eval", phase, baseline=baseline or {"evalJob": "nightly"})


def reconcile(api: FakeApiServer) -> dict[str, Any]:
    body = api.get("EvalJob", "team-a", "iris-eval")
    assert body is not None
    reconcile_evaljob(api.kube(), body, NOW)
    after = api.get("EvalJob", "team-a", "iris-eval")
    assert after is not None
    return after


def regressed(obj: dict[str, Any]) -> str:
    c = next(c for c in obj["status"]["conditions"] if c["type"] == "Regressed")
    return f"{c['status']}/{c['reason']}"


def _report(api: FakeApiServer, base: list[dict[str, Any]], cand: list[dict[str, Any]]) -> None:
    cj = EvalJob.model_validate(api.get("EvalJob", "team-a", "iris-eval"))
    bj = EvalJob.model_validate(api.get("EvalJob", "team-a", "nightly"))
    b = Baseline("nightly", bj.status.results.location, bj.status.provenance.spec_hash)
    cid = compare_id(b, cj.status.results.location, 0.05)
    report = {"id": cid, "summary": compare(base, cand).summary()}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "iris-eval-progress", "namespace": "team-a"},
          "data": {"compare": json.dumps(report)}}  # fmt: skip
    api.put(cm)


def recs(spec: str) -> list[dict[str, Any]]:
    return [{"id": f"i{k:03d}", "correct": ch == "1", "value": float(ch)} for k, ch in enumerate(spec)]


def test_compares_once_both_succeeded_then_reports_regressed_with_one_event(api: FakeApiServer) -> None:
    api.put(candidate(), evaljob("nightly"), isvc(), dataset())
    after = reconcile(api)
    assert regressed(after) == "Unknown/Comparing"
    job = api.get("Job", "team-a", "iris-eval-compare")
    assert job is not None and job["metadata"]["ownerReferences"][0]["name"] == "iris-eval"
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["eval-compare"] and pod["serviceAccountName"] == "iris-eval-worker"
    claims = [v["persistentVolumeClaim"] for v in pod["volumes"]]
    assert claims == [{"claimName": "iris-eval-results"}, {"claimName": "nightly-results", "readOnly": True}]
    assert in_progress(after), "a finished job waiting for its comparison is resynced every few seconds"

    _report(api, recs("1" * 100), recs("0" * 12 + "1" * 88))
    after = reconcile(api)
    assert regressed(after) == "True/Regressed"
    b = after["status"]["baseline"]
    assert (b["evalJob"], b["paired"], b["flippedWorse"], b["flippedBetter"], b["test"]) == ("nightly", 100, 12, 0, "mcnemar-exact")
    assert b["flippedSample"] == [f"i{k:03d}" for k in range(12)] and b["pValue"] == pytest.approx(2.0**-12)
    assert b["flippedLocation"] == "pvc:iris-eval-results/results/iris-eval-0123456789ab/flipped.jsonl"
    assert [e["reason"] for e in api.events()] == ["Regressed"]
    assert not in_progress(after)
    writes = len(api.writes())
    reconcile(api)
    assert len(api.writes()) == writes, "decided: nothing to write again, no second Event"


def test_no_regression(api: FakeApiServer) -> None:
    api.put(candidate(), evaljob("nightly"), isvc(), dataset())
    reconcile(api)
    _report(api, recs("1" * 90 + "0" * 10), recs("1" * 90 + "0" * 10))
    after = reconcile(api)
    assert regressed(after) == "False/NoRegression"
    assert after["status"]["baseline"]["delta"] == 0.0


@pytest.mark.parametrize(
    ("name", "cand", "others", "want"),
    [
        ("itself", candidate({"evalJob": "iris-eval"}), [], "Unknown/BaselineInvalid"),
        ("missing", candidate(), [], "Unknown/BaselineNotFound"),
        ("baseline still running", candidate(), [evaljob("nightly", "Running")], "Unknown/BaselineIncomplete"),
        ("baseline failed", candidate(), [evaljob("nightly", "Failed")], "Unknown/BaselineIncomplete"),
        ("another scorer", candidate(), [evaljob("nightly", scorer={"kind": "top1"})], "Unknown/BaselineInvalid"),
        ("another dataset", candidate(), [evaljob("nightly", dataset={"configMap": {"name": "other"}})], "Unknown/BaselineInvalid"),
        ("this job still running", candidate(phase="Running"), [evaljob("nightly")], "Unknown/AwaitingResults"),
        ("a results directory whose PVC is missing", candidate({"pvc": {"claimName": "old", "path": "r/x"}}), [], "Unknown/BaselineNotFound"),
    ],
)
def test_bad_or_unready_baselines_are_conditions(
    api: FakeApiServer, name: str, cand: dict[str, Any], others: list[dict[str, Any]], want: str
) -> None:
    if name == "another dataset":
        others[0]["status"]["provenance"]["datasetSha256"] = "b" * 64
    api.put(cand, *others, isvc(), dataset())
    after = reconcile(api)
    assert regressed(after) == want, (name, after["status"]["conditions"])
    assert api.get("Job", "team-a", "iris-eval-compare") is None
    reconcile(api)
    warned = [e["reason"] for e in api.events() if e["reason"].startswith("Baseline")]
    assert len(warned) <= 1, "at most one Event per new problem"


def test_a_results_directory_baseline_mounts_that_claim(api: FakeApiServer) -> None:
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "iris-eval-results", "namespace": "team-a"}}
    api.put(candidate({"pvc": {"claimName": "iris-eval-results", "path": "results/last-week"}, "alpha": 0.01}), pvc, isvc(), dataset())
    after = reconcile(api)
    assert regressed(after) == "Unknown/Comparing"
    job = api.get("Job", "team-a", "iris-eval-compare")
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    assert len(pod["volumes"]) == 1, "the same claim is mounted once"
    config = json.loads(pod["containers"][0]["env"][0]["value"])
    assert (config["baselineDir"], config["alpha"]) == ("/results/results/last-week", 0.01)


def test_a_changed_baseline_replaces_the_compare_job(api: FakeApiServer) -> None:
    api.put(candidate(), evaljob("nightly"), evaljob("weekly"), isvc(), dataset())
    reconcile(api)
    body = api.get("EvalJob", "team-a", "iris-eval")
    assert body is not None
    body["spec"]["baseline"] = {"evalJob": "weekly"}
    body["metadata"]["generation"] = 2
    body["status"]["provenance"]["specHash"] = spec_hash(EvalJob.model_validate(body).spec)  # the run it made
    api.put(body)
    after = reconcile(api)
    assert regressed(after) == "Unknown/Comparing"
    assert after["status"]["observedGeneration"] == 2
    assert "SpecIgnored" not in [c["type"] for c in after["status"]["conditions"]], "the baseline is not the run: nothing ignored"
    assert api.get("Job", "team-a", "iris-eval-compare") is None, "the earlier comparison's Job goes first"
    reconcile(api)
    job = api.get("Job", "team-a", "iris-eval-compare")
    assert job is not None and "weekly-results" in json.dumps(job["spec"])
