"""Manifests of Triton workloads for tests and benchmarks: the test models (``e2e/models``) as ConfigMaps,
Triton Deployments and their Services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hack.base.paths import E2E_MODELS as MODELS

__all__ = ["MODELS", "TRITON_IMAGE", "configmap_items", "model_configmap", "service", "triton_deployment"]

TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.08-py3"


def model_configmap(name: str, models: list[str]) -> dict[str, Any]:
    """A ConfigMap holding model directories; mount it with ``configmap_items`` to get the tree back."""
    data = {}
    for model in models:
        for f in sorted((MODELS / model).rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                data[_key(f.relative_to(MODELS))] = f.read_text()
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def configmap_items(cm: dict[str, Any]) -> list[dict[str, str]]:
    return [{"key": k, "path": k.replace("__", "/")} for k in sorted(cm["data"])]


def _key(rel: Path) -> str:
    return "__".join(rel.parts)


def triton_deployment(
    name: str,
    model: str,
    configmap: dict[str, Any],
    replicas: int = 1,
    gpus: int = 1,
    env: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    readiness_gates: list[str] | None = None,
) -> dict[str, Any]:
    pod_labels = {"app": name, "foresail.dev/inferenceservice": name, **(labels or {})}
    container: dict[str, Any] = {
        "name": "triton",
        "image": TRITON_IMAGE,
        "args": [
            "tritonserver",
            "--model-repository=/models",
            "--model-control-mode=explicit",
            f"--load-model={model}",
            "--metrics-config=summary_latencies=true",
            "--allow-gpu-metrics=false",
            "--exit-timeout-secs=5",
        ],
        "ports": [
            {"name": "http", "containerPort": 8000},
            {"name": "grpc", "containerPort": 8001},
            {"name": "metrics", "containerPort": 8002},
        ],
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 1, "failureThreshold": 2},
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "periodSeconds": 2,
            "failureThreshold": 3,
            "initialDelaySeconds": 30,
        },
        "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
    }
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": 5,
        "volumes": [
            {"name": "models", "configMap": {"name": configmap["metadata"]["name"], "items": configmap_items(configmap)}}
        ],
    }
    if readiness_gates:
        spec["readinessGates"] = [{"conditionType": g} for g in readiness_gates]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": pod_labels}, "spec": spec},
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [
                {"name": "http", "port": 8000, "targetPort": "http"},
                {"name": "grpc", "port": 8001, "targetPort": "grpc"},
                {"name": "metrics", "port": 8002, "targetPort": "metrics"},
            ],
        },
    }
