"""The rollout's HTTPRoute and per-revision Services (pure dicts): weights, selectors, parents, ownership, the
FORESAIL_GATEWAY syntax; no gateway runs in the testbed, so the rendered objects are what is tested."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import LABEL_ISVC, LABEL_REVISION
from foresail.api.rollout import RolloutPhase, RolloutStatus, Slot
from foresail.render.httproute import GatewayRef, Role, render_httproute, render_revision_service, split_children
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


def _with_rollout(status: RolloutStatus | None) -> InferenceService:
    isvc = IsvcBuilder().build()
    return isvc.model_copy(update={"status": isvc.status.model_copy(update={"rollout": status})})


def _progressing(percent: int, phase: RolloutPhase = RolloutPhase.PROGRESSING) -> RolloutStatus:
    return RolloutStatus(stable_revision="old", canary_revision="new", canary_percent=percent, phase=phase)


def _pod(rev: str, ready: bool = True) -> dict[str, Any]:
    cond = {"type": "Ready", "status": "True" if ready else "False"}
    return {"metadata": {"labels": {LABEL_ISVC: "resnet", LABEL_REVISION: rev}}, "status": {"phase": "Running", "conditions": [cond]}}


SERVING = [_pod("old"), _pod("new")]


# (name, status.rollout, the service's pods, the stable Service's revision, the canary Service's (None: absent,
# deleted), route weights)
SPLITS: list[tuple[str, RolloutStatus | None, list[dict[str, Any]], str | None, str | None, list[tuple[str, int]]]] = [
    ("never rolled out: every pod behind stable", None, [_pod("old")], None, None, [("resnet-stable", 100)]),
    ("stable, no canary", RolloutStatus(stable_revision="old"), [_pod("old")], None, None, [("resnet-stable", 100)]),
    ("first step at 10%", _progressing(10), SERVING, "old", "new", [("resnet-stable", 90), ("resnet-canary", 10)]),
    ("second step at 50%", _progressing(50), SERVING, "old", "new", [("resnet-stable", 50), ("resnet-canary", 50)]),
    ("a step of 100%", _progressing(100), SERVING, "old", "new", [("resnet-stable", 0), ("resnet-canary", 100)]),
    ("a canary without a ready replica weighs 0", _progressing(10), [_pod("old"), _pod("new", ready=False)], "old", "new",
     [("resnet-stable", 100), ("resnet-canary", 0)]),
    ("a canary without replicas yet weighs 0", _progressing(10), [_pod("old")], "old", "new",
     [("resnet-stable", 100), ("resnet-canary", 0)]),
    ("promoted: stable only, old replicas draining inside it",
     RolloutStatus(stable_revision="new", stable_slot=Slot.B, phase=RolloutPhase.PROMOTED), SERVING, None, None,
     [("resnet-stable", 100)]),
    ("rolled back", RolloutStatus(stable_revision="old", failed_revision="new", phase=RolloutPhase.ROLLED_BACK), SERVING,
     None, None, [("resnet-stable", 100)]),
    ("a canary in a status that is not progressing is no split", _progressing(30, RolloutPhase.ABORTED), SERVING, None,
     None, [("resnet-stable", 100)]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "rollout", "pods", "stable_rev", "canary_rev", "weights"), SPLITS, ids=[c[0] for c in SPLITS])
def test_split_children(
    name: str,
    rollout: RolloutStatus | None,
    pods: list[dict[str, Any]],
    stable_rev: str | None,
    canary_rev: str | None,
    weights: list[tuple[str, int]],
) -> None:
    isvc = _with_rollout(rollout)
    children, stale = split_children(isvc, GatewayRef("inference"), pods)
    services = {c["metadata"]["name"]: c for c in children if c["kind"] == "Service"}
    route = next(c for c in children if c["kind"] == "HTTPRoute")
    assert children[-1] is route, f"{name}: the Services come first (the route's backends)"
    assert services["resnet-stable"]["spec"]["selector"] == (
        {LABEL_ISVC: "resnet", LABEL_REVISION: stable_rev} if stable_rev else {LABEL_ISVC: "resnet"}
    ), name
    if canary_rev is None:
        assert "resnet-canary" not in services and stale == ["resnet-canary"], name
    else:
        assert services["resnet-canary"]["spec"]["selector"] == {LABEL_ISVC: "resnet", LABEL_REVISION: canary_rev}, name
        assert stale == [], name
    assert [(r["name"], r["weight"]) for r in route["spec"]["rules"][0]["backendRefs"]] == weights, name


def test_revision_services_are_children_like_the_others() -> None:
    isvc = IsvcBuilder().build()
    svc = render_revision_service(isvc, Role.CANARY, "abc")
    md = svc["metadata"]
    assert (md["name"], md["namespace"]) == ("resnet-canary", "team-a")
    assert md["labels"]["app.kubernetes.io/managed-by"] == "foresail" and md["labels"][LABEL_ISVC] == "resnet"
    assert md["ownerReferences"][0]["uid"] == isvc.metadata["uid"] and md["ownerReferences"][0]["controller"] is True
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [("http", 8000, "http"), ("grpc", 8001, "grpc")]


GATEWAYS: list[tuple[str, str, GatewayRef | None]] = [
    ("empty: no route", "", None),
    ("a name", "inference", GatewayRef("inference")),
    ("in another namespace", "gateways/shared", GatewayRef("shared", "gateways")),
    ("one listener", "gateways/shared:http", GatewayRef("shared", "gateways", "http")),
    ("a listener, same namespace", "shared.example:https-1", GatewayRef("shared.example", None, "https-1")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "want"), GATEWAYS, ids=[c[0] for c in GATEWAYS])
def test_gateway_setting(name: str, text: str, want: GatewayRef | None) -> None:
    got = GatewayRef.parse(text)
    assert got == want, name
    assert got is None or str(got) == text


@pytest.mark.parametrize("text", ["Gateway", "a/b/c", "ns/", "/name", "name:", "name:Http", "-x"])
def test_gateway_setting_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="namespace/"):
        GatewayRef.parse(text)
