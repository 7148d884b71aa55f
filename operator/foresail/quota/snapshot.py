"""Build the arbiter's snapshot from Kubernetes objects (pure: dicts and API models in, values out).

``arbitrate_services`` is what the autoscaler calls once per pass on the objects it listed: which tenant
owns each namespace, which tenant each service belongs to, every service's workload (its desired and
held replicas, the batch minimum-runtime rule), the GPU supply; ``Arbitration`` holds the plan with
that context for the writers (services' grants, Tenant status, the namespaces' owner labels, the
ResourceQuota backstop).

No service escapes arbitration: one naming a Tenant that does not exist, or (``require_tenant``, as
the operator runs it) in a namespace no Tenant owns, is a workload of a tenant without quota
(``Membership.missing``; "" for no tenant at all) and is granted no GPUs until the Tenant exists. In tenancy mode ``open`` the default tenant owns every
namespace no other tenant owns, so only a missing default Tenant leaves namespaces without one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from foresail.api.inferenceservice import InferenceService, Priority, QuotaStatus
from foresail.api.objects import GPU_PRODUCT_LABEL, LABEL_ISVC, group_by_label, is_condition_true, parse_rfc3339, pod_is_live
from foresail.api.tenant import Tenant
from foresail.quota.arbiter import Grant, Plan, Quota, Snapshot, TenantQuotas, Workload, arbitrate

__all__ = [
    "GPU",
    "ISVC_KIND",
    "Arbitration",
    "Membership",
    "Ownership",
    "arbitrate_services",
    "gpu_supply",
    "namespace_owners",
    "pod_gpus",
    "service_workloads",
    "tenant_limit",
    "tenant_quotas",
]

GPU = "nvidia.com/gpu"
ISVC_KIND = "InferenceService"
Key = tuple[str, str]  # (namespace, name)

_GPU_TAINT_KEYS = {"nvidia.com/gpu"}  # Foresail's pods tolerate this one


@dataclass(frozen=True)
class Ownership:
    owner: dict[str, str]  # namespace -> tenant
    conflicts: dict[str, list[str]]  # tenant -> messages about namespaces another tenant already owns

    def owned_by(self, tenant: str) -> list[str]:
        return sorted(ns for ns, owner in self.owner.items() if owner == tenant)


def namespace_owners(
    tenants: Sequence[Tenant], namespaces: Mapping[str, Mapping[str, str]], default: str | None = None
) -> Ownership:
    """Which tenant owns each namespace: listed names first, then label selectors; the oldest tenant
    (then the first by name) wins a namespace two claim, and the other is told. The ``default`` tenant
    (tenancy mode open; when it exists) owns every namespace nobody else claims, its own spec aside."""
    fallback = default if default is not None and any(t.name == default for t in tenants) else None
    order = sorted(
        (t for t in tenants if t.name != fallback), key=lambda t: (parse_rfc3339(t.metadata.get("creationTimestamp")) or 0.0, t.name)
    )
    owner: dict[str, str] = {}
    conflicts: dict[str, list[str]] = defaultdict(list)

    def claim(ns: str, name: str) -> None:
        prev = owner.setdefault(ns, name)
        if prev != name:
            conflicts[name].append(f"namespace {ns!r} is owned by tenant {prev!r}")

    for t in order:
        for ns in t.spec.namespaces:
            claim(ns, t.name)
    for t in order:
        sel = t.spec.namespace_selector
        if sel is None:
            continue
        for ns, labels in sorted(namespaces.items()):
            if all(labels.get(k) == v for k, v in sel.match_labels.items()) and ns not in t.spec.namespaces:
                claim(ns, t.name)
    if fallback is not None:
        for ns in namespaces:
            owner.setdefault(ns, fallback)
    return Ownership(owner, dict(conflicts))


def tenant_quotas(t: Tenant) -> TenantQuotas:
    return TenantQuotas(
        name=t.name,
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


def tenant_limit(tenant: Tenant, resource: str = "nvidia.com/gpu") -> int:
    """The most GPUs of ``resource`` the tenant's pods may hold together (all its quotas' limits)."""
    return sum(q.limit for q in tenant.spec.gpus if q.resource == resource)


@dataclass(frozen=True)
class Membership:
    tenant_of: dict[Key, str]  # (namespace, service) -> its tenant, for services of existing tenants
    missing: dict[Key, str]  # (namespace, service) -> the missing tenant it names ("": none owns its namespace)


def service_workloads(
    isvcs: Iterable[InferenceService],
    pods: Mapping[Key, Sequence[Mapping[str, Any]]],
    desired: Mapping[Key, int],
    owner_of: Mapping[str, str],
    tenants: Iterable[str],
    batch_min_runtime_s: float,
    now: float,
    require_tenant: bool = False,
) -> tuple[list[Workload], Membership]:
    """One workload per service, of its tenant (``spec.tenant``, else the owner of its namespace); one
    whose tenant does not exist is a workload of a tenant without quota, and so is one with none (tenant
    "") when ``require_tenant`` (the operator; without it such a service is not arbitrated). ``held`` counts its live pods bound to a node; a batch service's pods that started less than
    ``batch_min_runtime_s`` ago (or have not reported a start yet) are ``protected``."""
    names = set(tenants)
    tenant_of: dict[Key, str] = {}
    missing: dict[Key, str] = {}
    out: list[Workload] = []
    for isvc in isvcs:
        key = (isvc.namespace, isvc.name)
        t = isvc.spec.tenant or owner_of.get(isvc.namespace)
        if t is None:
            if not require_tenant:
                continue  # not arbitrated (its GPUs count as used by others)
            t = ""  # its namespace belongs to no tenant
        if t in names:
            tenant_of[key] = t
        else:
            missing[key] = t
        held = [p for p in pods.get(key, ()) if pod_is_live(p) and (p.get("spec") or {}).get("nodeName")]
        protected = 0
        if isvc.spec.priority == Priority.BATCH:
            started = [parse_rfc3339((p.get("status") or {}).get("startTime")) for p in held]
            protected = sum(1 for s in started if s is None or s > now - batch_min_runtime_s)
        out.append(
            Workload(
                kind=ISVC_KIND,
                namespace=isvc.namespace,
                name=isvc.name,
                tenant=t,
                priority=isvc.spec.priority.value,
                # during a rollout the stable revision's pods may ask for another count than the spec's (a
                # change of gpusPerReplica is a revision): a replica is counted at the larger, never under
                gpus=max([isvc.spec.triton.gpus_per_replica, *(pod_gpus(p) for p in held)]),
                desired=desired.get(key, 0),
                held=len(held),
                created=parse_rfc3339(isvc.metadata.get("creationTimestamp")) or now,
                protected=protected,
                resource=GPU,
                product=isvc.spec.triton.gpu_product,
            )
        )
    return out, Membership(tenant_of, missing)


@dataclass(frozen=True)
class Arbitration:
    """A plan and what it was made of: who belongs to which tenant, who owns which namespace, and per
    namespace the GPUs its live pods hold (``used``) and will need (``needed``: its services' grants plus
    what its pods outside arbitration hold)."""

    plan: Plan
    membership: Membership
    ownership: Ownership
    tenants: tuple[Tenant, ...]
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)
    needed: dict[str, int] = field(default_factory=dict)

    def grant(self, ns: str, name: str) -> Grant | None:
        return self.plan.grants.get((ISVC_KIND, ns, name))

    def quota_of(self, isvc: InferenceService) -> QuotaStatus | None:
        """``status.quota`` of a service: its tenant's grant (None when no tenant arbitrates it)."""
        g = self.grant(isvc.namespace, isvc.name)
        tenant = self.membership.tenant_of.get((isvc.namespace, isvc.name))
        if g is None or tenant is None:
            return None
        return QuotaStatus(
            tenant=tenant,
            requested_replicas=g.desired,
            granted_replicas=g.units,
            gpus_per_replica=isvc.spec.triton.gpus_per_replica,
            reason=g.reason,
        )


