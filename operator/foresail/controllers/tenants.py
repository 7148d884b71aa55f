"""Tenants, once per pass of the autoscaler loop: the objects it listed -> ``quota.arbitrate_services``
-> grants for the autoscaler, Tenant status, and a ResourceQuota backstop in every namespace a tenant owns.

The snapshot comes from lists the autoscaler already made (services, pods, nodes, tenants,
namespaces): no extra API calls per service. Writes happen only when something changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from foresail.api.inferenceservice import InferenceService
from foresail.api.meta import validation_message
from foresail.api.tenant import Tenant
from foresail.clients.kube import ApiException, Kube
from foresail.quota.snapshot import GPU, Arbitration, arbitrate_services, quota_hard
from foresail.quota.status import tenant_status_patch
from foresail.render.tenant_quota import QUOTA_NAME, quota_changes, render_resource_quota

__all__ = ["TenantArbiter"]

log = logging.getLogger("foresail.tenants")


@dataclass
class TenantArbiter:
    kube: Kube
    batch_min_runtime_s: float = 300.0

    def arbitrate(
        self,
        isvcs: list[InferenceService],
        pods: list[dict[str, Any]],
        nodes: list[dict[str, Any]],
        tenant_bodies: list[dict[str, Any]],
        namespace_bodies: list[dict[str, Any]],
        desired: dict[tuple[str, str], int],
        now: float,
    ) -> Arbitration:
        tenants = []
        for body in tenant_bodies:
            try:
                tenants.append(Tenant.model_validate(body))
            except ValidationError as e:
                log.warning("tenant %s is invalid, ignored: %s", body["metadata"].get("name"), validation_message(e))
        labels = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in namespace_bodies}
        return arbitrate_services(tenants, labels, isvcs, pods, nodes, desired, self.batch_min_runtime_s, now)

    def write(
        self,
        arb: Arbitration,
        pods: list[dict[str, Any]],
        quotas: list[dict[str, Any]],
        tenant_bodies: list[dict[str, Any]],
        now: float,
    ) -> None:
        """Tenant status and the ResourceQuota backstop; only what changed."""
        self._quotas(arb, pods, quotas)
        listed = {str(b["metadata"]["name"]): b for b in tenant_bodies}
        for t in arb.tenants:
            name = t.name
            gen = t.generation
            # the listed object is fresh enough to skip a no-op write
            if tenant_status_patch(name, gen, arb, listed.get(name, {}).get("status") or {}, now) is None:
                continue
            try:
                self.kube.update_status(
                    "Tenant", None, name, lambda fresh, n=name, g=gen: tenant_status_patch(n, g, arb, fresh.get("status") or {}, now)
                )
            except ApiException as e:
                log.warning("tenant %s: status not written: %s", name, e.reason)

    def _quotas(self, arb: Arbitration, pods: list[dict[str, Any]], existing: list[dict[str, Any]]) -> None:
        desired = [
            render_resource_quota(t, ns, hard, GPU)
            for t in arb.tenants
            for ns, hard in quota_hard(t, arb.ownership.owned_by(t.name), pods, GPU).items()
        ]
        to_apply, to_delete = quota_changes(desired, existing)
        for q in to_apply:
            try:
                self.kube.apply(q)
            except ApiException as e:  # e.g. the namespace is being deleted
                log.warning("ResourceQuota %s/%s not applied: %s", q["metadata"]["namespace"], QUOTA_NAME, e.reason)
        for q in to_delete:
            md = q["metadata"]
            try:
                self.kube.delete("ResourceQuota", md["namespace"], md["name"], md.get("uid"))
            except ApiException as e:
                log.warning("ResourceQuota %s/%s not deleted: %s", md["namespace"], md["name"], e.reason)
