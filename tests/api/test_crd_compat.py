"""The generated CRDs can replace the released ones (tests/fixtures/released/foresail: the chart as of 8458905)
without breaking stored objects; and the check itself catches each kind of breaking change."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from foresail.api.crd import crds
from foresail.api.crd_compat import incompatibilities

REPO = Path(__file__).resolve().parents[2]
RELEASED = REPO / "tests/fixtures/released/foresail/crds"


def _released() -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(RELEASED.glob("*.yaml"))}


def test_the_fixture_holds_the_released_crds() -> None:
    assert set(_released()) == {
        "foresail.dev_evaljobs.yaml", "foresail.dev_inferenceservices.yaml", "foresail.dev_scalingpolicies.yaml", "foresail.dev_tenants.yaml",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(_released()))
def test_generated_crds_are_compatible_with_the_released_ones(name: str) -> None:
    current = crds()
    assert name in current, f"{name} was released and is no longer generated"
    assert incompatibilities(_released()[name], current[name]) == []


def test_the_current_schema_has_fields_the_released_one_lacks() -> None:
    """The other way round is not compatible (new fields): the check sees fields, not only kinds."""
    old, new = _released()["foresail.dev_inferenceservices.yaml"], crds()["foresail.dev_inferenceservices.yaml"]
    assert "inferenceservices.foresail.dev v1alpha1: .spec.rollout: removed" in incompatibilities(new, old)


def _spec(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def _scaling(crd: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = _spec(crd)["properties"]["scaling"]["properties"]
    return props


def _drop_field(c: dict[str, Any]) -> None:
    del _scaling(c)["minReplicas"]


def _require(c: dict[str, Any]) -> None:
    _spec(c).setdefault("required", []).append("tenant")


def _retype(c: dict[str, Any]) -> None:
    _scaling(c)["minReplicas"]["type"] = "string"


def _narrow_enum(c: dict[str, Any]) -> None:
    _spec(c)["properties"]["priority"]["enum"].remove("batch")


def _add_enum(c: dict[str, Any]) -> None:
    _spec(c)["properties"]["tenant"]["enum"] = ["team-a"]


def _drop_version(c: dict[str, Any]) -> None:
    c["spec"]["versions"][0]["name"] = "v1beta1"


def _move_storage(c: dict[str, Any]) -> None:
    v2 = copy.deepcopy(c["spec"]["versions"][0]) | {"name": "v1beta1", "storage": True}
    c["spec"]["versions"][0]["storage"] = False
    c["spec"]["versions"].append(v2)


def _unserve(c: dict[str, Any]) -> None:
    c["spec"]["versions"][0]["served"] = False


def _prune_free_form(c: dict[str, Any]) -> None:
    _spec(c)["properties"]["triton"]["properties"]["podTemplate"]["properties"]["spec"]["properties"]["affinity"].pop(
        "x-kubernetes-preserve-unknown-fields"
    )


BREAKING: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("a removed field", _drop_field, ".spec.scaling.minReplicas: removed"),
    ("a newly required field", _require, ".spec.tenant: newly required"),
    ("a changed type", _retype, ".spec.scaling.minReplicas: type changed from integer to string"),
    ("an enum value removed", _narrow_enum, ".spec.priority: enum values removed (batch)"),
    ("an enum on a free field", _add_enum, ".spec.tenant: enum added (team-a)"),
    ("a removed version", _drop_version, "version v1alpha1 removed"),
    ("the storage version moved", _move_storage, "storage version changed from v1alpha1 to v1beta1"),
    ("a version no longer served", _unserve, "version v1alpha1 no longer served"),
    ("unknown fields pruned", _prune_free_form, ".spec.triton.podTemplate.spec.affinity: no longer keeps unknown fields (they would be pruned)"),
]


@pytest.mark.parametrize(("case", "change", "expected"), BREAKING, ids=[b[0] for b in BREAKING])
def test_each_breaking_change_is_named(case: str, change: Callable[[dict[str, Any]], None], expected: str) -> None:
    old = crds()["foresail.dev_inferenceservices.yaml"]
    new = copy.deepcopy(old)
    change(new)
    found = incompatibilities(old, new)
    assert any(line.endswith(expected) for line in found), (case, found)


def test_compatible_changes_pass() -> None:
    """A new optional field, a new enum value, a new version beside the storage one, a new required field
    inside a new object, looser bounds: nothing stored breaks."""
    old = crds()["foresail.dev_inferenceservices.yaml"]
    new = copy.deepcopy(old)
    spec = _spec(new)
    spec["properties"]["extra"] = {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}
    spec["properties"]["priority"]["enum"].append("best-effort")
    spec["properties"]["scaling"]["properties"]["minReplicas"].pop("maximum")
    new["spec"]["versions"].append(copy.deepcopy(new["spec"]["versions"][0]) | {"name": "v1beta1", "storage": False})
    assert incompatibilities(old, new) == []