def arbitrate_services(
    tenants: Sequence[Tenant],
    namespace_labels: Mapping[str, Mapping[str, str]],
    isvcs: Sequence[InferenceService],
    pods: Sequence[dict[str, Any]],
    nodes: Iterable[Mapping[str, Any]],
    desired: Mapping[Key, int],
    batch_min_runtime_s: float,
    now: float,
    default_tenant: str | None = None,
    require_tenant: bool = False,
) -> Arbitration:
    """The grants of one pass, from the objects listed (``desired``: every service's replicas now):
    who owns which namespace, which tenant each service belongs to, the workloads, the GPU supply."""
    own = namespace_owners(tenants, namespace_labels, default_tenant)
    names = [t.name for t in tenants]
    by_service = group_by_label(pods, LABEL_ISVC)
    workloads, members = service_workloads(isvcs, by_service, desired, own.owner, names, batch_min_runtime_s, now, require_tenant)

    def arbitrated(p: Mapping[str, Any]) -> bool:
        svc = (p["metadata"].get("labels") or {}).get(LABEL_ISVC)
        key = (p["metadata"]["namespace"], svc)
        return svc is not None and (key in members.tenant_of or key in members.missing)

    snap = Snapshot(tuple(tenant_quotas(t) for t in tenants), tuple(workloads), gpu_supply(nodes, pods, arbitrated, GPU))
    plan = arbitrate(snap)
    used: dict[str, int] = defaultdict(int)
    needed: dict[str, int] = defaultdict(int)
    for p in pods:
        if pod_is_live(p):
            gpus = pod_gpus(p, GPU)
            used[p["metadata"]["namespace"]] += gpus
            if not arbitrated(p):
                needed[p["metadata"]["namespace"]] += gpus
    for w in workloads:
        needed[w.namespace] += plan.grants[w.key].units * max(0, w.gpus)
    return Arbitration(plan, members, own, tuple(tenants), namespace_labels, dict(used), dict(needed))
