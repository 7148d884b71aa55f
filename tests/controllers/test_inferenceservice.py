"""The InferenceService reconciler against a fake apiserver: children, replicas, status, problems."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from foresail.controllers.inferenceservice import reconcile
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
    api.put(isvc(model__repository={"storageUri": "s3://bucket/models"}))  # e.g. stored before the CRD refused it
    body = api.get("InferenceService", "team-a", "resnet")
    assert body is not None
    reconcile(api.kube(), body, NOW)
    status, reason, message = ready(api)
    assert (status, reason) == ("False", "InvalidSpec")
    assert "storageUri is not supported yet" in message
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
