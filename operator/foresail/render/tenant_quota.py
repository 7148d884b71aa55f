"""The ResourceQuota backstop of a tenant's namespace (pure dicts).

In every namespace a tenant owns, a ResourceQuota ``foresail-tenant-gpus`` caps the GPUs its pods
may request at the tenant's limit minus what its other namespaces' pods request, so GPU pods Foresail
does not govern cannot pass the limit either (``quota.snapshot.quota_hard`` computes the numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from foresail.api.tenant import Tenant

__all__ = ["LABEL_TENANT", "QUOTA_NAME", "quota_changes", "render_resource_quota"]

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


def quota_changes(
    desired: Sequence[dict[str, Any]], existing: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(to apply, to delete). A namespace has one backstop (its name is fixed): a desired quota is
    applied when the existing one differs in its limit or tenant (apply updates it in place), and an
    existing one is deleted only when no tenant owns its namespace any more."""
    have = {q["metadata"]["namespace"]: q for q in existing}
    want = {q["metadata"]["namespace"]: q for q in desired}

    def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
        labels = (a["metadata"].get("labels") or {}).get(LABEL_TENANT), (b["metadata"].get("labels") or {}).get(LABEL_TENANT)
        return labels[0] == labels[1] and (a.get("spec") or {}).get("hard") == (b.get("spec") or {}).get("hard")

    apply = [q for ns, q in want.items() if ns not in have or not same(q, have[ns])]
    delete = [q for ns, q in have.items() if ns not in want]
    return apply, delete
