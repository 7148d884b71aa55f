"""Desired children of an InferenceService: Deployment, Service and PodDisruptionBudget (pure dicts).

The Deployment never carries ``spec.replicas``: replicas belong to the autoscaler (field manager
``foresail-autoscaler``, through the scale subresource), so neither this reconciler nor Git ever
fights over them.
"""

from __future__ import annotations

from typing import Any

from foresail.api.inferenceservice import InferenceService, RepositorySource
from foresail.api.objects import GPU_PRODUCT_LABEL, LABEL_ISVC, WARM_GATE
from foresail.render.meta import child_meta, standard_labels
from foresail.render.podtemplate import apply_overlay, harden

__all__ = [
    "MODEL_MOUNT",
    "child_labels",
    "render_children",
    "render_deployment",
    "render_pdb",
    "render_service",
]

MODEL_MOUNT = "/models"
HTTP, GRPC, METRICS = 8000, 8001, 8002


def child_labels(isvc: InferenceService) -> dict[str, str]:
    return standard_labels("triton", isvc.name, "inference", LABEL_ISVC)


def _meta(isvc: InferenceService, name: str) -> dict[str, Any]:
    return child_meta(isvc, name, child_labels(isvc))


def _volume(source: RepositorySource) -> dict[str, Any]:
    if source.pvc is not None:
        return {"name": "models", "persistentVolumeClaim": {"claimName": source.pvc.claim_name, "readOnly": True}}
    assert source.config_map is not None  # the API admits exactly one of pvc and configMap
    cm: dict[str, Any] = {"name": source.config_map.name}
    if source.config_map.items:
        cm["items"] = [dict(i) for i in source.config_map.items]
    return {"name": "models", "configMap": cm}


def triton_args(isvc: InferenceService) -> list[str]:
    return [
        "tritonserver",
        f"--model-repository={MODEL_MOUNT}",
        "--model-control-mode=explicit",
        f"--load-model={isvc.spec.model.name}",
        f"--http-port={HTTP}",
        f"--grpc-port={GRPC}",
        f"--metrics-port={METRICS}",
        "--metrics-config=summary_latencies=true",
        "--exit-timeout-secs=30",
        *isvc.spec.triton.args,
    ]


def render_deployment(isvc: InferenceService) -> dict[str, Any]:
    spec = isvc.spec
    labels = child_labels(isvc)
    resources: dict[str, dict[str, str]] = {"requests": {}, "limits": {}}
    for kind in ("requests", "limits"):
        rl = getattr(spec.triton.resources, kind)
        for res in ("cpu", "memory"):
            if getattr(rl, res):
                resources[kind][res] = getattr(rl, res)
    if spec.triton.gpus_per_replica:
        resources["requests"]["nvidia.com/gpu"] = str(spec.triton.gpus_per_replica)
        resources["limits"]["nvidia.com/gpu"] = str(spec.triton.gpus_per_replica)
    mount: dict[str, Any] = {"name": "models", "mountPath": MODEL_MOUNT, "readOnly": True}
    if spec.model.repository.pvc is not None and spec.model.repository.pvc.sub_path:
        mount["subPath"] = spec.model.repository.pvc.sub_path
    container: dict[str, Any] = {
        "name": "triton",
        "image": spec.triton.image,
        "args": triton_args(isvc),
        "ports": [
            {"name": "http", "containerPort": HTTP, "protocol": "TCP"},
            {"name": "grpc", "containerPort": GRPC, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS, "protocol": "TCP"},
        ],
        "env": [{"name": e.name, "value": e.value} for e in spec.triton.env],
        "resources": {k: v for k, v in resources.items() if v},
        # model loading can take minutes on a GPU: the startup probe covers it, then liveness is strict
        "startupProbe": {"httpGet": {"path": "/v2/health/live", "port": "http"}, "periodSeconds": 2, "failureThreshold": 300},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 2, "failureThreshold": 2},
        "volumeMounts": [mount],
    }
    pod_spec: dict[str, Any] = {
        "priorityClassName": f"foresail-{spec.priority.value}",
        "terminationGracePeriodSeconds": 45,
        "containers": [container],
        "volumes": [_volume(spec.model.repository)],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": {LABEL_ISVC: isvc.name}},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        },
    }
    if spec.warmup.enabled:
        pod_spec["readinessGates"] = [{"conditionType": WARM_GATE}]
    if spec.triton.gpu_product:
        pod_spec["nodeSelector"] = {GPU_PRODUCT_LABEL: spec.triton.gpu_product}
    if spec.triton.gpus_per_replica:
        pod_spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    harden(pod_spec, container, spec.triton.shm_size)
    template = {
        "metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS)}},
        "spec": pod_spec,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(isvc, isvc.name),
        "spec": {
            "selector": {"matchLabels": {LABEL_ISVC: isvc.name}},
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": 900,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": apply_overlay(template, spec.triton.pod_template),
        },
    }


def render_service(isvc: InferenceService) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(isvc, isvc.name),
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_ISVC: isvc.name},
            "ports": [
                {"name": "http", "port": HTTP, "targetPort": "http", "protocol": "TCP"},
                {"name": "grpc", "port": GRPC, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"},
                {"name": "metrics", "port": METRICS, "targetPort": "metrics", "protocol": "TCP"},
            ],
        },
    }


def render_pdb(isvc: InferenceService) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(isvc, isvc.name),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {LABEL_ISVC: isvc.name}},
            # replicas that never warmed serve nothing: let drains evict them
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def render_children(isvc: InferenceService) -> list[dict[str, Any]]:
    return [render_deployment(isvc), render_service(isvc), render_pdb(isvc)]
