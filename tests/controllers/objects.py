"""Kubernetes objects as the apiserver returns them, for the controllers' tests."""

from __future__ import annotations

from typing import Any

from tests.builders import IsvcBuilder

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
NOW_RFC = "2027-01-15T08:00:00Z"
ISVC_UID = "00000000-0000-0000-0000-000000000001"  # what IsvcBuilder gives every service


def isvc(name: str = "resnet", ns: str = "team-a", **spec: Any) -> dict[str, Any]:
    b = IsvcBuilder(name, ns)
    for path, value in spec.items():
        b.set("spec." + path.replace("__", "."), value)
    obj = b.dict()
    obj["metadata"]["creationTimestamp"] = "2027-01-01T00:00:00Z"
    return obj


def deployment(name: str = "resnet", ns: str = "team-a", replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {"app.kubernetes.io/managed-by": "foresail", "foresail.dev/inferenceservice": name},
            "ownerReferences": [
                {"apiVersion": "foresail.dev/v1alpha1", "kind": "InferenceService", "name": name, "uid": ISVC_UID, "controller": True}
            ],
        },
        "spec": {"replicas": replicas},
    }


def pod(service: str, ns: str, i: int, warm: bool = True, node: str | None = "n1", started: str = "2027-01-01T00:00:00Z") -> dict[str, Any]:
    conds = [
        {"type": "Ready", "status": str(warm), "lastTransitionTime": started},
        {"type": "foresail.dev/warm", "status": str(warm), "lastTransitionTime": started},
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{service}-{i}", "namespace": ns, "labels": {"foresail.dev/inferenceservice": service}},
        "spec": {"nodeName": node, "containers": [{"name": "triton", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
        "status": {"phase": "Running", "startTime": started, "conditions": conds},
    }


def node(name: str, gpus: int = 8) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.product": "H100"}},
        "spec": {},
        "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def tenant(name: str, namespaces: list[str], limit: int, guaranteed: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"namespaces": namespaces, "gpus": [{"guaranteed": guaranteed, "limit": limit}]},
    }


def policy(name: str, **behavior: Any) -> dict[str, Any]:
    return {"apiVersion": "foresail.dev/v1alpha1", "kind": "ScalingPolicy", "metadata": {"name": name}, "spec": behavior}
