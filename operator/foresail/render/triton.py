"""Desired children of an InferenceService: Deployment, Service and PodDisruptionBudget (pure dicts).

The Deployment never carries ``spec.replicas``: replicas belong to the autoscaler (field manager
``foresail-autoscaler``, through the scale subresource), so neither this reconciler nor Git ever
fights over them.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import zlib
from typing import Any

from foresail.api.inferenceservice import InferenceService, QueuePolicy, RepositorySource
from foresail.api.objects import GPU_PRODUCT_LABEL, LABEL_ISVC, LABEL_REVISION, LABEL_SLOT, WARM_GATE
from foresail.api.rollout import Slot, revision_of, serving_fields
from foresail.render.meta import child_meta, standard_labels
from foresail.render.podtemplate import apply_overlay, harden
from foresail.render.storage import render_storage_init

__all__ = [
    "DEFAULT_OPERATOR_IMAGE",
    "MODEL_MOUNT",
    "QUEUE_POLICY_ANNOTATION",
    "REVISION_ANNOTATION",
    "SERVING_ANNOTATION",
    "SERVING_ANNOTATION_MAX",
    "child_labels",
    "decode_serving",
    "encode_serving",
    "render_children",
    "render_deployment",
    "render_pdb",
    "render_service",
    "revision",
    "serving_dump",
    "slot_name",
    "with_queue_policy",
]

MODEL_MOUNT = "/models"
DEFAULT_OPERATOR_IMAGE = "ghcr.io/foresail/foresail:0.1.0"  # runs storage-init (the chart passes its own: FORESAIL_IMAGE)
HTTP, GRPC, METRICS = 8000, 8001, 8002
# A deleted replica keeps serving this long before Triton gets SIGTERM (which makes it refuse new requests):
# time for the EndpointSlice, kube-proxy and any gateway to stop sending it traffic. Within the grace period.
DRAIN_SECONDS = 5
TERMINATION_GRACE_SECONDS = 45
# spec.triton.queuePolicy on the pod template: a change rolls the replicas, and each replica's warm-up
# applies the policy its own pod carries
QUEUE_POLICY_ANNOTATION = "foresail.dev/queue-policy"
# on each slot Deployment: the revision it runs and the serving fields (spec.model, spec.triton as JSON) it
# was rendered from, so that the stable revision can be rendered again after the spec moved on to a canary
REVISION_ANNOTATION = "foresail.dev/revision"
SERVING_ANNOTATION = "foresail.dev/serving"


# All annotations of an object share 256 KiB; a spec's env and args may approach that on their own
SERVING_ANNOTATION_MAX = 32 * 1024
_COMPRESSED = "zlib:"


def encode_serving(fields: dict[str, Any]) -> str | None:
    """The serving fields as the slot Deployment's annotation: compact JSON, or zlib + base64 behind ``zlib:``
    when that is what fits; None when neither fits in SERVING_ANNOTATION_MAX (the annotation is then left out,
    and during a rollout the stable Deployment is left as it is rather than re-rendered: render.slots)."""
    raw = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    if len(raw) <= SERVING_ANNOTATION_MAX:
        return raw
    packed = _COMPRESSED + base64.b64encode(zlib.compress(raw.encode(), 9)).decode()
    return packed if len(packed) <= SERVING_ANNOTATION_MAX else None


def decode_serving(value: str) -> Any:
    """What ``encode_serving`` wrote, parsed (ValueError when it is not that)."""
    if value.startswith(_COMPRESSED):
        try:
            value = zlib.decompress(base64.b64decode(value[len(_COMPRESSED) :], validate=True)).decode()
        except (zlib.error, binascii.Error, UnicodeDecodeError) as e:
            raise ValueError(f"unreadable {SERVING_ANNOTATION}: {e}") from e
    return json.loads(value)


def serving_dump(isvc: InferenceService) -> dict[str, Any]:
    """The spec as the revision hash reads it: by alias, defaults left out (a field a later version adds with
    a default, or a default written out, makes no new revision)."""
    return dict(isvc.spec.model_dump(by_alias=True, mode="json", exclude_defaults=True))


def revision(isvc: InferenceService) -> str:
    """The revision of what the service's spec serves (``api.rollout.revision_of``)."""
    return revision_of(serving_dump(isvc))


def slot_name(name: str, slot: Slot) -> str:
    """The Deployment of a slot: ``<name>`` (a, the Deployment services had before rollouts) or ``<name>-b``."""
    return name if slot is Slot.A else f"{name}-b"


