"""Rendering of an InferenceService's children: named cases on small builders."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.api.inferenceservice import QueuePolicy
from foresail.api.objects import LABEL_ISVC, WARM_GATE
from foresail.render.triton import (
    QUEUE_POLICY_ANNOTATION,
    render_children,
    render_deployment,
    render_pdb,
    render_service,
    with_queue_policy,
)
from tests.builders import IsvcBuilder


def _container(dep: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = dep["spec"]["template"]["spec"]["containers"][0]
    return c


def test_deployment_never_sets_replicas() -> None:
    dep = render_deployment(IsvcBuilder().set("spec.scaling", {"minReplicas": 3, "maxReplicas": 9}).build())
    assert "replicas" not in dep["spec"]


def test_deployment_shape() -> None:
    isvc = IsvcBuilder().set("spec.priority", "critical").set("spec.triton.gpusPerReplica", 2).build()
    dep = render_deployment(isvc)
    pod = dep["spec"]["template"]["spec"]
    c = _container(dep)
    assert dep["metadata"]["ownerReferences"][0]["uid"] == isvc.metadata["uid"]
    assert dep["spec"]["selector"]["matchLabels"] == {LABEL_ISVC: "resnet"}
    assert dep["spec"]["template"]["metadata"]["labels"][LABEL_ISVC] == "resnet"
    assert [p["containerPort"] for p in c["ports"]] == [8000, 8001, 8002]
    assert "--metrics-config=summary_latencies=true" in c["args"]
    assert "--load-model=resnet50" in c["args"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    # a deleted replica serves on while the endpoints forget it, then Triton drains within the grace period
    assert 0 < c["lifecycle"]["preStop"]["sleep"]["seconds"] < pod["terminationGracePeriodSeconds"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["readinessGates"] == [{"conditionType": WARM_GATE}]
    assert pod["priorityClassName"] == "foresail-critical"
    assert (
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"]
        == "kubernetes.io/hostname"
    )


@pytest.mark.parametrize(
    ("name", "repository", "volume"),
    [
        (
            "pvc",
            {"pvc": {"claimName": "models", "subPath": "triton"}},
            {"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}},
        ),
        (
            "configMap with items",
            {"configMap": {"name": "m", "items": [{"key": "a", "path": "x/a"}]}},
            {"name": "models", "configMap": {"name": "m", "items": [{"key": "a", "path": "x/a"}]}},
        ),
    ],
)
def test_repository_volumes(name: str, repository: dict[str, Any], volume: dict[str, Any]) -> None:
    dep = render_deployment(IsvcBuilder().set("spec.model.repository", repository).build())
    assert dep["spec"]["template"]["spec"]["volumes"][0] == volume, name


def test_warmup_disabled_drops_the_gate_and_cpu_only_drops_gpus() -> None:
    dep = render_deployment(IsvcBuilder().set("spec.warmup", {"enabled": False}).set("spec.triton.gpusPerReplica", 0).build())
    assert "readinessGates" not in dep["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in str(_container(dep)["resources"])


def test_service_and_pdb_select_the_replicas() -> None:
    isvc = IsvcBuilder().build()
    assert render_service(isvc)["spec"]["selector"] == {LABEL_ISVC: "resnet"}
    assert render_pdb(isvc)["spec"]["selector"]["matchLabels"] == {LABEL_ISVC: "resnet"}
    assert [c["kind"] for c in render_children(isvc)] == ["Deployment", "Service", "PodDisruptionBudget"]


def test_rendering_is_deterministic() -> None:
    assert render_children(IsvcBuilder().build()) == render_children(IsvcBuilder().build())


def test_the_queue_policy_travels_on_the_pod_template() -> None:
    plain = render_deployment(IsvcBuilder().build())["spec"]["template"]["metadata"]["annotations"]
    assert QUEUE_POLICY_ANNOTATION not in plain
    isvc = IsvcBuilder().set("spec.triton.queuePolicy", {"timeoutMs": 250}).build()
    ann = render_deployment(isvc)["spec"]["template"]["metadata"]["annotations"]
    assert ann[QUEUE_POLICY_ANNOTATION] == '{"timeoutMs":250}', "a change rolls the replicas; each applies its own"


@pytest.mark.parametrize(
    ("name", "policy", "want"),
    [
        ("time-out only", QueuePolicy.model_validate({"timeoutMs": 250}), {"timeout_action": "REJECT", "default_timeout_microseconds": 250_000, "allow_timeout_override": False}),
        ("and a size", QueuePolicy.model_validate({"timeoutMs": 1, "maxQueueSize": 8}), {"timeout_action": "REJECT", "default_timeout_microseconds": 1000, "allow_timeout_override": False, "max_queue_size": 8}),
    ],
)  # fmt: skip
def test_with_queue_policy(name: str, policy: QueuePolicy, want: dict[str, Any]) -> None:
    config: dict[str, Any] = {"name": "m", "max_batch_size": 8, "dynamic_batching": {"max_queue_delay_microseconds": 100}}
    out = with_queue_policy(config, policy)
    assert out["dynamic_batching"] == {"max_queue_delay_microseconds": 100, "default_queue_policy": want}, name
    assert "default_queue_policy" not in config["dynamic_batching"], "the model's own config is not changed"
    with pytest.raises(ValueError, match=r"spec\.triton\.queuePolicy: model 'm' has no dynamic_batching"):
        with_queue_policy({"name": "m", "sequence_batching": {}}, policy)
