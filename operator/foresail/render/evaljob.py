"""Desired children of an EvalJob (pure): the Indexed Job of eval workers, their least-privilege
ServiceAccount/Role/RoleBinding, the progress ConfigMap, the default results PVC, and in dedicated
mode a batch-priority InferenceService of the target's model for the job's duration.

``spec.traffic.prometheusAuth`` names a Secret of the job's namespace: the workers' pods mount it read-only
at ``PROM_AUTH_MOUNT`` (mode 0440, the pod's ``fsGroup`` the workers' group) and their configuration
carries the paths where its keys would be (``prom_auth_paths``), never a value; the workers use the files
that exist. The kubelet mounts it: the workers' Role needs no access to Secrets.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from typing import Any

from foresail.api.evaljob import EvalJob, EvalMode
from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import LABEL_ISVC, LABEL_REVISION
from foresail.render.meta import child_meta, standard_labels
from foresail.render.triton import GRPC, HTTP

__all__ = [
    "DATA_MOUNT",
    "EXIT_BAD_INPUT",
    "EXIT_STOPPED",
    "LABEL_EVALJOB",
    "PROM_AUTH_KEYS",
    "PROM_AUTH_MOUNT",
    "RESULTS_MOUNT",
    "SHARDS_PER_PROGRESS",
    "WORKER_CONFIG_ENV",
    "WORKER_CONTAINER_SECURITY",
    "WORKER_UID",
    "EvalPlan",
    "Names",
    "eval_plan",
    "job_labels",
    "progress_name",
    "progress_names",
    "prom_auth_paths",
    "render_eval_isvc",
    "render_job",
    "render_progress",
    "render_results_pvc",
    "render_target_service",
    "render_worker_rbac",
    "worker_config",
]

# The restricted container security context of the eval workers and of the compare Job (the pod sets the seccomp profile)
WORKER_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}

LABEL_EVALJOB = "foresail.dev/evaljob"
WORKER_CONFIG_ENV = "FORESAIL_EVAL_CONFIG"
DATA_MOUNT = "/data"
RESULTS_MOUNT = "/results"
EXIT_BAD_INPUT = 3  # the dataset or configuration is wrong: retrying cannot help (podFailurePolicy FailJob)
EXIT_STOPPED = 143  # stopped by SIGTERM (suspend, preemption, drain) with the shard unfinished: not a failure
WORKER_UID = 65532  # the image's user (and group)
# shards reporting into one progress ConfigMap: 400 reports of at most 2 KiB (render.evaljob_status.MAX_REPORT_BYTES)
# stay under the apiserver's 1 MiB of data per ConfigMap with room to spare, at any shard count
SHARDS_PER_PROGRESS = 400
PROM_AUTH_VOLUME = "prometheus-auth"
PROM_AUTH_MOUNT = "/etc/foresail/prometheus"
PROM_AUTH_HEADER_PREFIX = "header."
# the worker configuration's name of each credential file -> the Secret's key (clients.promauth.PromAuth's fields)
PROM_AUTH_KEYS = {
    "bearerTokenFile": "token",
    "basicAuthUsernameFile": "username",
    "basicAuthPasswordFile": "password",
    "caFile": "ca.crt",
    "certFile": "tls.crt",
    "keyFile": "tls.key",
}


@dataclass(frozen=True)
class Names:
    job: str
    worker: str  # ServiceAccount, Role, RoleBinding
    progress: str  # ConfigMap the workers report into
    eval_isvc: str  # dedicated eval replicas
    results_pvc: str
    target: str  # spec.target.revision: the Service selecting that revision's pods

    @classmethod
    def of(cls, name: str) -> Names:
        return cls(name, f"{name}-worker", f"{name}-progress", f"{name}-eval", f"{name}-results", f"{name}-target")


@dataclass(frozen=True)
class EvalPlan:
    """What the operator resolved for the workers."""

    service: str  # the InferenceService whose ready endpoints the workers call
    production: str  # the production InferenceService whose load the workers yield to ("" = never yield)
    model: str
    version: str
    slo_ms: float
    dataset_path: str
    dataset_sha256: str  # expected ("" = compute and report only)
    results_claim: str
    results_dir: str  # inside RESULTS_MOUNT, one directory per spec hash
    image: str
    prometheus_url: str
    spec_hash: str
    suspend: bool


def eval_plan(
    ej: EvalJob,
    target: InferenceService,
    results_claim: str,
    results_dir: str,
    spec_hash: str,
    suspend: bool,
    default_image: str,
    prometheus_url: str,
) -> EvalPlan:
    """What the workers are told: which Service to call and whose load to yield to, the model, SLO,
    dataset, where results go, the image."""
    dedicated = ej.spec.mode == EvalMode.DEDICATED
    ds = ej.spec.dataset
    n = Names.of(ej.name)
    return EvalPlan(
        # spec.target.revision: only that revision's pods, through the job's own Service (render_target_service)
        service=n.eval_isvc if dedicated else (n.target if ej.spec.target.revision else target.name),
        production="" if dedicated else target.name,
        model=ej.spec.target.model or target.spec.model.name,
        version=ej.spec.target.version or "",
        slo_ms=target.spec.slo.p99_latency_ms,
        dataset_path=f"{DATA_MOUNT}/dataset.jsonl" if ds.pvc is None else f"{DATA_MOUNT}/{ds.pvc.path}",
        dataset_sha256=ds.sha256 or "",
        results_claim=results_claim,
        results_dir=results_dir,
        image=ej.spec.worker.image or default_image,
        prometheus_url=prometheus_url,
        spec_hash=spec_hash,
        suspend=suspend,
    )


def job_labels(ej: EvalJob) -> dict[str, str]:
    """The labels of every child of the job (and of its pods): its Job events reach the reconciler by them."""
    return standard_labels("foresail-eval", ej.name, "evaluation", LABEL_EVALJOB)


def _meta(ej: EvalJob, name: str, **extra: Any) -> dict[str, Any]:
    return child_meta(ej, name, job_labels(ej), **extra)


def prom_auth_paths() -> dict[str, str]:
    """Where the workers find each key of the ``prometheusAuth`` Secret (when the Secret has it)."""
    return {
        **{name: f"{PROM_AUTH_MOUNT}/{key}" for name, key in PROM_AUTH_KEYS.items()},
        "headersDir": PROM_AUTH_MOUNT,
        "headersPrefix": PROM_AUTH_HEADER_PREFIX,
    }


def worker_config(ej: EvalJob, plan: EvalPlan) -> dict[str, Any]:
    s = ej.spec
    config = {
        "job": ej.name,
        "namespace": ej.namespace,
        "progressConfigMap": Names.of(ej.name).progress,
        "shardsPerProgress": SHARDS_PER_PROGRESS,
        "plan": {_camel(k): v for k, v in asdict(plan).items() if k not in ("suspend", "image")},
        "seed": s.seed,
        "shards": s.shards,
        "scorer": s.scorer.model_dump(by_alias=True, mode="json"),
        "traffic": s.traffic.model_dump(by_alias=True, mode="json"),
        "yield": s.mode == EvalMode.SHARED and s.traffic.yield_to_production,
        "recordOutputs": s.outputs.record_outputs,
    }
    if s.traffic.prometheus_auth is not None:  # the Secret's name (for messages) and where its keys are
        config["prometheusAuth"] = {"secret": s.traffic.prometheus_auth.secret_name, **prom_auth_paths()}
    return config


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w.capitalize() for w in rest)


def render_job(ej: EvalJob, plan: EvalPlan) -> dict[str, Any]:
    s = ej.spec
    n = Names.of(ej.name)
    if s.dataset.config_map is not None:
        data_volume: dict[str, Any] = {
            "name": "dataset",
            "configMap": {
                "name": s.dataset.config_map.name,
                "items": [{"key": s.dataset.config_map.key, "path": "dataset.jsonl"}],
            },
        }
    else:
        assert s.dataset.pvc is not None
        data_volume = {"name": "dataset", "persistentVolumeClaim": {"claimName": s.dataset.pvc.claim_name, "readOnly": True}}
    volumes = [data_volume, {"name": "results", "persistentVolumeClaim": {"claimName": plan.results_claim}}]
    mounts: list[dict[str, Any]] = [
        {"name": "dataset", "mountPath": DATA_MOUNT, "readOnly": True},
        {"name": "results", "mountPath": RESULTS_MOUNT},
    ]
    pod_security: dict[str, Any] = {"runAsNonRoot": True, "runAsUser": WORKER_UID, "seccompProfile": {"type": "RuntimeDefault"}}
    auth = s.traffic.prometheus_auth
    if auth is not None:
        # 0440 and the workers' group (fsGroup): the worker reads it, no other user but root; OnRootMismatch:
        # volumes already the group's are not walked again at every pod start
        secret = {"secretName": auth.secret_name, "defaultMode": 0o440, "optional": False}
        volumes.append({"name": PROM_AUTH_VOLUME, "secret": secret})
        mounts.append({"name": PROM_AUTH_VOLUME, "mountPath": PROM_AUTH_MOUNT, "readOnly": True})
        pod_security |= {"fsGroup": WORKER_UID, "fsGroupChangePolicy": "OnRootMismatch"}
    container = {
        "name": "worker",
        "image": plan.image,
        "args": ["eval-worker"],
        "env": [
            {"name": WORKER_CONFIG_ENV, "value": json.dumps(worker_config(ej, plan), sort_keys=True)},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
        "resources": {
            "requests": {"cpu": s.worker.cpu, "memory": s.worker.memory},
            "limits": {"memory": s.worker.memory},
        },
        "volumeMounts": mounts,
        "securityContext": copy.deepcopy(WORKER_CONTAINER_SECURITY),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": s.shards,
        "parallelism": s.parallelism,
        "backoffLimitPerIndex": s.backoff_limit_per_index,
        "maxFailedIndexes": s.shards,  # the other shards still finish; the job fails at the end
        "suspend": plan.suspend,
        "podFailurePolicy": {
            "rules": [
                {"action": "FailJob", "onExitCodes": {"containerName": "worker", "operator": "In", "values": [EXIT_BAD_INPUT]}},
                # stopped on purpose, or disrupted: the replacement resumes; no retry is used up
                {"action": "Ignore", "onExitCodes": {"containerName": "worker", "operator": "In", "values": [EXIT_STOPPED]}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            ]
        },
        "template": {
            "metadata": {"labels": job_labels(ej)},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": n.worker,
                "priorityClassName": f"foresail-{s.priority.value}",
                "terminationGracePeriodSeconds": 30,
                "securityContext": pod_security,
                "containers": [container],
                "volumes": volumes,
            },
        },
    }
    if s.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = s.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(ej, n.job, annotations={"foresail.dev/spec-hash": plan.spec_hash}),
        "spec": job_spec,
    }


def render_worker_rbac(ej: EvalJob) -> list[dict[str, Any]]:
    """The workers may patch their job's progress ConfigMaps (by name) and read the endpoints they call."""
    n = Names.of(ej.name)
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(ej, n.worker), "automountServiceAccountToken": True},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(ej, n.worker),
            "rules": [
                {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": progress_names(ej), "verbs": ["get", "patch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list"]},
                # the production replicas: which serve and since when, for the production signals
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(ej, n.worker),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": n.worker},
            "subjects": [{"kind": "ServiceAccount", "name": n.worker, "namespace": ej.namespace}],
        },
    ]


