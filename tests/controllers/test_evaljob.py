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


EJ_UID = "uid-evaljobs-team-a-iris-eval"  # the fake apiserver's UID of the EvalJob


def _foreign(kind: str, name: str, owner_uid: str | None = None, **rest: Any) -> dict[str, Any]:
    api_version = {"Job": "batch/v1", "RoleBinding": "rbac.authorization.k8s.io/v1", "InferenceService": "foresail.dev/v1alpha1"}[kind]
    md: dict[str, Any] = {"name": name, "namespace": "team-a", "labels": {"owner": "someone-else"}}
    if owner_uid is not None:
        md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Thing", "name": "other", "uid": owner_uid, "controller": True}]
    return {"apiVersion": api_version, "kind": kind, "metadata": md, **rest}


@pytest.mark.parametrize(
    ("mode", "taken", "named"),
    [
        pytest.param("dedicated", lambda: {**isvc("iris-eval-eval"), "metadata": {**isvc("iris-eval-eval")["metadata"], "uid": "prod-uid"}},
                     "InferenceService team-a/iris-eval-eval", id="a production InferenceService named like the eval replicas"),
        pytest.param("shared", lambda: _foreign("RoleBinding", "iris-eval-worker", roleRef={"kind": "ClusterRole", "name": "admin"}),
                     "RoleBinding team-a/iris-eval-worker", id="a user's RoleBinding named like the workers'"),
        pytest.param("shared", lambda: _foreign("Job", "iris-eval", "uid-of-a-cronjob", spec={"parallelism": 1}),
                     "Job team-a/iris-eval", id="a Job another controller owns named like the job"),
    ],
)  # fmt: skip
def test_a_name_taken_by_an_object_the_job_does_not_control_is_left_alone(
    api: FakeApiServer, mode: str, taken: Any, named: str
) -> None:
    obj = taken()
    spec: dict[str, Any] = {"mode": mode, "dedicated": {"replicas": 1}} if mode == "dedicated" else {}
    api.put(evaljob(**spec), isvc(), dataset(), obj)
    before = api.get(obj["kind"], "team-a", obj["metadata"]["name"])
    reconcile(api)
    after = reconcile(api)
    assert api.get(obj["kind"], "team-a", obj["metadata"]["name"]) == before, "neither changed nor deleted"
    assert [r for r in api.writes() if r.method == "DELETE"] == []
    assert conds(after)["Admitted"] == "False/NameTaken"
    admitted = next(c for c in after["status"]["conditions"] if c["type"] == "Admitted")
    assert admitted["message"].startswith(named + " exists and is not controlled by this EvalJob"), admitted["message"]
    assert [e["reason"] for e in api.events() if e["type"] == "Warning"] == ["NameTaken"]


@pytest.mark.parametrize(
    ("owner_uid", "survives"),
    [
        pytest.param(None, True, id="a production service named like the eval replicas survives the job's end"),
        pytest.param("uid-of-another-evaljob", True, id="eval replicas of another (earlier) job of that name survive"),
        pytest.param(EJ_UID, False, id="the job's own eval replicas go, with a UID precondition"),
    ],
)
def test_a_finished_dedicated_job_deletes_only_its_own_eval_replicas(api: FakeApiServer, owner_uid: str | None, survives: bool) -> None:
    replicas = isvc("iris-eval-eval")
    replicas["metadata"]["uid"] = "replicas-uid"
    if owner_uid is not None:
        replicas["metadata"]["ownerReferences"] = [
            {"apiVersion": "foresail.dev/v1alpha1", "kind": "EvalJob", "name": "iris-eval", "uid": owner_uid, "controller": True}
        ]
    bad_hash = {"configMap": {"name": "iris"}, "sha256": "0" * 64}  # the job fails at once: it finishes
    api.put(evaljob(mode="dedicated", dedicated={"replicas": 1}, dataset=bad_hash), isvc(), dataset(), replicas)
    after = reconcile(api)
    assert after["status"]["phase"] == "Failed"
    assert (api.get("InferenceService", "team-a", "iris-eval-eval") is not None) == survives
    deletes = [r for r in api.writes("InferenceService") if r.method == "DELETE"]
    if survives:
        assert deletes == []
    else:
        assert [d.body.get("preconditions") for d in deletes] == [{"uid": "replicas-uid"}]


def _succeeded_dedicated_job() -> dict[str, Any]:
    body = evaljob(mode="dedicated", dedicated={"replicas": 1})
    body["metadata"]["generation"] = 1
    done = {"type": "Succeeded", "status": "True", "reason": "AllShardsCompleted", "message": "", "lastTransitionTime": "2027-01-15T07:00:00Z"}
    body["status"] = {"phase": "Succeeded", "observedGeneration": 1, "conditions": [done]}
    return body


