"""The comparison's pure parts: locations, which baseline is usable, the compare Job, the outcome of a report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from foresail.api.conditions import ConditionStatus
from foresail.api.evaljob import EvalJob
from foresail.api.reasons import Reason
from foresail.evaluation.compare import compare
from foresail.render.evaljob_baseline import Baseline, compare_id, outcome, parse_location, render_compare_job


def job(name: str = "cand", **spec: Any) -> EvalJob:
    base: dict[str, Any] = {"target": {"inferenceService": "m"}, "dataset": {"configMap": {"name": "d"}}, "baseline": {"evalJob": "nightly"}}
    return EvalJob.model_validate({"metadata": {"name": name, "namespace": "ns", "uid": "u"}, "spec": {**base, **spec}})


@pytest.mark.parametrize(
    ("location", "want"),
    [
        ("pvc:claim/results/x-1", ("claim", "results/x-1")),
        ("pvc:claim", None),
        ("pvc:claim/../etc", None),
        ("s3://bucket/x", None),
        ("", None),
    ],
)
def test_parse_location(location: str, want: tuple[str, str] | None) -> None:
    assert parse_location(location) == want


def test_compare_id_changes_with_the_baseline_its_run_and_alpha() -> None:
    b = Baseline("nightly", "pvc:a/r/x", "h1")
    ids = {
        compare_id(b, "pvc:c/r/y", 0.05),
        compare_id(Baseline("nightly", "pvc:a/r/x", "h2"), "pvc:c/r/y", 0.05),
        compare_id(b, "pvc:c/r/z", 0.05),
        compare_id(b, "pvc:c/r/y", 0.01),
    }
    assert len(ids) == 4 and compare_id(b, "pvc:c/r/y", 0.05) in ids


def test_the_compare_job_runs_as_the_workers_with_the_baseline_read_only() -> None:
    j = render_compare_job(job(), "img:1", "pvc:cand-results/results/cand-1", Baseline("nightly", "pvc:nightly-results/results/n-1"), "cid", 0.05)
    assert j["metadata"]["name"] == "cand-compare" and j["metadata"]["annotations"] == {"foresail.dev/compare-id": "cid"}
    pod = j["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "cand-worker" and pod["securityContext"]["runAsNonRoot"]
    (c,) = pod["containers"]
    assert c["image"] == "img:1" and c["args"] == ["eval-compare"]
    assert {m["mountPath"]: m.get("readOnly", False) for m in c["volumeMounts"]} == {"/results": False, "/baseline": True}
    config = json.loads(c["env"][0]["value"])
    assert (config["candidateDir"], config["baselineDir"], config["key"]) == ("/results/results/cand-1", "/baseline/results/n-1", "compare")


def _report(cid: str, **kw: Any) -> str:
    return json.dumps({"id": cid, **kw})


def test_outcome() -> None:
    b = Baseline("nightly", "pvc:n/r/x", "h")
    loc = "pvc:cand-results/results/cand-1"
    worse = compare([{"id": f"{i}", "correct": True, "value": 1.0} for i in range(30)], [{"id": f"{i}", "correct": i > 9, "value": float(i > 9)} for i in range(30)])
    o = outcome(_report("c1", summary=worse.summary()), "c1", b, loc)
    assert o is not None and (o.status, o.reason) == (ConditionStatus.TRUE, Reason.REGRESSED)
    assert o.baseline is not None and o.baseline.flipped_worse == 10 and o.baseline.flipped_location.endswith("/cand-1/flipped.jsonl")
    assert outcome(_report("old", summary=worse.summary()), "c1", b, loc) is None, "another comparison's report counts for nothing"
    assert outcome(None, "c1", b, loc) is None and outcome("{not json", "c1", b, loc) is None
    missing = outcome(_report("c1", error="no results.jsonl", missing="baseline"), "c1", b, loc)
    assert missing is not None and (missing.status, missing.reason) == (ConditionStatus.UNKNOWN, Reason.BASELINE_INCOMPLETE)
    broken = outcome(_report("c1", error="disk full"), "c1", b, loc)
    assert broken is not None and broken.reason == Reason.COMPARE_FAILED
    few = compare([{"id": "a", "correct": True, "value": 1.0}], [{"id": "a", "correct": False, "value": 0.0}])
    undecided = outcome(_report("c1", summary=few.summary()), "c1", b, loc)
    assert undecided is not None and (undecided.status, undecided.reason) == (ConditionStatus.UNKNOWN, Reason.UNDECIDED)
    assert "too few" in undecided.message
