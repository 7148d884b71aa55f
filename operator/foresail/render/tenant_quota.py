"""The ResourceQuota backstop of a tenant's namespaces (pure dicts) and the order of its writes.

In every namespace a tenant owns, a ResourceQuota ``foresail-tenant-gpus`` caps the GPUs its pods may
request; the hard values of one tenant's namespaces sum to at most its limit (``quota.backstop``
computes the split), so GPU pods Foresail does not govern cannot pass the limit either, not even two
namespaces creating pods at the same moment.

The sum must hold between writes too, so ``plan_backstop`` orders them: first every quota that
shrinks, each as an update with the ``resourceVersion`` it was read at - the apiserver's quota
admission writes the quota's ``status.used`` on every admitted pod, so a pod admitted after that read
makes the update conflict instead of shrinking under what is already used - and the missing ones,
created at 0; then, only for a tenant all of whose shrinks succeeded, the quotas that grow (the new
ones to their share); then the deletions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from foresail.api.tenant import Tenant

__all__ = ["LABEL_TENANT", "QUOTA_NAME", "BackstopPlan", "QuotaWrite", "plan_backstop", "quota_used", "render_resource_quota"]

QUOTA_NAME = "foresail-tenant-gpus"
LABEL_TENANT = "foresail.dev/tenant"


def render_resource_quota(tenant: Tenant, namespace: str, hard_gpus: int, resource: str = "nvidia.com/gpu") -> dict[str, Any]:
    name = tenant.name
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": QUOTA_NAME,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "foresail", LABEL_TENANT: name},
            "ownerReferences": [
                {
                    "apiVersion": "foresail.dev/v1alpha1",
                    "kind": "Tenant",
                    "name": name,
                    "uid": tenant.metadata.get("uid", ""),
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {"hard": {f"requests.{resource}": str(hard_gpus)}},
    }


def _hard(q: Mapping[str, Any], resource: str) -> int | None:
    raw = ((q.get("spec") or {}).get("hard") or {}).get(f"requests.{resource}")
    return None if raw is None else int(str(raw))


def quota_used(q: Mapping[str, Any], resource: str = "nvidia.com/gpu") -> int:
    """What the quota's status says the namespace's pods request (0 before the quota controller counted)."""
    return int(str(((q.get("status") or {}).get("used") or {}).get(f"requests.{resource}") or 0))


@dataclass(frozen=True)
class QuotaWrite:
    namespace: str
    tenant: str  # the owner it is written for ("" for a deletion)
    create: bool  # POST ``body``; else a merge patch ``body`` carrying the resourceVersion precondition
    body: dict[str, Any]
    uid: str = ""  # deletions: the uid precondition


@dataclass(frozen=True)
class BackstopPlan:
    shrink: tuple[QuotaWrite, ...]  # first: creations and quotas that get smaller
    grow: tuple[QuotaWrite, ...]  # then, per tenant, only if all of that tenant's shrinks succeeded
    delete: tuple[QuotaWrite, ...]  # last: namespaces no tenant owns any more


def _update(tenant: Tenant, ns: str, hard: int, resource: str, resource_version: str | None) -> QuotaWrite:
    want = render_resource_quota(tenant, ns, hard, resource)
    md: dict[str, Any] = {"labels": want["metadata"]["labels"], "ownerReferences": want["metadata"]["ownerReferences"]}
    if resource_version:
        md["resourceVersion"] = resource_version
    return QuotaWrite(ns, tenant.name, False, {"metadata": md, "spec": want["spec"]})


def plan_backstop(
    desired: Mapping[str, tuple[Tenant, int]], existing: Sequence[Mapping[str, Any]], resource: str = "nvidia.com/gpu"
) -> BackstopPlan:
    """The writes that bring ``existing`` quotas to ``desired`` (namespace -> (owner, hard)); nothing for
    a quota that already says it. A missing quota is created at 0 among the shrinks (a namespace without
    one has no bound at all) and raised to its share among the grows."""
    have = {str(q["metadata"]["namespace"]): q for q in existing}
    shrink: list[QuotaWrite] = []
    create: list[QuotaWrite] = []
    grow: list[QuotaWrite] = []
    for ns in sorted(desired):
        tenant, hard = desired[ns]
        q = have.get(ns)
        if q is None:
            create.append(QuotaWrite(ns, tenant.name, True, render_resource_quota(tenant, ns, 0, resource)))
            if hard > 0:
                grow.append(_update(tenant, ns, hard, resource, None))
            continue
        md = q["metadata"]
        current = _hard(q, resource)
        owner = (md.get("labels") or {}).get(LABEL_TENANT)
        if current == hard and owner == tenant.name:
            continue
        w = _update(tenant, ns, hard, resource, md.get("resourceVersion"))
        (shrink if current is None or hard < current else grow).append(w)
    delete = tuple(
        QuotaWrite(ns, "", False, {}, str(q["metadata"].get("uid") or "")) for ns, q in sorted(have.items()) if ns not in desired
    )
    return BackstopPlan(tuple(shrink + create), tuple(grow), delete)