def child_labels(isvc: InferenceService) -> dict[str, str]:
    return standard_labels("triton", isvc.name, "inference", LABEL_ISVC)


def _meta(isvc: InferenceService, name: str) -> dict[str, Any]:
    return child_meta(isvc, name, child_labels(isvc))


def _volume(source: RepositorySource) -> dict[str, Any]:
    if source.pvc is not None:
        return {"name": "models", "persistentVolumeClaim": {"claimName": source.pvc.claim_name, "readOnly": True}}
    if source.storage_uri is not None:  # filled by the storage-init container (render.storage)
        return {"name": "models", "emptyDir": {}}
    assert source.config_map is not None  # the API admits exactly one of pvc, configMap and storageUri
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


def with_queue_policy(config: dict[str, Any], policy: QueuePolicy) -> dict[str, Any]:
    """The model's configuration (as Triton's config API returns it) with the bounded queue of ``policy``:
    ``dynamic_batching.default_queue_policy`` rejecting what waits longer than the timeout. A ValueError
    names the field when the model does not batch dynamically (the policy lives in its dynamic batcher)."""
    if not isinstance(config.get("dynamic_batching"), dict):
        raise ValueError(
            f"spec.triton.queuePolicy: model {config.get('name', '?')!r} has no dynamic_batching in its config, "
            "and Triton's queue policy belongs to the dynamic batcher"
        )
    out = copy.deepcopy(config)
    qp: dict[str, Any] = {
        "timeout_action": "REJECT",
        "default_timeout_microseconds": policy.timeout_ms * 1000,
        "allow_timeout_override": False,
    }
    if policy.max_queue_size is not None:
        qp["max_queue_size"] = policy.max_queue_size
    out["dynamic_batching"]["default_queue_policy"] = qp
    return out


def render_deployment(isvc: InferenceService, slot: Slot = Slot.A, operator_image: str = DEFAULT_OPERATOR_IMAGE) -> dict[str, Any]:
    """The Deployment of ``slot`` serving what ``isvc.spec`` says (the caller passes the stable revision's
    spec when the current one is a canary); ``operator_image`` runs a storageUri's init container. Slot a keeps the selector it always had, ``{LABEL_ISVC: name}``
    (immutable); it also matches slot b's pods, but each ReplicaSet selects its own pod-template-hash and
    pods carry their ReplicaSet's controller reference, so neither Deployment adopts the other's."""
    spec = isvc.spec
    labels = child_labels(isvc)
    rev = revision(isvc)
    pod_labels = {**labels, LABEL_REVISION: rev}
    selector = {LABEL_ISVC: isvc.name}
    meta = _meta(isvc, slot_name(isvc.name, slot))
    if slot is Slot.B:
        pod_labels[LABEL_SLOT] = selector[LABEL_SLOT] = slot.value
        meta["labels"] = {**meta["labels"], LABEL_SLOT: slot.value}
    meta.setdefault("annotations", {}).update(
        {REVISION_ANNOTATION: rev}
    )
    if (serving := encode_serving(serving_fields(serving_dump(isvc)))) is not None:
        meta["annotations"][SERVING_ANNOTATION] = serving
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
        # scale-down and rollback must not drop requests: see DRAIN_SECONDS
        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
        "volumeMounts": [mount],
    }
    pod_spec: dict[str, Any] = {
        "priorityClassName": f"foresail-{spec.priority.value}",
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
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
    if (storage := render_storage_init(spec.model.repository, operator_image)) is not None:
        init = storage[0]
        init["securityContext"] = copy.deepcopy(container["securityContext"])
        init["volumeMounts"].append({"name": "tmp", "mountPath": "/tmp"})
        pod_spec["initContainers"] = [init]
    template = {
        "metadata": {"labels": pod_labels, "annotations": _pod_annotations(isvc)},
        "spec": pod_spec,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": selector},
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": 900,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": apply_overlay(template, spec.triton.pod_template),
        },
    }


def _pod_annotations(isvc: InferenceService) -> dict[str, str]:
    out = {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS)}
    if isvc.spec.triton.queue_policy is not None:
        out[QUEUE_POLICY_ANNOTATION] = isvc.spec.triton.queue_policy.model_dump_json(by_alias=True, exclude_none=True)
    return out


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


def render_children(isvc: InferenceService, operator_image: str = DEFAULT_OPERATOR_IMAGE) -> list[dict[str, Any]]:
    return [render_deployment(isvc, operator_image=operator_image), render_service(isvc), render_pdb(isvc)]
