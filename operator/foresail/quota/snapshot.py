"""Build the arbiter's snapshot from Kubernetes objects (pure: dicts and API models in, values out)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from foresail.api.objects import GPU_PRODUCT_LABEL, is_condition_true, parse_rfc3339, pod_is_live
from foresail.api.tenant import Tenant
from foresail.quota.arbiter import Quota, TenantQuotas

__all__ = [
    "Ownership",
    "gpu_supply",
    "namespace_owners",
    "pod_gpus",
    "quota_hard",
    "tenant_quotas",
]

_GPU_TAINT_KEYS = {"nvidia.com/gpu"}  # Foresail's pods tolerate this one


@dataclass(frozen=True)
class Ownership:
    owner: dict[str, str]  # namespace -> tenant
    conflicts: dict[str, list[str]]  # tenant -> messages about namespaces another tenant already owns


def namespace_owners(tenants: Sequence[Tenant], namespaces: Mapping[str, Mapping[str, str]]) -> Ownership:
    """Which tenant owns each namespace: listed names first, then label selectors; the oldest tenant
    (then the first by name) wins a namespace two claim, and the other is told."""
    order = sorted(tenants, key=lambda t: (parse_rfc3339(t.metadata.get("creationTimestamp")) or 0.0, str(t.metadata.get("name"))))
    owner: dict[str, str] = {}
    conflicts: dict[str, list[str]] = defaultdict(list)

    def claim(ns: str, name: str) -> None:
        prev = owner.setdefault(ns, name)
        if prev != name:
            conflicts[name].append(f"namespace {ns!r} is owned by tenant {prev!r}")

    for t in order:
        for ns in t.spec.namespaces:
            claim(ns, str(t.metadata.get("name")))
    for t in order:
        sel = t.spec.namespace_selector
        if sel is None:
            continue
        for ns, labels in sorted(namespaces.items()):
            if all(labels.get(k) == v for k, v in sel.match_labels.items()) and ns not in t.spec.namespaces:
                claim(ns, str(t.metadata.get("name")))
    return Ownership(owner, dict(conflicts))


def tenant_quotas(t: Tenant) -> TenantQuotas:
    return TenantQuotas(
        name=str(t.metadata.get("name")),
        quotas=tuple(Quota(q.resource, q.product, q.guaranteed, q.limit) for q in t.spec.gpus),
        weight=t.spec.weight,
    )


def pod_gpus(pod: Mapping[str, Any], resource: str = "nvidia.com/gpu") -> int:
    """GPUs a pod requests (extended resources: requests equal limits; either may be given)."""
    total = 0
    for c in pod.get("spec", {}).get("containers") or []:
        res = c.get("resources") or {}
        total += int(str((res.get("limits") or {}).get(resource) or (res.get("requests") or {}).get(resource) or 0))
    init = [
        int(str((((c.get("resources") or {}).get("limits") or {}).get(resource)) or 0))
        for c in pod.get("spec", {}).get("initContainers") or []
    ]
    return max([total, *init])


def _schedulable(node: Mapping[str, Any]) -> bool:
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    if not is_condition_true(node, "Ready"):
        return False
    return not any(
        t.get("effect") in ("NoSchedule", "NoExecute") and t.get("key") not in _GPU_TAINT_KEYS for t in spec.get("taints") or []
    )


def gpu_supply(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    arbitrated: Callable[[Mapping[str, Any]], bool],
    resource: str = "nvidia.com/gpu",
) -> dict[tuple[str, str | None], int]:
    """GPUs Foresail may hand out, per (resource, product): allocatable on schedulable nodes minus what
    bound pods that the arbiter does not govern use. Nodes without a product label count as product None."""
    product_of: dict[str, str | None] = {}
    free: dict[tuple[str, str | None], int] = defaultdict(int)
    for n in nodes:
        alloc = int(str(((n.get("status") or {}).get("allocatable") or {}).get(resource) or 0))
        if alloc <= 0 or not _schedulable(n):
            continue
        name = n["metadata"]["name"]
        product_of[name] = (n["metadata"].get("labels") or {}).get(GPU_PRODUCT_LABEL)
        free[(resource, product_of[name])] += alloc
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        if node not in product_of or not pod_is_live(p) or arbitrated(p):
            continue
        key = (resource, product_of[node])
        free[key] = max(0, free[key] - pod_gpus(p, resource))
    return dict(free)


def quota_hard(
    tenant: Tenant, namespaces: Sequence[str], pods: Iterable[Mapping[str, Any]], resource: str = "nvidia.com/gpu"
) -> dict[str, int]:
    """The ResourceQuota backstop per namespace: the tenant's limit minus what its other namespaces'
    pods request now, so that together they never pass the limit."""
    limit = sum(q.limit for q in tenant.spec.gpus if q.resource == resource)
    used: dict[str, int] = defaultdict(int)
    owned = set(namespaces)
    for p in pods:
        ns = p["metadata"].get("namespace")
        if ns in owned and pod_is_live(p):
            used[ns] += pod_gpus(p, resource)
    total = sum(used.values())
    return {ns: max(0, limit - (total - used[ns])) for ns in namespaces}
