"""Tenants, once per autoscaler tick: snapshot -> ``quota.arbitrate`` -> grants for the autoscaler,
Tenant status, and a ResourceQuota backstop in every namespace a tenant owns.

The snapshot comes from lists the autoscaler already made (services, pods, nodes, tenants,
namespaces): no extra API calls per service. Writes happen only when something changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from foresail.api.conditions import Condition, set_condition
from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import parse_rfc3339, pod_is_live
from foresail.api.tenant import Tenant, TenantStatus, TenantUsage
from foresail.clients.kube import ApiException, Kube
from foresail.quota.arbiter import Grant, Plan, Snapshot, Workload, arbitrate
from foresail.quota.snapshot import Ownership, gpu_supply, namespace_owners, quota_hard, tenant_quotas
from foresail.render.triton import LABEL_ISVC

__all__ = ["LABEL_TENANT", "QUOTA_NAME", "Arbitration", "TenantArbiter"]

log = logging.getLogger("foresail.tenants")

QUOTA_NAME = "foresail-tenant-gpus"
LABEL_TENANT = "foresail.dev/tenant"
GPU = "nvidia.com/gpu"
ISVC_KIND = "InferenceService"


@dataclass
class Arbitration:
    plan: Plan
    tenant_of: dict[tuple[str, str], str]  # (namespace, service) -> tenant, for arbitrated services
    missing: dict[tuple[str, str], str]  # (namespace, service) -> a tenant that does not exist
    ownership: Ownership
    tenants: list[Tenant]
    bodies: dict[str, dict[str, Any]]  # tenant name -> the listed object

    def grant(self, ns: str, name: str) -> Grant | None:
        return self.plan.grants.get((ISVC_KIND, ns, name))


@dataclass
class TenantArbiter:
    kube: Kube
    min_runtime_s: float = 300.0

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
                log.warning("tenant %s is invalid, ignored: %s", body["metadata"].get("name"), e)
        names = {str(t.metadata.get("name")) for t in tenants}
        ns_labels = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in namespace_bodies}
        own = namespace_owners(tenants, ns_labels)
        pods_by: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for p in pods:
            svc = (p["metadata"].get("labels") or {}).get(LABEL_ISVC)
            if svc:
                pods_by.setdefault((p["metadata"]["namespace"], svc), []).append(p)
        tenant_of: dict[tuple[str, str], str] = {}
        missing: dict[tuple[str, str], str] = {}
        workloads = []
        for isvc in isvcs:
            key = (isvc.namespace, isvc.name)
            t = isvc.spec.tenant or own.owner.get(isvc.namespace)
            if t is None:
                continue  # no tenant: not arbitrated (its GPUs count as used by others)
            if t not in names:
                missing[key] = t
                continue
            tenant_of[key] = t
            mine = [p for p in pods_by.get(key, []) if pod_is_live(p) and (p.get("spec") or {}).get("nodeName")]
            young = [p for p in mine if (parse_rfc3339((p.get("status") or {}).get("startTime")) or now) > now - self.min_runtime_s]
            workloads.append(
                Workload(
                    kind=ISVC_KIND,
                    namespace=isvc.namespace,
                    name=isvc.name,
                    tenant=t,
                    priority=isvc.spec.priority.value,
                    gpus=isvc.spec.triton.gpus_per_replica,
                    desired=desired.get(key, 0),
                    held=len(mine),
                    created=parse_rfc3339(isvc.metadata.get("creationTimestamp")) or now,
                    protected=len(young),
                    resource=GPU,
                    product=isvc.spec.triton.gpu_product,
                )
            )

        def arbitrated(p: Mapping[str, Any]) -> bool:
            svc = (p["metadata"].get("labels") or {}).get(LABEL_ISVC)
            return svc is not None and (p["metadata"]["namespace"], svc) in tenant_of

        snap = Snapshot(tuple(tenant_quotas(t) for t in tenants), tuple(workloads), gpu_supply(nodes, pods, arbitrated, GPU), now)
        bodies = {str(b["metadata"]["name"]): b for b in tenant_bodies}
        return Arbitration(arbitrate(snap), tenant_of, missing, own, tenants, bodies)

    # ------------------------------------------------------------------ writes

    def write(self, arb: Arbitration, pods: list[dict[str, Any]], quotas: list[dict[str, Any]], now: float) -> None:
        """Tenant status and the ResourceQuota backstop; only what changed."""
        self._quotas(arb, pods, quotas)
        for t in arb.tenants:
            try:
                self._status(t, arb, now)
            except ApiException as e:
                log.warning("tenant %s: status not written: %s", t.metadata.get("name"), e.reason)

    def _quotas(self, arb: Arbitration, pods: list[dict[str, Any]], existing: list[dict[str, Any]]) -> None:
        want: dict[tuple[str, str], tuple[Tenant, int]] = {}
        for t in arb.tenants:
            name = str(t.metadata.get("name"))
            owned = sorted(ns for ns, owner in arb.ownership.owner.items() if owner == name)
            for ns, hard in quota_hard(t, owned, pods, GPU).items():
                want[(ns, name)] = (t, hard)
        have = {(q["metadata"]["namespace"], (q["metadata"].get("labels") or {}).get(LABEL_TENANT, "")): q for q in existing}
        for (ns, name), (t, hard) in want.items():
            cur = have.get((ns, name))
            if cur is not None and (cur.get("spec") or {}).get("hard", {}).get(f"requests.{GPU}") == str(hard):
                continue
            body = {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {
                    "name": QUOTA_NAME,
                    "namespace": ns,
                    "labels": {"app.kubernetes.io/managed-by": "foresail", LABEL_TENANT: name},
                    "ownerReferences": [
                        {
                            "apiVersion": "foresail.dev/v1alpha1",
                            "kind": "Tenant",
                            "name": name,
                            "uid": t.metadata.get("uid", ""),
                            "blockOwnerDeletion": False,
                        }
                    ],
                },
                "spec": {"hard": {f"requests.{GPU}": str(hard)}},
            }
            try:
                self.kube.apply(body)
            except ApiException as e:  # e.g. the namespace is being deleted
                log.warning("ResourceQuota %s/%s not applied: %s", ns, QUOTA_NAME, e.reason)
        for (ns, name), q in have.items():
            if (ns, name) not in want:
                try:
                    self.kube.delete("ResourceQuota", ns, q["metadata"]["name"], q["metadata"].get("uid"))
                except ApiException as e:
                    log.warning("ResourceQuota %s/%s not deleted: %s", ns, QUOTA_NAME, e.reason)

    def _status(self, t: Tenant, arb: Arbitration, now: float) -> None:
        name = str(t.metadata.get("name"))
        rows = [u for u in arb.plan.usage if u.tenant == name]
        usage = [
            TenantUsage(
                resource=u.resource,
                product=u.product,
                guaranteed=u.guaranteed,
                limit=u.limit,
                granted=u.granted,
                used=u.used,
                borrowed=u.borrowed,
                lent=u.lent,
                pending=u.pending,
            )
            for u in rows
        ]
        holders = []
        for (kind, ns, wname), g in sorted(arb.plan.grants.items()):
            if arb.tenant_of.get((ns, wname)) == name and g.held > 0:
                holders.append(f"{ns}/{kind}/{wname}: {g.held} held, {g.units} granted of {g.desired}")
        status = TenantStatus(
            guaranteed=sum(u.guaranteed for u in usage),
            used=sum(u.used for u in usage),
            borrowed=sum(u.borrowed for u in usage),
            lent=sum(u.lent for u in usage),
            pending=sum(u.pending for u in usage),
            namespaces=sorted(ns for ns, owner in arb.ownership.owner.items() if owner == name),
            usage=usage,
            holders=holders[:100],
        )
        gen = int(t.metadata.get("generation", 0) or 0)
        stamp = datetime.fromtimestamp(now, UTC)
        conflicts = arb.ownership.conflicts.get(name, [])

        def build(fresh: dict[str, Any]) -> dict[str, Any] | None:
            conds = [Condition.model_validate(c) for c in (fresh.get("status") or {}).get("conditions") or []]
            conds = set_condition(
                conds,
                "NamespaceConflict",
                bool(conflicts),
                "NamespaceOwnedElsewhere" if conflicts else "NoConflict",
                "; ".join(conflicts)[:1000] or "every namespace it claims is its own",
                gen,
                stamp,
            )
            conds = set_condition(conds, "Ready", True, "Arbitrated", "quotas are enforced", gen, stamp)
            new = {
                **status.model_dump(by_alias=True, exclude_none=True),
                "conditions": [c.model_dump(by_alias=True) for c in conds],
            }
            old = fresh.get("status") or {}
            return new if any(old.get(k) != v for k, v in new.items()) else None

        if build(arb.bodies.get(name, {})) is not None:  # the listed object is fresh enough to skip a no-op
            self.kube.update_status("Tenant", None, name, build)
