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
    name = str(tenant.metadata.get("name"))
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


def _key(q: dict[str, Any]) -> tuple[str, str]:
    md = q["metadata"]
    return md["namespace"], (md.get("labels") or {}).get(LABEL_TENANT, "")


def quota_changes(
    desired: Sequence[dict[str, Any]], existing: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(to apply, to delete): desired quotas whose hard limits differ from (or lack) the existing one of
    their namespace and tenant, and existing ones no tenant wants any more."""
    have = {_key(q): q for q in existing}
    want = {_key(q): q for q in desired}
    apply = [q for k, q in want.items() if (have.get(k) or {}).get("spec", {}).get("hard") != q["spec"]["hard"]]
    delete = [q for k, q in have.items() if k not in want]
    return apply, delete
