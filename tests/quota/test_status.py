"""A Tenant's status from the arbiter's plan (pure): usage, holders, conditions; written only on change."""

from __future__ import annotations

from foresail.api.tenant import Tenant
from foresail.quota.arbiter import Grant, Plan, TenantUsage
from foresail.quota.snapshot import Arbitration, Membership, Ownership
from foresail.quota.status import tenant_status, tenant_status_patch

NOW = 1_800_000_000.0


def arbitration(conflicts: dict[str, list[str]] | None = None) -> Arbitration:
    usage = (
        TenantUsage("a", "nvidia.com/gpu", None, guaranteed=4, limit=8, used=6, granted=6, borrowed=2, lent=0, pending=1),
        TenantUsage("a", "nvidia.com/gpu", "H100", guaranteed=2, limit=2, used=1, granted=1, borrowed=0, lent=1, pending=0),
        TenantUsage("b", "nvidia.com/gpu", None, guaranteed=1, limit=1, used=0, granted=0, borrowed=0, lent=0, pending=0),
    )
    grants = {
        ("InferenceService", "team-a", "web"): Grant(units=6, desired=7, held=6, reason="limit"),
        ("InferenceService", "team-a", "idle"): Grant(units=0, desired=0, held=0, reason=""),
        ("InferenceService", "team-b", "x"): Grant(units=1, desired=1, held=1, reason=""),
    }
    members = Membership({("team-a", "web"): "a", ("team-a", "idle"): "a", ("team-b", "x"): "b"}, {})
    own = Ownership({"team-a": "a", "team-a2": "a", "team-b": "b"}, conflicts or {})
    t = Tenant.model_validate({"metadata": {"name": "a"}, "spec": {"namespaces": ["team-a"]}})
    return Arbitration(Plan(grants, (), usage, {}), members, own, (t,))


def test_usage_totals_namespaces_and_holders() -> None:
    st = tenant_status("a", arbitration())
    assert (st.guaranteed, st.used, st.borrowed, st.lent, st.pending) == (6, 7, 2, 1, 1)
    assert [u.product for u in st.usage] == [None, "H100"]
    assert st.namespaces == ["team-a", "team-a2"]
    assert st.holders == ["team-a/InferenceService/web: 6 held, 6 granted of 7"]


def test_conditions_and_no_patch_when_nothing_changed() -> None:
    first = tenant_status_patch("a", 3, arbitration(), {}, NOW)
    assert first is not None
    assert {c["type"]: (c["status"], c["reason"]) for c in first["conditions"]} == {
        "NamespaceConflict": ("False", "NoConflict"),
        "Ready": ("True", "Arbitrated"),
    }
    assert tenant_status_patch("a", 3, arbitration(), first, NOW + 60) is None


def test_a_namespace_owned_elsewhere_is_a_condition() -> None:
    arb = arbitration({"a": ["namespace 'shared' is owned by tenant 'z'"]})
    patch = tenant_status_patch("a", 1, arb, {}, NOW)
    assert patch is not None
    c = next(c for c in patch["conditions"] if c["type"] == "NamespaceConflict")
    assert (c["status"], c["reason"], c["message"]) == ("True", "NamespaceOwnedElsewhere", "namespace 'shared' is owned by tenant 'z'")
