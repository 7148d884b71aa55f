"""Building the arbiter's snapshot from Kubernetes objects."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import format_rfc3339
from foresail.api.tenant import Tenant
from foresail.quota.snapshot import arbitrate_services, gpu_supply, namespace_owners, pod_gpus, service_workloads, tenant_limit
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
    ("name", "tenants", "default", "owner"),
    [
        ("strict: unowned namespaces have no owner", [tenant("a", ["team-a"])], None, {"team-a": "a"}),
        (
            "open: the default tenant takes the rest, claims of its own aside, no conflict",
            [tenant("a", ["team-a"]), tenant("default", selector={"foresail.dev/tenant": "default"}, created="2025-01-01T00:00:00Z")],
            "default",
            {"team-a": "a", "other": "default", "kube-system": "default"},
        ),
        ("open, but the default tenant does not exist", [tenant("a", ["team-a"])], "default", {"team-a": "a"}),
    ],
)
def test_namespace_owners_default_tenant(name: str, tenants: list[Tenant], default: str | None, owner: dict[str, str]) -> None:
    # team-a still carries the default's label from before tenant a claimed it: a's claim wins
    labels = {"team-a": {"foresail.dev/tenant": "default"}, "other": {}, "kube-system": {}}
    own = namespace_owners(tenants, labels, default)
    assert (own.owner, own.conflicts) == (owner, {}), name


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


def test_tenant_limit_sums_every_quota_of_the_resource() -> None:
    t = Tenant.model_validate(
        {
            "metadata": {"name": "a"},
            "spec": {
                "namespaces": ["a"],
                "gpus": [{"limit": 4}, {"product": "H100", "limit": 6}, {"resource": "amd.com/gpu", "limit": 9}],
            },
        }
    )
    assert (tenant_limit(t), tenant_limit(t, "amd.com/gpu")) == (10, 9)


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


def gpu_pod(gpus: int) -> dict[str, Any]:
    return {**pod("team-a", gpus, managed=True), "status": {"phase": "Running", "startTime": format_rfc3339(NOW - 3600)}}


@pytest.mark.parametrize(
    ("name", "spec_gpus", "pods", "gpus"),
    [
        ("no pods: the spec's count", 2, [], 2),
        ("pods as the spec asks", 2, [gpu_pod(2), gpu_pod(2)], 2),
        ("mid-rollout from 2 to 1 GPU: the stable pods' 2, never under", 1, [gpu_pod(2), gpu_pod(1)], 2),
        ("mid-rollout from 1 to 2 GPUs: the spec's 2", 2, [gpu_pod(1), gpu_pod(2)], 2),
        ("the old revision gone: the spec's 1 again", 1, [gpu_pod(1)], 1),
    ],
)
def test_a_replica_counts_the_larger_gpu_request_of_its_revisions(name: str, spec_gpus: int, pods: list[dict[str, Any]], gpus: int) -> None:
    """Was: every replica at the spec's gpusPerReplica, so a rollout lowering it under-counted the stable pods."""
    isvc = IsvcBuilder("web", "team-a").set("spec.triton.gpusPerReplica", spec_gpus).build()
    (w,), _ = service_workloads([isvc], {("team-a", "web"): pods}, {("team-a", "web"): 2}, {"team-a": "a"}, ["a"], MIN_RUNTIME, NOW)
    assert w.gpus == gpus, name


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
    assert [w.tenant for w in workloads] == [*tenant_of.values(), *missing.values()], "every tenanted service is a workload"


def test_with_a_tenant_required_a_service_without_one_is_granted_nothing() -> None:
    workloads, members = service_workloads([svc()], {}, {("team-a", "web"): 2}, {}, ["a"], MIN_RUNTIME, NOW, require_tenant=True)
    assert members.missing == {("team-a", "web"): ""} and [w.tenant for w in workloads] == [""]


def test_a_service_naming_a_missing_tenant_is_granted_nothing() -> None:
    ghost = svc(tenant_="ghost", priority="critical")
    arb = arbitrate_services(
        [tenant("a", ["team-a"])], {"team-a": {}}, [ghost], [started(10)], [node("n1", 8)], {("team-a", "web"): 3}, MIN_RUNTIME, NOW
    )
    g = arb.grant("team-a", "web")
    assert g is not None and (g.units, g.desired) == (0, 3) and "tenant 'ghost' limit of 0" in g.reason
    assert arb.quota_of(ghost) is None and arb.membership.missing == {("team-a", "web"): "ghost"}
    assert arb.needed == {"team-a": 0}, "a service granted nothing needs no room in the backstop"


def test_used_and_needed_per_namespace() -> None:
    web = svc(priority="standard")
    raw = [pod("team-a", 2), pod("team-a", 5, phase="Succeeded"), pod("team-b", 1)]
    arb = arbitrate_services(
        [tenant("a", ["team-a", "team-b"], limit=6)],
        {"team-a": {}, "team-b": {}},
        [web],
        [started(3600), *raw],
        [node("n1", 8)],
        {("team-a", "web"): 3},
        MIN_RUNTIME,
        NOW,
    )
    assert arb.used == {"team-a": 3, "team-b": 1}, "live pods, Foresail's and others'"
    assert arb.needed == {"team-a": 2 + 3, "team-b": 1}, "pods outside arbitration plus the services' grants"


def test_arbitrate_services_grants_within_the_limit_and_reports_the_quota() -> None:
    t = tenant("a", ["team-a"], limit=3)
    web = svc(priority="standard")
    arb = arbitrate_services([t], {"team-a": {}}, [web], [started(10)], [node("n1", 8)], {("team-a", "web"): 5}, MIN_RUNTIME, NOW)
    q = arb.quota_of(web)
    assert q is not None and (q.tenant, q.requested_replicas, q.granted_replicas, q.gpus_per_replica) == ("a", 5, 3, 1)
    assert arb.ownership.owned_by("a") == ["team-a"]
    assert arb.quota_of(svc("other", "elsewhere")) is None
