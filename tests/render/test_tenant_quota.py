"""The ResourceQuota backstop (pure): the object, and the order of the writes that keep the sum within the limit."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foresail.api.tenant import Tenant
from foresail.quota.backstop import split_limit
from foresail.render.tenant_quota import LABEL_TENANT, QUOTA_NAME, BackstopPlan, plan_backstop, quota_used, render_resource_quota

A = Tenant.model_validate({"metadata": {"name": "a", "uid": "u-a"}, "spec": {"namespaces": ["team-a"]}})
B = Tenant.model_validate({"metadata": {"name": "b", "uid": "u-b"}, "spec": {"namespaces": ["team-b"]}})


def test_the_object() -> None:
    q = render_resource_quota(A, "team-a", 6)
    assert q["metadata"]["name"] == QUOTA_NAME
    assert q["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "foresail", LABEL_TENANT: "a"}
    assert q["metadata"]["ownerReferences"] == [
        {"apiVersion": "foresail.dev/v1alpha1", "kind": "Tenant", "name": "a", "uid": "u-a", "blockOwnerDeletion": False}
    ]
    assert q["spec"] == {"hard": {"requests.nvidia.com/gpu": "6"}}


def live(tenant: Tenant, ns: str, hard: int, used: int = 0, rv: str = "7") -> dict[str, Any]:
    """A quota as listed: with its resourceVersion, uid and the quota controller's count."""
    q = render_resource_quota(tenant, ns, hard)
    q["metadata"].update(resourceVersion=rv, uid=f"uid-{ns}")
    q["status"] = {"hard": q["spec"]["hard"], "used": {"requests.nvidia.com/gpu": str(used)}}
    return q


def _summary(plan: BackstopPlan) -> tuple[list[Any], list[Any], list[str]]:
    def row(w: Any) -> tuple[str, str, str]:
        verb = "create" if w.create else "update"
        return (w.namespace, verb, w.body["spec"]["hard"]["requests.nvidia.com/gpu"])

    return [row(w) for w in plan.shrink], [row(w) for w in plan.grow], [w.namespace for w in plan.delete]


@pytest.mark.parametrize(
    ("name", "desired", "existing", "shrink", "grow", "delete"),
    [
        ("new: created at 0 first, then grown", {"team-a": (A, 6)}, [], [("team-a", "create", "0")], [("team-a", "update", "6")], []),
        ("new with nothing to hold: created at 0", {"team-a": (A, 0)}, [], [("team-a", "create", "0")], [], []),
        ("unchanged: nothing", {"team-a": (A, 6)}, [live(A, "team-a", 6)], [], [], []),
        ("smaller: a shrink", {"team-a": (A, 4)}, [live(A, "team-a", 6)], [("team-a", "update", "4")], [], []),
        ("larger: a grow", {"team-a": (A, 8)}, [live(A, "team-a", 6)], [], [("team-a", "update", "8")], []),
        ("namespace no longer owned", {}, [live(A, "old", 6)], [], [], ["old"]),
        (
            "another tenant took the namespace at the same size: updated in place, never deleted",
            {"team-a": (B, 6)},
            [live(A, "team-a", 6)],
            [],
            [("team-a", "update", "6")],
            [],
        ),
        (
            "one namespace gives to another: the shrink first",
            {"n1": (A, 2), "n2": (A, 6)},
            [live(A, "n1", 6), live(A, "n2", 2)],
            [("n1", "update", "2")],
            [("n2", "update", "6")],
            [],
        ),
    ],
)
def test_plan_backstop(
    name: str,
    desired: dict[str, tuple[Tenant, int]],
    existing: list[dict[str, Any]],
    shrink: list[Any],
    grow: list[Any],
    delete: list[str],
) -> None:
    assert _summary(plan_backstop(desired, existing)) == (shrink, grow, delete), name


def test_updates_carry_the_resource_version_they_were_read_at() -> None:
    plan = plan_backstop({"team-a": (B, 4), "new": (B, 2)}, [live(A, "team-a", 6, rv="42")])
    w, created = plan.shrink
    assert w.body["metadata"]["resourceVersion"] == "42"
    assert created.create and "resourceVersion" not in plan.grow[0].body["metadata"], "a quota just created: no version to hold"
    assert w.body["metadata"]["labels"][LABEL_TENANT] == "b" and w.tenant == "b"
    assert plan_backstop({}, [live(A, "gone", 1)]).delete[0].uid == "uid-gone"


def test_quota_used() -> None:
    assert quota_used(live(A, "a", 6, used=3)) == 3
    assert quota_used(render_resource_quota(A, "a", 6)) == 0, "not counted yet"


_ns = st.sampled_from(["n1", "n2", "n3", "n4"])


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(0, 40),
    before=st.dictionaries(_ns, st.integers(0, 40), max_size=4),
    used=st.dictionaries(_ns, st.integers(0, 40), max_size=4),
    needed=st.dictionaries(_ns, st.integers(0, 40), max_size=4),
    failing=st.sets(_ns),
)
def test_at_every_moment_of_the_writes_the_quotas_sum_within_the_limit(
    limit: int, before: dict[str, int], used: dict[str, int], needed: dict[str, int], failing: set[str]
) -> None:
    """From any earlier split within the limit, apply the plan one write at a time (some shrinks failing with a
    conflict, which stops the grows): the owned namespaces' quotas never sum past the limit, a namespace
    without a quota counting as unlimited until it gets one."""
    scale = max(1, sum(before.values()))
    old = {ns: h * limit // scale for ns, h in before.items()} if sum(before.values()) > limit else before
    owned = set(old) | set(used) | set(needed)
    existing = [live(A, ns, h) for ns, h in old.items()]
    want = {ns: (A, h) for ns, h in split_limit(limit, {ns: used.get(ns, 0) for ns in owned}, needed).items()}
    plan = plan_backstop(want, existing)
    state: dict[str, int | None] = {ns: old.get(ns) for ns in owned}

    def check() -> None:
        if all(v is not None for v in state.values()):
            assert sum(v for v in state.values() if v is not None) <= limit, state

    check()
    failed = False
    for w in plan.shrink:
        if w.namespace in failing and not w.create:
            failed = True
            continue
        state[w.namespace] = int(w.body["spec"]["hard"]["requests.nvidia.com/gpu"])
        check()
    for w in plan.grow:
        if not failed:
            state[w.namespace] = int(w.body["spec"]["hard"]["requests.nvidia.com/gpu"])
            check()
    if not failed:
        assert state == {ns: h for ns, (_, h) in want.items()}
