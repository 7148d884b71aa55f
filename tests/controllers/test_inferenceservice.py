"""The InferenceService reconciler against a fake apiserver: children, replicas, status, problems."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from foresail.api.inferenceservice import InferenceService
from foresail.controllers.inferenceservice import FetchWatch, bounded_replicas, reconcile
from foresail.render.triton import REVISION_ANNOTATION, revision
from tests.controllers.objects import isvc
from tests.fakes.apiserver import FakeApiServer

NOW = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "models", "namespace": "team-a"}, "data": {}}


def ready(api: FakeApiServer) -> tuple[str, str, str]:
    obj = api.get("InferenceService", "team-a", "resnet")
    assert obj is not None
    c = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    return c["status"], c["reason"], c["message"]


def test_renders_the_children_by_server_side_apply_and_starts_at_min_replicas(api: FakeApiServer) -> None:
    api.put(isvc(scaling__minReplicas=2), CONFIGMAP)
    body = api.get("InferenceService", "team-a", "resnet")
    assert body is not None
    reconcile(api.kube(), body, NOW)
    applied = [(r.body["kind"], r.query.get("fieldManager")) for r in api.writes() if r.content_type == "application/apply-patch+yaml" and r.sub == ""]
    assert applied == [("Deployment", "foresail"), ("Service", "foresail"), ("PodDisruptionBudget", "foresail")]
    (scale,) = api.writes("Deployment", sub="scale")
    assert (scale.body["spec"]["replicas"], scale.query["fieldManager"]) == (2, "foresail-autoscaler")
    assert sorted(e["reason"] for e in api.events()) == ["Created", "Created", "Created", "Scaled"]  # from the default 1
    assert ready(api)[:2] == ("False", "NoReadyReplicas")
    st = api.get("InferenceService", "team-a", "resnet")["status"]  # type: ignore[index]
    assert st["selector"] == "foresail.dev/inferenceservice=resnet"

    n = len(api.writes())
    reconcile(api.kube(), body, NOW)  # level-triggered: the same state again writes no event, no scale, no status
    again = api.writes()[n:]
    assert [r for r in again if r.content_type != "application/apply-patch+yaml"] == []


def test_a_missing_repository_is_a_condition_and_one_event_not_a_crash(api: FakeApiServer) -> None:
    api.put(isvc())
    body = api.get("InferenceService", "team-a", "resnet")
    assert body is not None
    reconcile(api.kube(), body, NOW)
    reconcile(api.kube(), body, NOW)
    assert ready(api) == ("False", "RepositoryNotFound", "ConfigMap team-a/models (spec.model.repository.configMap) not found")
    assert [e["reason"] for e in api.events()] == ["RepositoryNotFound"]
    assert api.get("Deployment", "team-a", "resnet") is None


def test_a_spec_admission_would_refuse_is_reported_with_the_field(api: FakeApiServer) -> None:
    api.put(isvc(model__repository={"storageUri": "s3://b/models"}))  # e.g. stored before the CRD refused it
    body = api.get("InferenceService", "team-a", "resnet")
    assert body is not None
    reconcile(api.kube(), body, NOW)
    status, reason, message = ready(api)
    assert (status, reason) == ("False", "InvalidSpec")
    assert "spec.model.repository: Value error, storageUri must be s3://bucket[/prefix]" in message
    assert [e["reason"] for e in api.events()] == ["InvalidSpec"]


def test_a_name_stored_before_the_rule_is_reported_not_retried(api: FakeApiServer) -> None:
    api.put(isvc(), CONFIGMAP)
    obj = api.get("InferenceService", "team-a", "resnet")
    assert obj is not None
    obj["metadata"]["name"] = "v1.2"  # admitted before the CRD refused dots: its Service can never exist
    api.put(obj)
    reconcile(api.kube(), obj, NOW)
    stored = api.get("InferenceService", "team-a", "v1.2")
    assert stored is not None
    ready = next(c for c in stored["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "DNS-1035 label" in ready["message"]
    assert api.get("Service", "team-a", "v1.2") is None


REFUSED = [
    (
        "a Deployment (its pod template overlay)",
        "deployments",
        'Deployment.apps "resnet" is invalid: spec.template.spec.tolerations[1].operator: Unsupported value: "Maybe"',
        "InvalidPodTemplate",
        "Deployment team-a/resnet refused: ",
    ),
    (
        "a Service",
        "services",
        'Service "resnet" is invalid: metadata.name: Invalid value: "resnet": a DNS-1035 label must ...',
        "ChildRefused",
        "Service team-a/resnet refused: ",
    ),
]


@pytest.mark.parametrize(("name", "plural", "refusal", "reason", "prefix"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_child_the_apiserver_refuses_is_ready_false_with_its_message(
    api: FakeApiServer, name: str, plural: str, refusal: str, reason: str, prefix: str
) -> None:
    api.put(isvc(), CONFIGMAP)
    api.invalid[plural] = refusal
    body = api.get("InferenceService", "team-a", "resnet")
    assert body is not None
    reconcile(api.kube(), body, NOW)
    reconcile(api.kube(), body, NOW)
    status, got, message = ready(api)
    assert (status, got) == ("False", reason), name
    assert message == prefix + refusal, name
    assert [e["reason"] for e in api.events() if e["type"] == "Warning"] == [reason], "reported once, not a retry loop"


def _owned_by(uid: str | None, kind: str = "InferenceService", name: str = "resnet") -> dict[str, object]:
    if uid is None:
        return {}
    return {"ownerReferences": [{"apiVersion": "foresail.dev/v1alpha1", "kind": kind, "name": name, "uid": uid, "controller": True}]}


TAKEN = [
    pytest.param(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "resnet", "namespace": "team-a", "labels": {"app": "mine"}},
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "mine"}}}},
        "Deployment team-a/resnet",
        id="a user's Deployment named like the service",
    ),
    pytest.param(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "resnet", "namespace": "team-a", **_owned_by("uid-of-another", "Gateway", "edge")},
         "spec": {"ports": [{"port": 80}]}},
        "Service team-a/resnet",
        id="a Service another controller owns",
    ),
    pytest.param(
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "resnet", "namespace": "team-a", **_owned_by("uid-of-a-deleted-resnet")},
         "spec": {"maxUnavailable": 5}},
        "PodDisruptionBudget team-a/resnet",
        id="a PDB of an earlier service of the same name (another UID)",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("taken", "named"), TAKEN)
def test_a_name_taken_by_an_object_not_owned_by_the_service_is_left_alone_and_reported(
    api: FakeApiServer, taken: dict[str, object], named: str
) -> None:
    api.put(isvc(), CONFIGMAP, taken)
    md = taken["metadata"]
    assert isinstance(md, dict)
    before = api.get(str(taken["kind"]), "team-a", "resnet")
    body = api.get("InferenceService", "team-a", "resnet")
    assert body is not None
    reconcile(api.kube(), body, NOW)
    reconcile(api.kube(), body, NOW)
    assert api.get(str(taken["kind"]), "team-a", "resnet") == before, "the other object is not touched"
    applied = [r for r in api.writes() if r.content_type == "application/apply-patch+yaml" or r.sub == "scale"]
    assert applied == [], "no child is applied while one name is taken (never half a service)"
    status, reason, message = ready(api)
    assert (status, reason) == ("False", "NameTaken")
    assert message.startswith(named + " exists and is not controlled by this InferenceService"), message
    assert [e["reason"] for e in api.events() if e["type"] == "Warning"] == ["NameTaken"], "one Warning, not a retry loop"


def test_children_it_controls_are_applied_again(api: FakeApiServer) -> None:
    api.put(isvc(), CONFIGMAP)
    body = api.get("InferenceService", "team-a", "resnet")
    assert body is not None
    reconcile(api.kube(), body, NOW)
    dep = api.get("Deployment", "team-a", "resnet")
    assert dep is not None
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "drifted"
    api.put(dep)
    reconcile(api.kube(), body, NOW)
    assert api.get("Deployment", "team-a", "resnet")["spec"]["template"]["spec"]["containers"][0]["image"] != "drifted"  # type: ignore[index]
    assert ready(api)[1] != "NameTaken"


def _storage_pod(init_status: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "resnet-abc", "namespace": "team-a", "labels": {"foresail.dev/inferenceservice": "resnet"},
                     "creationTimestamp": "2027-01-15T07:59:00Z"},
        "spec": {"containers": [{"name": "triton", "image": "t"}]},
        "status": {"phase": "Pending", "initContainerStatuses": [{"name": "storage-init", **init_status}]},
    }  # fmt: skip


def test_a_failed_fetch_is_model_fetch_failed_and_a_digest_is_recorded(api: FakeApiServer) -> None:
    repo = {"storageUri": "s3://models/resnet", "s3": {"endpoint": "http://10.0.0.2:8333", "secretName": "s3"}}
    failing = {
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "message": "Forbidden: listing s3://models/resnet: 403 AccessDenied\n"}},
    }
    api.put(isvc(model__repository=repo), _storage_pod(failing))
    body = api.get("InferenceService", "team-a", "resnet")
    assert body is not None
    reconcile(api.kube(), body, NOW)
    dep = api.get("Deployment", "team-a", "resnet")
    assert dep is not None
    (init,) = dep["spec"]["template"]["spec"]["initContainers"]
    assert init["image"] == "ghcr.io/foresail/foresail:0.1.0"  # FORESAIL_IMAGE's default: the operator's image
    status, reason, message = ready(api)
    assert (status, reason) == ("False", "ModelFetchFailed")
    assert message == "spec.model.repository.storageUri: Forbidden: listing s3://models/resnet: 403 AccessDenied (pod resnet-abc)"

    digest = "sha256:" + "0f" * 32
    api.put(_storage_pod({"state": {"terminated": {"exitCode": 0, "message": f"digest={digest} files=3 bytes=99"}}}))
    reconcile(api.kube(), body, NOW)
    st = api.get("InferenceService", "team-a", "resnet")["status"]  # type: ignore[index]
    assert st["model"] == {"storageUri": "s3://models/resnet", "digest": digest, "files": 3, "bytes": 99}
    assert ready(api)[1] == "NoReadyReplicas"


def test_with_a_rollout_a_new_revision_goes_to_slot_b_at_zero_and_slot_a_keeps_its_revision(api: FakeApiServer) -> None:
    rollout = {"steps": [{"percent": 10}]}
    api.put(isvc(rollout=rollout), CONFIGMAP)
    body = api.get("InferenceService", "team-a", "resnet")
    assert body is not None
    reconcile(api.kube(), body, NOW)
    old_rev = revision(InferenceService.model_validate(body))
    body["spec"]["triton"] = {"env": [{"name": "X", "value": "1"}]}
    api.put(body)
    reconcile(api.kube(), body, NOW)
    a, b = api.get("Deployment", "team-a", "resnet"), api.get("Deployment", "team-a", "resnet-b")
    assert a is not None and b is not None
    assert a["metadata"]["annotations"][REVISION_ANNOTATION] == old_rev
    assert a["spec"]["template"]["spec"]["containers"][0]["env"] == []
    assert b["metadata"]["annotations"][REVISION_ANNOTATION] == revision(InferenceService.model_validate(body)) != old_rev
    assert b["spec"]["replicas"] == 0, "a new canary slot waits for the autoscaler's split"
    assert a["spec"]["replicas"] == 1


def test_without_a_rollout_a_new_revision_updates_slot_a_in_place(api: FakeApiServer) -> None:
    api.put(isvc(), CONFIGMAP)
    body = api.get("InferenceService", "team-a", "resnet")
    assert body is not None
    reconcile(api.kube(), body, NOW)
    body["spec"]["triton"] = {"env": [{"name": "X", "value": "1"}]}
    api.put(body)
    reconcile(api.kube(), body, NOW)
    a = api.get("Deployment", "team-a", "resnet")
    assert a is not None and a["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "X", "value": "1"}]
    assert api.get("Deployment", "team-a", "resnet-b") is None


def _fetch_pod(uid: str, state: dict[str, Any], restarts: int = 0, owner: str = "resnet") -> dict[str, Any]:
    st = {"name": "storage-init", "state": state, "restartCount": restarts}
    return {
        "metadata": {"name": f"p-{uid}", "uid": uid, "namespace": "team-a", "labels": {"foresail.dev/inferenceservice": owner}},
        "status": {"initContainerStatuses": [st], "conditions": []},
    }


def test_a_replicas_fetch_ending_or_failing_marks_its_owner_once() -> None:
    """Was: a storage-init failure reached the status at the 30 s resync (no Deployment event follows it)."""
    marked: list[tuple[str, str]] = []
    watch = FetchWatch(marked.append)
    running: dict[str, Any] = {"running": {}}
    failed = {"terminated": {"exitCode": 1, "message": "403 AccessDenied"}}
    events = [
        ("ADDED", _fetch_pod("1", running)),  # fetching: nothing to say
        ("MODIFIED", _fetch_pod("1", failed)),  # failed: mark
        ("MODIFIED", _fetch_pod("1", failed)),  # the same pod moving otherwise: nothing
        ("MODIFIED", _fetch_pod("1", failed, restarts=1)),  # failed again: mark
        ("MODIFIED", _fetch_pod("2", {"terminated": {"exitCode": 0}})),  # another replica fetched: mark
        ("MODIFIED", {"metadata": {"name": "x", "uid": "9", "namespace": "team-a"}, "status": {}}),  # not a replica
        ("DELETED", _fetch_pod("1", failed, restarts=1)),
        ("ADDED", _fetch_pod("1", failed, restarts=1)),  # a pod of the uid seen again after its delete: mark
    ]
    for kind, pod in events:
        watch(kind, pod)
    assert marked == [("team-a", "resnet")] * 4


@pytest.mark.parametrize(
    ("name", "current", "new", "lo", "hi", "granted", "want"),
    [
        ("a new Deployment starts at minReplicas", 1, True, 2, 8, None, 2),
        ("a new Deployment starts at the grant when it is below minReplicas", 1, True, 3, 8, 2, 2),
        ("raised to a raised minReplicas", 2, False, 3, 8, None, 3),
        ("raised only as far as the grant", 2, False, 4, 8, 3, 3),
        ("lowered to a lowered maxReplicas", 6, False, 1, 4, None, 4),
        ("inside the bounds: left as the autoscaler wrote it", 5, False, 1, 8, 8, 5),
        # the leader-kill e2e saw 2 -> 3 -> 2 -> 3: the autoscaler wrote 3 on this pass's grant, the
        # reconciler then read the grant of 2 the status still carried and lowered the replicas to it
        ("a grant older than the autoscaler's write never lowers", 3, False, 3, 8, 2, 3),
        ("a shrunk grant is the autoscaler's to apply, not the reconciler's", 5, False, 1, 8, 2, 5),
    ],
)
def test_the_replicas_a_spec_change_brings_inside_the_bounds(
    name: str, current: int, new: bool, lo: int, hi: int, granted: int | None, want: int
) -> None:
    assert bounded_replicas(current, new, lo, hi, granted) == want, name
