"""Small helpers for end-to-end tests: workloads kwok simulates, and HTTP from the cluster network.

Kubernetes calls go through the one API helper (``hack.base.kube.Kube``, the ``kube`` and ``operator``
fixtures); waiting through ``hack.base.wait.wait_for``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import yaml

from foresail.api.objects import pod_is_ready
from hack.base import netns
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster

__all__ = ["http_in_cluster", "observed", "pause_deployment", "pause_isvc", "pod_log", "prom_query", "serving", "triton_isvc"]


def pause_deployment(
    name: str, replicas: int, gpus: int = 0, priority_class: str | None = None, **pod_extra: Any
) -> dict[str, Any]:
    """A Deployment of pause containers (simulated by kwok's stages, like any pod with nothing to run)."""
    resources = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10", "resources": resources}],
        "terminationGracePeriodSeconds": 0,
        **pod_extra,
    }
    if priority_class:
        spec["priorityClassName"] = priority_class
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def pause_isvc(name: str, gpus: int = 1, min_replicas: int = 1, max_replicas: int = 8, **spec: Any) -> dict[str, Any]:
    """An InferenceService of pause replicas (kwok simulates them; no warm-up) over the ConfigMap ``models``;
    ``spec`` keys replace the defaults."""
    return {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "m", "repository": {"configMap": {"name": "models"}}},
            "triton": {"image": "registry.k8s.io/pause:3.10", "gpusPerReplica": gpus},
            "slo": {"p99LatencyMs": 100},
            "scaling": {"minReplicas": min_replicas, "maxReplicas": max_replicas},
            "warmup": {"enabled": False},
            **spec,
        },
    }


def triton_isvc(name: str, replicas: int, **triton: Any) -> dict[str, Any]:
    """An InferenceService of ``replicas`` real Triton replicas serving the emulated model
    (``crds/examples``; its ConfigMap ``emulated-model.yaml`` applied first), a decision every 2 s, no
    forecast; ``triton`` keys added to ``spec.triton``."""
    obj: dict[str, Any] = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["metadata"]["name"] = name
    obj["spec"]["triton"].update(triton)
    obj["spec"]["slo"] = {"p99LatencyMs": 150}
    obj["spec"]["scaling"] = {
        "minReplicas": replicas,
        "maxReplicas": replicas,
        "capacityPerReplicaRps": 50,
        "overrides": {"tickSeconds": 2, "forecastEnabled": False},
    }
    obj["spec"]["warmup"] = {"requests": 5, "timeoutSeconds": 120}
    return obj


def serving(kube: Kube, ns: str, name: str, n: int) -> list[dict[str, Any]]:
    """Wait for ``n`` ready (warm) replicas of service ``name``; return their pods."""

    def ready() -> list[dict[str, Any]] | None:
        p = kube.pods(ns, f"foresail.dev/inferenceservice={name}")
        return p if len(p) == n and all(map(pod_is_ready, p)) else None

    return wait_for(f"{n} ready (warm) replicas of {name}", ready, timeout=180)


def observed(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    """The service's ``status.observed`` (empty until the operator measured it)."""
    obs: dict[str, Any] = (kube.get("fisvc", "-n", ns, name).get("status") or {}).get("observed") or {}
    return obs


def pod_log(cluster: Cluster, ns: str, pod: str, container: str = "main") -> str:
    """A container's log as the local runtime writes it (there is no kubelet for ``kubectl logs``); kept after
    the pod is deleted."""
    return (cluster.run.logs / "pods" / f"{ns}_{pod}" / f"{container}.log").read_text(errors="replace")


def http_in_cluster(cluster: Cluster, url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET ``url`` from the cluster's client network namespace (where pod IPs are reachable)."""

    def get() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return int(r.status), r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return int(e.code), e.read().decode(errors="replace")

    return netns.call_in(cluster.network.client_ns, get, timeout=timeout + 5)


def prom_query(cluster: Cluster, query: str) -> list[dict[str, Any]]:
    """An instant query against the cluster's Prometheus; returns the result vector."""
    code, body = http_in_cluster(cluster, f"{cluster.network.prometheus_url}/api/v1/query?query={urllib.parse.quote(query)}")
    assert code == 200, body
    data = json.loads(body)
    assert data["status"] == "success", data
    result: list[dict[str, Any]] = data["data"]["result"]
    return result
