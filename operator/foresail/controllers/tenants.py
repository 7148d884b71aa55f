"""Tenants, once per pass of the autoscaler loop: the objects it listed -> ``quota.arbitrate_services``
-> grants for the autoscaler, the owner label of every namespace, Tenant status, and the ResourceQuota
backstop in every namespace a tenant owns.

The snapshot comes from lists the autoscaler already made (services, pods, nodes, tenants,
namespaces): no extra API calls per service. Writes happen only when something changed.

* Namespace labels: ``foresail.dev/tenant=<owner>`` on every namespace a tenant owns, removed where none
  does. The admission policies read it (``policies/admission/``): in tenancy mode strict a Foresail
  object or a ``foresail-*`` pod in an unlabelled namespace is refused. Only the operator may write it.
* The backstop: the tenant's limit split across its namespaces (``quota.backstop``), written in the
  order ``render.tenant_quota.plan_backstop`` gives, so that the quotas never sum past the limit.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from foresail.api.inferenceservice import InferenceService
from foresail.api.meta import validation_message
from foresail.api.tenant import Tenant
from foresail.clients.kube import ApiException, Kube, api_message
from foresail.quota.backstop import split_limit
from foresail.quota.snapshot import GPU, Arbitration, arbitrate_services, tenant_limit
from foresail.quota.status import tenant_status_patch
from foresail.render.tenant_quota import LABEL_TENANT, QUOTA_NAME, QuotaWrite, plan_backstop, quota_used

__all__ = ["TenantArbiter"]

log = logging.getLogger("foresail.tenants")


@dataclass
class TenantArbiter:
    kube: Kube
    batch_min_runtime_s: float = 300.0
    default_tenant: str | None = None  # tenancy mode open: the tenant of every namespace no other owns
    watch: Collection[str] = field(default_factory=frozenset)  # namespaces it may write in (empty: all)
    require_tenant: bool = False  # the operator: a service no tenant owns is granted no GPUs

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
        return arbitrate_services(
            tenants,
            labels,
            isvcs,
            pods,
            nodes,
            desired,
            self.batch_min_runtime_s,
            now,
            default_tenant=self.default_tenant,
            require_tenant=self.require_tenant,
        )

    def _mine(self, namespace: str) -> bool:
        return not self.watch or namespace in self.watch

    def write(
        self,
        arb: Arbitration,
        pods: list[dict[str, Any]],
        quotas: list[dict[str, Any]],
        tenant_bodies: list[dict[str, Any]],
        now: float,
    ) -> None:
        """Namespace owner labels, the ResourceQuota backstop, Tenant status; only what changed."""
        self._labels(arb)
        self._quotas(arb, quotas)
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
                log.warning("tenant %s: status not written: %s", name, api_message(e))

    def _labels(self, arb: Arbitration) -> None:
        for ns, labels in sorted(arb.namespace_labels.items()):
            owner = arb.ownership.owner.get(ns)
            if labels.get(LABEL_TENANT) == owner or not self._mine(ns):
                continue
            try:
                self.kube.merge_patch("Namespace", None, ns, {"metadata": {"labels": {LABEL_TENANT: owner}}})
            except ApiException as e:  # e.g. the namespace is being deleted
                log.warning("namespace %s: owner label not written: %s", ns, api_message(e))

    def _quotas(self, arb: Arbitration, existing: list[dict[str, Any]]) -> None:
        have = {str(q["metadata"]["namespace"]): q for q in existing if self._mine(str(q["metadata"]["namespace"]))}
        desired: dict[str, tuple[Tenant, int]] = {}
        for t in arb.tenants:
            owned = [ns for ns in arb.ownership.owned_by(t.name) if self._mine(ns)]
            # the quota's own count is the apiserver's: it includes pods admitted after the pods were listed
            used = {ns: max(arb.used.get(ns, 0), quota_used(have[ns], GPU) if ns in have else 0) for ns in owned}
            needed = {ns: arb.needed.get(ns, 0) for ns in owned}
            desired.update((ns, (t, hard)) for ns, hard in split_limit(tenant_limit(t, GPU), used, needed).items())
        plan = plan_backstop(desired, list(have.values()), GPU)
        failed = {w.tenant for w in plan.shrink if not self._write(w)}
        for w in plan.grow:
            if w.tenant not in failed:  # its shrinks are done: growing keeps the sum within the limit
                self._write(w)
        for w in plan.delete:
            try:
                self.kube.delete("ResourceQuota", w.namespace, QUOTA_NAME, w.uid or None)
            except ApiException as e:
                log.warning("ResourceQuota %s/%s not deleted: %s", w.namespace, QUOTA_NAME, api_message(e))

    def _write(self, w: QuotaWrite) -> bool:
        try:
            if w.create:
                self.kube.create(w.body)
            else:
                self.kube.merge_patch("ResourceQuota", w.namespace, QUOTA_NAME, w.body)
            return True
        except ApiException as e:  # 409: a pod was admitted since the quota was read; next pass
            level = logging.INFO if e.status == 409 else logging.WARNING
            log.log(level, "ResourceQuota %s/%s not written: %s", w.namespace, QUOTA_NAME, api_message(e))
            return False
