"""Building the arbiter's snapshot from Kubernetes objects."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import format_rfc3339
from foresail.api.tenant import Tenant
from foresail.quota.snapshot import arbitrate_services, gpu_supply, namespace_owners, pod_gpus, quota_hard, service_workloads
from tests.builders import IsvcBuilder


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


NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
MIN_RUNTIME = 300.0


def svc(name: str = "web", ns: str = "team-a", priority: str = "batch", tenant_: str | None = None) -> InferenceService:
    b = IsvcBuilder(name, ns).set("spec.priority", priority).set("metadata.creationTimestamp", format_rfc3339(NOW - 3600))
    return (b.set("spec.tenant", tenant_) if tenant_ else b).build()


def started(age_s: float | None, node: str | None = "n1", phase: str = "Running") -> dict[str, Any]:
    p = pod("team-a", 1, node=node, phase=phase, managed=True)
    if age_s is not None:
        p["status"]["startTime"] = format_rfc3339(NOW - age_s)
    return p


@pytest.mark.parametrize(
    ("name", "isvc", "pods", "held", "protected"),
    [
        ("batch, just younger than the minimum runtime: protected", svc(), [started(MIN_RUNTIME - 1)], 1, 1),
        ("batch, just older than the minimum runtime: not protected", svc(), [started(MIN_RUNTIME + 1)], 1, 0),
        ("batch, one of each", svc(), [started(10), started(3600)], 2, 1),
        ("batch, no start reported yet: protected", svc(), [started(None)], 1, 1),
        ("standard work is never protected", svc(priority="standard"), [started(10)], 1, 0),
        ("an unscheduled pod holds nothing", svc(), [started(10, node=None)], 0, 0),
        ("a finished pod holds nothing", svc(), [started(10, phase="Succeeded")], 0, 0),
    ],
)
def test_service_workloads_held_and_protected(name: str, isvc: InferenceService, pods: list[dict[str, Any]], held: int, protected: int) -> None:
    (w,), members = service_workloads([isvc], {("team-a", "web"): pods}, {("team-a", "web"): 5}, {"team-a": "a"}, ["a"], MIN_RUNTIME, NOW)
    assert (w.held, w.protected, w.desired) == (held, protected, 5), name
    assert (w.tenant, w.priority, w.gpus, w.created) == ("a", isvc.spec.priority.value, 1, NOW - 3600)
    assert members.tenant_of == {("team-a", "web"): "a"}


@pytest.mark.parametrize(
    ("name", "isvc", "owners", "tenant_of", "missing"),
    [
        ("the namespace's owner", svc(), {"team-a": "a"}, {("team-a", "web"): "a"}, {}),
        ("spec.tenant wins over the owner", svc(tenant_="b"), {"team-a": "a"}, {("team-a", "web"): "b"}, {}),
        ("no tenant: not arbitrated", svc(), {}, {}, {}),
        ("a tenant that does not exist", svc(tenant_="ghost"), {"team-a": "a"}, {}, {("team-a", "web"): "ghost"}),
    ],
)
def test_service_membership(
    name: str, isvc: InferenceService, owners: dict[str, str], tenant_of: dict[Any, str], missing: dict[Any, str]
) -> None:
    workloads, members = service_workloads([isvc], {}, {}, owners, ["a", "b"], MIN_RUNTIME, NOW)
    assert (members.tenant_of, members.missing) == (tenant_of, missing), name
    assert len(workloads) == len(tenant_of)


def test_arbitrate_services_grants_within_the_limit_and_reports_the_quota() -> None:
    t = tenant("a", ["team-a"], limit=3)
    web = svc(priority="standard")
    arb = arbitrate_services([t], {"team-a": {}}, [web], [started(10)], [node("n1", 8)], {("team-a", "web"): 5}, MIN_RUNTIME, NOW)
    q = arb.quota_of(web)
    assert q is not None and (q.tenant, q.requested_replicas, q.granted_replicas, q.gpus_per_replica) == ("a", 5, 3, 1)
    assert arb.ownership.owned_by("a") == ["team-a"]
    assert arb.quota_of(svc("other", "elsewhere")) is None
