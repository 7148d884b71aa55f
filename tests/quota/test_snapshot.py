"""Building the arbiter's snapshot from Kubernetes objects."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.api.tenant import Tenant
from foresail.quota.snapshot import gpu_supply, namespace_owners, pod_gpus, quota_hard


def tenant(
    name: str,
    namespaces: list[str] | None = None,
    selector: dict[str, str] | None = None,
    created: str = "2026-01-01T00:00:00Z",
    limit: int = 8,
) -> Tenant:
    spec: dict[str, Any] = {"namespaces": namespaces or [], "gpus": [{"guaranteed": 0, "limit": limit}]}
    if selector is not None:
        spec["namespaceSelector"] = {"matchLabels": selector}
    return Tenant.model_validate({"metadata": {"name": name, "creationTimestamp": created}, "spec": spec})


def node(name: str, gpus: int, product: str | None = "H100", ready: bool = True, **spec: Any) -> dict[str, Any]:
    labels = {"nvidia.com/gpu.product": product} if product else {}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}, "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def pod(ns: str, gpus: int, node: str | None = "n1", phase: str = "Running", managed: bool = False) -> dict[str, Any]:
    labels = {"foresail.dev/inferenceservice": "web"} if managed else {}
    return {
        "metadata": {"namespace": ns, "name": "p", "labels": labels},
        "spec": {"nodeName": node, "containers": [{"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]},
        "status": {"phase": phase},
    }


def test_namespace_owners() -> None:
    own = namespace_owners(
        [
            tenant("a", ["team-a", "shared"]),
            tenant("b", ["shared"], created="2026-02-01T00:00:00Z"),
            tenant("c", selector={"team": "c"}),
        ],
        {"team-a": {}, "shared": {}, "c1": {"team": "c"}, "c2": {"team": "c", "x": "y"}, "other": {"team": "d"}},
    )
    assert own.owner == {"team-a": "a", "shared": "a", "c1": "c", "c2": "c"}
    assert own.conflicts == {"b": ["namespace 'shared' is owned by tenant 'a'"]}


@pytest.mark.parametrize(
    ("name", "nodes", "pods", "want"),
    [
        ("allocatable of ready nodes, per product", [node("n1", 8), node("n2", 8, "A100")], [], {"H100": 8, "A100": 8}),
        (
            "cordoned, not ready and tainted nodes give nothing",
            [
                node("n1", 8),
                node("n2", 8, unschedulable=True),
                node("n3", 8, ready=False),
                node("n4", 8, taints=[{"key": "maint", "effect": "NoSchedule"}]),
            ],
            [],
            {"H100": 8},
        ),
        (
            "the GPU taint is tolerated",
            [node("n1", 8, taints=[{"key": "nvidia.com/gpu", "effect": "NoSchedule"}])],
            [],
            {"H100": 8},
        ),
        (
            "unmanaged pods' GPUs are not Foresail's",
            [node("n1", 8)],
            [pod("x", 3), pod("x", 2, phase="Succeeded"), pod("x", 4, node=None)],
            {"H100": 5},
        ),
        ("arbitrated pods stay in the supply", [node("n1", 8)], [pod("x", 3, managed=True)], {"H100": 8}),
        ("nodes without a product label", [node("n1", 4, None)], [], {None: 4}),
    ],
)
def test_gpu_supply(name: str, nodes: list[dict[str, Any]], pods: list[dict[str, Any]], want: dict[str | None, int]) -> None:
    got = gpu_supply(nodes, pods, lambda p: bool(p["metadata"]["labels"]))
    assert got == {("nvidia.com/gpu", p): n for p, n in want.items()}


def test_pod_gpus_requests_limits_and_init() -> None:
    p = {
        "spec": {
            "containers": [{"resources": {"requests": {"nvidia.com/gpu": "2"}}}, {"resources": {}}],
            "initContainers": [{"resources": {"limits": {"nvidia.com/gpu": "3"}}}],
        }
    }
    assert pod_gpus(p) == 3


def test_quota_hard_splits_the_limit_across_namespaces() -> None:
    t = tenant("a", ["n1", "n2"], limit=10)
    pods = [pod("n1", 3), pod("n2", 4), pod("n2", 1, phase="Failed"), pod("elsewhere", 8)]
    assert quota_hard(t, ["n1", "n2"], pods) == {"n1": 6, "n2": 7}