def progress_name(base: str, index: int, per: int = SHARDS_PER_PROGRESS) -> str:
    """The progress ConfigMap shard ``index`` reports into: ``<job>-progress`` for the first ``per`` shards,
    then ``<job>-progress-1``, ``-2``, ..."""
    group = index // per
    return base if group == 0 else f"{base}-{group}"


def progress_names(ej: EvalJob) -> list[str]:
    base = Names.of(ej.name).progress
    return [progress_name(base, i) for i in range(0, ej.spec.shards, SHARDS_PER_PROGRESS)]


def render_progress(ej: EvalJob) -> list[dict[str, Any]]:
    """Created empty, one per ``SHARDS_PER_PROGRESS`` shards; each worker merge-patches its own key ``shard-<index>``."""
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(ej, name)} for name in progress_names(ej)]


def render_results_pvc(ej: EvalJob) -> dict[str, Any]:
    """The default results volume, owned by the job (name your own PVC in spec.outputs to keep results)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(ej, Names.of(ej.name).results_pvc),
        "spec": {
            # several workers write at once, possibly from several nodes
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": ej.spec.outputs.storage}},
        },
    }


def render_target_service(ej: EvalJob) -> dict[str, Any]:
    """``spec.target.revision``: a Service owned by the job selecting the pods of that revision of the target
    (labels ``foresail.dev/inferenceservice`` and ``foresail.dev/revision``), the ports of the service's own
    Service; the workers call its ready endpoints (the warm-up gate still decides readiness)."""
    rev = ej.spec.target.revision
    assert rev is not None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(ej, Names.of(ej.name).target),
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_ISVC: ej.spec.target.inference_service, LABEL_REVISION: rev},
            "ports": [
                {"name": "http", "port": HTTP, "targetPort": "http", "protocol": "TCP"},
                {"name": "grpc", "port": GRPC, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"},
            ],
        },
    }


def render_eval_isvc(ej: EvalJob, target: InferenceService) -> dict[str, Any]:
    """Dedicated mode: replicas of the target's model at the job's (batch) priority, fixed count, owned
    by the job; the tenant arbiter and the scheduler may take them back for production."""
    spec = target.spec.model_dump(by_alias=True, mode="json", exclude_none=True)
    spec["priority"] = ej.spec.priority.value
    tenant = ej.spec.tenant or target.spec.tenant
    if tenant:
        spec["tenant"] = tenant
    else:
        spec.pop("tenant", None)
    replicas = ej.spec.dedicated.replicas
    spec["scaling"] = {"minReplicas": replicas, "maxReplicas": replicas, "fallback": {"replicas": replicas, "afterSeconds": 0}}
    return {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": _meta(ej, Names.of(ej.name).eval_isvc),
        "spec": spec,
    }
