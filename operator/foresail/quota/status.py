"""A Tenant's status from the arbiter's plan (pure; ``now`` is an argument)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from foresail.api.conditions import Condition, set_condition
from foresail.api.reasons import ConditionType, Reason
from foresail.api.tenant import TenantStatus, TenantUsage
from foresail.quota.snapshot import Arbitration

__all__ = ["tenant_status", "tenant_status_patch"]

MAX_HOLDERS = 100


def tenant_status(name: str, arb: Arbitration) -> TenantStatus:
    """Per resource/product usage rows, their totals, the namespaces owned and who holds GPUs."""
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
        for u in arb.plan.usage
        if u.tenant == name
    ]
    holders = [
        f"{ns}/{kind}/{wname}: {g.held} held, {g.units} granted of {g.desired}"
        for (kind, ns, wname), g in sorted(arb.plan.grants.items())
        if arb.membership.tenant_of.get((ns, wname)) == name and g.held > 0
    ]
    return TenantStatus(
        guaranteed=sum(u.guaranteed for u in usage),
        used=sum(u.used for u in usage),
        borrowed=sum(u.borrowed for u in usage),
        lent=sum(u.lent for u in usage),
        pending=sum(u.pending for u in usage),
        namespaces=arb.ownership.owned_by(name),
        usage=usage,
        holders=holders[:MAX_HOLDERS],
    )


def tenant_status_patch(name: str, generation: int, arb: Arbitration, current: dict[str, Any], now: float) -> dict[str, Any] | None:
    """The Tenant's new status, or None when ``current`` (its status now) already says all of it."""
    t = datetime.fromtimestamp(now, UTC)
    conflicts = arb.ownership.conflicts.get(name, [])
    conds = [Condition.model_validate(c) for c in current.get("conditions") or []]
    conds = set_condition(
        conds,
        ConditionType.NAMESPACE_CONFLICT,
        bool(conflicts),
        Reason.NAMESPACE_OWNED_ELSEWHERE if conflicts else Reason.NO_CONFLICT,
        "; ".join(conflicts)[:1000] or "every namespace it claims is its own",
        generation,
        t,
    )
    conds = set_condition(conds, ConditionType.READY, True, Reason.ARBITRATED, "quotas are enforced", generation, t)
    new = {
        **tenant_status(name, arb).model_dump(by_alias=True, exclude_none=True),
        "conditions": [c.model_dump(by_alias=True, mode="json") for c in conds],
    }
    return new if any(current.get(k) != v for k, v in new.items()) else None
