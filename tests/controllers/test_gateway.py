"""Traffic split through a Gateway (FORESAIL_GATEWAY): the HTTPRoute CRD's discovery (asked once per TTL), the
split watch, and the reconciler applying the per-revision Services and the weighted route."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from foresail.api.rollout import RolloutPhase, RolloutStatus, Slot
from foresail.clients.kube import ApiException
from foresail.controllers import inferenceservice
from foresail.controllers.gateway import HTTPRouteDiscovery, SplitWatch
from foresail.controllers.inferenceservice import reconcile
from foresail.controllers.settings import OperatorSettings
from tests.controllers.objects import isvc
from tests.fakes.apiserver import FakeApiServer

NOW = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "models", "namespace": "team-a"}, "data": {}}


class Discovery:
    """A ``Kube`` answering only the discovery document of gateway.networking.k8s.io/v1."""

    def __init__(self, answer: dict[str, Any] | int) -> None:
        self.answer = answer
        self.asked = 0

    def request(self, method: str, path: str) -> Any:
        assert (method, path) == ("GET", "/apis/gateway.networking.k8s.io/v1")
        self.asked += 1
        if isinstance(self.answer, int):
            raise ApiException(status=self.answer)
        return self.answer


SERVED = {"resources": [{"name": "gateways"}, {"name": "httproutes"}, {"name": "httproutes/status"}]}
# (name, the apiserver's answer, served)
DISCOVERY: list[tuple[str, dict[str, Any] | int, bool]] = [
    ("served", SERVED, True),
    ("the group without httproutes", {"resources": [{"name": "gateways"}]}, False),
    ("the group not served", 404, False),
    ("the CRD being established", 503, False),
]  # fmt: skip


@pytest.mark.parametrize(("name", "answer", "served"), DISCOVERY, ids=[c[0] for c in DISCOVERY])
def test_discovery(name: str, answer: dict[str, Any] | int, served: bool) -> None:
    assert HTTPRouteDiscovery().served(Discovery(answer)) is served, name  # type: ignore[arg-type]


def test_discovery_is_asked_once_per_ttl_and_again_when_forgotten() -> None:
    now = [0.0]
    d = HTTPRouteDiscovery(present_ttl_s=300, absent_ttl_s=30, clock=lambda: now[0])
    kube = Discovery(404)
    assert not d.served(kube)  # type: ignore[arg-type]
    now[0] = 29
    assert not d.served(kube) and kube.asked == 1  # type: ignore[arg-type]
    kube.answer = SERVED  # the CRD installed: seen after the absent TTL
    now[0] = 31
    assert d.served(kube) and kube.asked == 2  # type: ignore[arg-type]
    now[0] = 300
    assert d.served(kube) and kube.asked == 2  # type: ignore[arg-type]
    d.forget()
    kube.answer = 404
    assert not d.served(kube) and kube.asked == 3  # type: ignore[arg-type]


def test_discovery_errors_other_than_absent_are_raised() -> None:
    with pytest.raises(ApiException):
        HTTPRouteDiscovery().served(Discovery(403))  # type: ignore[arg-type]


def _body(rollout: dict[str, Any] | None, name: str = "resnet") -> dict[str, Any]:
    return {"metadata": {"namespace": "team-a", "name": name}, "status": {"rollout": rollout} if rollout else {}}


def test_split_watch_marks_a_service_whose_split_changed() -> None:
    marked: list[tuple[str, str]] = []
    watch = SplitWatch(marked.append)
    step0 = {"phase": "Progressing", "stableRevision": "a", "canaryRevision": "b", "canaryPercent": 10, "message": "x"}
    watch("ADDED", _body(None))
    watch("MODIFIED", _body(None))
    assert marked == [], "first sight and no change: nothing"
    watch("MODIFIED", _body(step0))
    watch("MODIFIED", _body({**step0, "message": "y", "gates": []}))
    assert marked == [("team-a", "resnet")], "a canary started: marked once; a new message is no new split"
    watch("MODIFIED", _body({**step0, "canaryPercent": 50}))
    watch("MODIFIED", _body({"phase": "Promoted", "stableRevision": "b", "canaryPercent": 0}))
    assert len(marked) == 3
    watch("DELETED", _body(None))
    watch("ADDED", _body(step0))
    assert len(marked) == 3, "a service of the same name again: first sight"


def _reconcile(api: FakeApiServer, rollout: RolloutStatus | None = None) -> dict[str, Any]:
    body = api.get("InferenceService", "team-a", "resnet")
    assert body is not None
    if rollout is not None:
        body["status"] = {**(body.get("status") or {}), "rollout": rollout.model_dump(by_alias=True, mode="json")}
        api.put(body)
    reconcile(api.kube(), body, NOW)
    out = api.get("InferenceService", "team-a", "resnet")
    assert out is not None
    return out


def _weights(api: FakeApiServer) -> list[tuple[str, int]]:
    route = api.get("HTTPRoute", "team-a", "resnet")
    assert route is not None
    return [(r["name"], r["weight"]) for r in route["spec"]["rules"][0]["backendRefs"]]


def _ready_pod(rev: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"resnet-{rev}",
            "namespace": "team-a",
            "labels": {"foresail.dev/inferenceservice": "resnet", "foresail.dev/revision": rev},
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inferenceservice, "settings", lambda: OperatorSettings(gateway="gateways/inference"))
    monkeypatch.setattr(inferenceservice.HTTPROUTES, "served", lambda _kube: True)


@pytest.mark.usefixtures("gateway")
def test_with_a_gateway_the_route_follows_status_rollout(api: FakeApiServer) -> None:
    api.put(isvc(rollout={"steps": [{"percent": 10}]}), CONFIGMAP)
    st = _reconcile(api)["status"]
    assert st["trafficSplit"] == "GatewayWeights"
    applied = [
        (r.body["kind"], r.body["metadata"]["name"])
        for r in api.writes()
        if r.content_type == "application/apply-patch+yaml" and r.sub == ""
    ]
    assert applied[-2:] == [("Service", "resnet-stable"), ("HTTPRoute", "resnet")], "the route after its backend"
    assert _weights(api) == [("resnet-stable", 100)]
    route = api.get("HTTPRoute", "team-a", "resnet")
    assert route is not None and route["spec"]["parentRefs"][0] == {
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference", "namespace": "gateways",
    }  # fmt: skip

    running = RolloutStatus(stable_revision="r0", canary_revision="r1", canary_percent=10, phase=RolloutPhase.PROGRESSING)
    _reconcile(api, running)
    assert _weights(api) == [("resnet-stable", 100), ("resnet-canary", 0)], "no canary replica ready yet"
    api.put(_ready_pod("r1"))
    _reconcile(api)
    assert _weights(api) == [("resnet-stable", 90), ("resnet-canary", 10)]
    canary = api.get("Service", "team-a", "resnet-canary")
    assert canary is not None and canary["spec"]["selector"]["foresail.dev/revision"] == "r1"

    promoted = RolloutStatus(stable_revision="r1", stable_slot=Slot.B, phase=RolloutPhase.PROMOTED)
    _reconcile(api, promoted)
    assert _weights(api) == [("resnet-stable", 100)]
    assert api.get("Service", "team-a", "resnet-canary") is None, "no canary: its Service deleted"
    assert "Deleted" in [e["reason"] for e in api.events()]


def test_without_a_gateway_nothing_of_the_gateway_api(api: FakeApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inferenceservice, "settings", lambda: OperatorSettings())
    api.put(isvc(), CONFIGMAP)
    assert _reconcile(api)["status"]["trafficSplit"] == "ReplicaShare"
    assert {r.body["metadata"]["name"] for r in api.writes() if r.content_type == "application/apply-patch+yaml"} == {"resnet"}
