"""The rollout's HTTPRoute (pure dict): weights, parents, ownership; no gateway runs in the testbed, so the
rendered object is what is tested."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.api.objects import LABEL_ISVC
from foresail.render.httproute import GatewayRef, render_httproute
from tests.builders import IsvcBuilder

CASES: list[tuple[str, str | None, int, list[tuple[str, int]]]] = [
    ("first step: 90/10", "resnet-b", 10, [("resnet", 90), ("resnet-b", 10)]),
    ("half", "resnet-b", 50, [("resnet", 50), ("resnet-b", 50)]),
    ("rolled back: the canary listed at 0", "resnet-b", 0, [("resnet", 100), ("resnet-b", 0)]),
    ("promoting: all to the canary", "resnet-b", 100, [("resnet", 0), ("resnet-b", 100)]),
    ("no canary: the stable Service alone", None, 0, [("resnet", 100)]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "canary", "weight", "want"), CASES, ids=[c[0] for c in CASES])
def test_weights(name: str, canary: str | None, weight: int, want: list[tuple[str, int]]) -> None:
    route = render_httproute(IsvcBuilder().build(), "resnet", canary, weight, GatewayRef("inference"))
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in refs] == want, name
    assert {(r["kind"], r["group"], r["port"]) for r in refs} == {("Service", "", 8000)}
    assert sum(r["weight"] for r in refs) == 100


def test_route_shape() -> None:
    isvc = IsvcBuilder().build()
    route: dict[str, Any] = render_httproute(isvc, "resnet", "resnet-b", 10, GatewayRef("inference"))
    assert (route["apiVersion"], route["kind"]) == ("gateway.networking.k8s.io/v1", "HTTPRoute")
    md = route["metadata"]
    assert (md["name"], md["namespace"], md["labels"][LABEL_ISVC]) == ("resnet", "team-a", "resnet")
    assert md["ownerReferences"][0]["uid"] == isvc.metadata["uid"] and md["ownerReferences"][0]["controller"] is True
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference"}]
    assert route["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]


def test_parent_in_another_namespace_on_one_listener() -> None:
    route = render_httproute(IsvcBuilder().build(), "resnet", "resnet-b", 10, GatewayRef("shared", "gateways", "http"))
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shared", "namespace": "gateways", "sectionName": "http"}
    ]


@pytest.mark.parametrize("weight", [-1, 101], ids=["negative", "over 100"])
def test_weight_out_of_range(weight: int) -> None:
    with pytest.raises(ValueError, match="canary_weight"):
        render_httproute(IsvcBuilder().build(), "resnet", "resnet-b", weight, GatewayRef("inference"))
