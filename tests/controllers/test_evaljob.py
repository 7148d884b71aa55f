"""The EvalJob reconciler against a fake apiserver: admission problems, children, the Job, provenance."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from foresail.controllers.evaljob import reconcile_evaljob
from tests.controllers.objects import isvc
from tests.fakes.apiserver import FakeApiServer

NOW = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
DATASET = '{"id": "a", "inputs": {"x": [1]}, "label": 0}\n{"id": "b", "inputs": {"x": [2]}, "label": 1}\n'
SHA = hashlib.sha256(DATASET.encode()).hexdigest()


def evaljob(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"target": {"inferenceService": "resnet"}, "dataset": {"configMap": {"name": "iris"}}, "shards": 2}
    return {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "EvalJob",
        "metadata": {"name": "iris-eval", "namespace": "team-a"},
        "spec": {**base, **spec},
    }


def dataset() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "iris", "namespace": "team-a"}, "data": {"dataset.jsonl": DATASET}}


def reconcile(api: FakeApiServer) -> dict[str, Any]:
    body = api.get("EvalJob", "team-a", "iris-eval")
    assert body is not None
    reconcile_evaljob(api.kube(), body, NOW)
    after = api.get("EvalJob", "team-a", "iris-eval")
    assert after is not None
    return after


def conds(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: f"{c['status']}/{c['reason']}" for c in obj["status"]["conditions"]}


@pytest.mark.parametrize(
    ("name", "objects", "spec", "phase", "want", "events"),
    [
        ("target missing: waits", [dataset()], {}, "Pending", {"Admitted": "False/TargetNotFound"}, ["TargetNotFound"]),
        ("dataset missing: waits", [isvc()], {}, "Pending", {"Admitted": "False/DatasetNotFound"}, ["DatasetNotFound"]),
        ("outputs missing: waits", [isvc(), dataset()], {"outputs": {"pvc": {"claimName": "out", "path": "e"}}}, "Pending", {"Admitted": "False/OutputsNotFound"}, ["OutputsNotFound"]),
        ("dataset differs from its hash: fails", [isvc(), dataset()], {"dataset": {"configMap": {"name": "iris"}, "sha256": "0" * 64}}, "Failed", {"Failed": "True/DatasetHashMismatch"}, ["DatasetHashMismatch", "Failed"]),
    ],
)
def test_problems_are_conditions_with_one_event(
    api: FakeApiServer, name: str, objects: list[dict[str, Any]], spec: dict[str, Any], phase: str, want: dict[str, str], events: list[str]
) -> None:
    api.put(evaljob(**spec), *objects)
    reconcile(api)
    after = reconcile(api)
    assert after["status"]["phase"] == phase, name
    for k, v in want.items():
        assert conds(after)[k] == v, (name, conds(after))
    assert [e["reason"] for e in api.events()] == events, "once per new problem (and once when the job fails)"
    assert api.get("Job", "team-a", "iris-eval") is None


def test_an_admitted_job_gets_its_children_its_job_and_provenance(api: FakeApiServer) -> None:
    api.put(evaljob(), isvc(), dataset())
    after = reconcile(api)
    applied = [r.body["kind"] for r in api.writes() if r.content_type == "application/apply-patch+yaml"]
    assert applied == ["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "PersistentVolumeClaim", "Job"]
    job = api.get("Job", "team-a", "iris-eval")
    assert job is not None and not job["spec"].get("suspend")
    assert after["status"]["phase"] == "Running"
    assert conds(after)["Admitted"] == "True/Admitted"
    prov = after["status"]["provenance"]
    assert (prov["datasetSha256"], prov["model"], prov["workerImage"]) == (SHA, "resnet50", "ghcr.io/foresail/foresail:0.1.0")
    assert after["status"]["progress"]["total"] == 2
    assert [e["reason"] for e in api.events()] == ["Created"]

    n = len(api.writes())
    reconcile(api)
    assert [r for r in api.writes()[n:] if r.content_type == "application/apply-patch+yaml"] == [], "children applied once"


def test_suspend_stops_the_workers_and_keeps_the_job(api: FakeApiServer) -> None:
    api.put(evaljob(), isvc(), dataset())
    reconcile(api)
    body = api.get("EvalJob", "team-a", "iris-eval")
    assert body is not None
    body["spec"]["suspend"] = True
    api.put(body)
    after = reconcile(api)
    assert api.get("Job", "team-a", "iris-eval")["spec"]["suspend"] is True  # type: ignore[index]
    assert (after["status"]["phase"], conds(after)["Suspended"]) == ("Suspended", "True/UserSuspended")
    assert [e["reason"] for e in api.events()] == ["Created", "Suspended"]
