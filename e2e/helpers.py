"""Small helpers for end-to-end tests: kubectl with JSON, waiting with a reason."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import yaml

from hack.cluster import Cluster

T = TypeVar("T")


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25) -> T:
    """Poll ``fn`` until it returns something truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = fn()
        except Exception as e:  # remember why, and retry
            last = e
        else:
            if value:
                return value
            last = value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class Kube:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> Any:
        return self.cluster.kubectl(*args, check=check, input=input)

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(
        self, manifest: dict[str, Any] | list[dict[str, Any]] | str, namespace: str | None = None, check: bool = True
    ) -> Any:
        docs = (
            manifest if isinstance(manifest, str) else yaml.safe_dump_all(manifest if isinstance(manifest, list) else [manifest])
        )
        ns = ["-n", namespace] if namespace else []
        return self.kubectl("apply", *ns, "-f", "-", input=docs, check=check)

    def create(self, manifest: dict[str, Any], namespace: str | None = None, check: bool = True) -> Any:
        ns = ["-n", namespace] if namespace else []
        return self.kubectl("create", *ns, "-f", "-", input=yaml.safe_dump(manifest), check=check)

    def pods(self, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        sel = ["-l", selector] if selector else []
        items: list[dict[str, Any]] = self.get("pods", "-n", namespace, *sel)["items"]
        return items


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


def http_in_cluster(cluster: Cluster, url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET ``url`` from the cluster's client network namespace (where pod IPs are reachable)."""
    import urllib.error
    import urllib.request

    from hack import netns

    def get() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return int(r.status), r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return int(e.code), e.read().decode(errors="replace")

    return netns.call_in(cluster.network.client_ns, get, timeout=timeout + 5)


def prom_query(cluster: Cluster, query: str) -> list[dict[str, Any]]:
    """An instant query against the cluster's Prometheus; returns the result vector."""
    import urllib.parse

    code, body = http_in_cluster(cluster, f"{cluster.network.prometheus_url}/api/v1/query?query={urllib.parse.quote(query)}")
    assert code == 200, body
    data = json.loads(body)
    assert data["status"] == "success", data
    result: list[dict[str, Any]] = data["data"]["result"]
    return result