def _own_replicas() -> dict[str, Any]:
    replicas = isvc("iris-eval-eval")
    replicas["metadata"]["uid"] = "replicas-uid"
    replicas["metadata"]["ownerReferences"] = [
        {"apiVersion": "foresail.dev/v1alpha1", "kind": "EvalJob", "name": "iris-eval", "uid": EJ_UID, "controller": True}
    ]
    return replicas


def test_cleanup_is_level_triggered_a_finished_job_whose_eval_replicas_survived_loses_them(api: FakeApiServer) -> None:
    """Killed between the status write and the delete: the next reconcile (resume, resync) still deletes them."""
    api.put(_succeeded_dedicated_job(), isvc(), dataset(), _own_replicas())
    after = reconcile(api)
    assert api.get("InferenceService", "team-a", "iris-eval-eval") is None
    deletes = [r for r in api.writes("InferenceService") if r.method == "DELETE"]
    assert [d.body.get("preconditions") for d in deletes] == [{"uid": "replicas-uid"}]
    assert after["status"]["phase"] == "Succeeded" and api.events() == [], "no second Succeeded Event"
    reconcile(api)
    assert len([r for r in api.writes("InferenceService") if r.method == "DELETE"]) == 1, "nothing left to delete: no request"


def test_a_failed_job_stops_a_job_still_running(api: FakeApiServer) -> None:
    """A job failed by the operator (not by its Job) whose Job survived a restart: the workers are stopped."""
    body = _succeeded_dedicated_job()
    body["status"]["conditions"][0] |= {"type": "Failed", "reason": "DatasetHashMismatch"}
    body["status"]["phase"] = "Failed"
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "iris-eval", "namespace": "team-a", "uid": "job-uid",
           "ownerReferences": [{"apiVersion": "foresail.dev/v1alpha1", "kind": "EvalJob", "name": "iris-eval", "uid": EJ_UID, "controller": True}]},
           "spec": {"parallelism": 2}, "status": {"active": 2}}  # fmt: skip
    api.put(body, isvc(), dataset(), job)
    reconcile(api)
    assert api.get("Job", "team-a", "iris-eval") is None


@pytest.mark.parametrize(
    ("repository", "pending", "reported"),
    [
        ({"storageUri": "s3://models/resnet"}, "pending:s3://models/resnet", {"storageUri": "s3://models/resnet"}),
        ({"pvc": {"claimName": "models"}}, "pending:pvc:models", {"pvc": "models"}),
        ({"pvc": {"claimName": "models", "subPath": "r/1"}}, "pending:pvc:models/r/1", {"pvc": "models/r/1"}),
    ],
    ids=["storageUri", "pvc", "pvc subPath"],
)
def test_provenance_of_a_fetched_or_pvc_repository_is_its_content_digest(
    api: FakeApiServer, repository: dict[str, Any], pending: str, reported: dict[str, str]
) -> None:
    """Pending until a replica's storage-init reported the digest (status.model), then that digest; a digest
    reported for another source (the spec moved on) is not it."""
    target = isvc(model__repository=repository)
    api.put(evaljob(), target, dataset())
    assert reconcile(api)["status"]["provenance"]["repositoryDigest"] == pending
    digest = "sha256:" + "1e" * 32
    got = api.get("InferenceService", "team-a", "resnet")
    assert got is not None
    got["status"] = {"model": {"storageUri": "s3://models/other", "digest": digest, "files": 2, "bytes": 9}}
    api.put(got)
    assert reconcile(api)["status"]["provenance"]["repositoryDigest"] == pending
    got["status"] = {"model": {**reported, "digest": digest, "files": 2, "bytes": 9}}
    api.put(got)
    assert reconcile(api)["status"]["provenance"]["repositoryDigest"] == digest


def test_a_dedicated_jobs_provenance_is_the_digest_its_own_replicas_fetched(api: FakeApiServer) -> None:
    """Dedicated replicas fetch the model themselves: the target's reported digest is not theirs (the bucket may
    have changed since); pending until the job's own InferenceService reports one."""
    uri = "s3://models/resnet"
    target = isvc(model__repository={"storageUri": uri})
    target["status"] = {"model": {"storageUri": uri, "digest": "sha256:" + "aa" * 32, "files": 2, "bytes": 9}}
    api.put(evaljob(mode="dedicated", dedicated={"replicas": 1}), target, dataset())
    assert reconcile(api)["status"]["provenance"]["repositoryDigest"] == "pending:" + uri
    own = api.get("InferenceService", "team-a", "iris-eval-eval")
    assert own is not None, "the job's dedicated replicas"
    own["status"] = {"model": {"storageUri": uri, "digest": "sha256:" + "bb" * 32, "files": 2, "bytes": 9}}
    api.put(own)
    assert reconcile(api)["status"]["provenance"]["repositoryDigest"] == "sha256:" + "bb" * 32
