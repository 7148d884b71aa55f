"""The ResourceQuota backstop (pure): the object, and which to apply or delete."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.api.tenant import Tenant
from foresail.render.tenant_quota import LABEL_TENANT, QUOTA_NAME, quota_changes, render_resource_quota

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


def _names(objs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(o["metadata"]["namespace"], o["spec"]["hard"]["requests.nvidia.com/gpu"]) for o in objs]


@pytest.mark.parametrize(
    ("name", "desired", "existing", "apply", "delete"),
    [
        ("new", [render_resource_quota(A, "team-a", 6)], [], [("team-a", "6")], []),
        ("unchanged", [render_resource_quota(A, "team-a", 6)], [render_resource_quota(A, "team-a", 6)], [], []),
        ("changed limit", [render_resource_quota(A, "team-a", 4)], [render_resource_quota(A, "team-a", 6)], [("team-a", "4")], []),
        ("namespace no longer owned", [], [render_resource_quota(A, "old", 6)], [], [("old", "6")]),
        (
            "another tenant took the namespace: updated in place, never deleted",
            [render_resource_quota(B, "team-a", 6)],
            [render_resource_quota(A, "team-a", 6)],
            [("team-a", "6")],
            [],
        ),
    ],
)
def test_quota_changes(
    name: str, desired: list[dict[str, Any]], existing: list[dict[str, Any]], apply: list[Any], delete: list[Any]
) -> None:
    to_apply, to_delete = quota_changes(desired, existing)
    assert (_names(to_apply), _names(to_delete)) == (apply, delete), name
