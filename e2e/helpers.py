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

from hack.base import netns
from hack.testbed.cluster import Cluster

__all__ = ["http_in_cluster", "pause_deployment", "pause_isvc", "prom_query"]


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
