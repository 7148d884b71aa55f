"""The autoscaler's glue against a fake apiserver and a fake Prometheus: what one pass writes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from foresail.clients.prometheus import PromClient
from foresail.controllers.autoscaler import Autoscaler
from foresail.controllers.telemetry import REGISTRY
from tests.controllers.objects import NOW, deployment, isvc, namespace, node, pod, policy, tenant
from tests.fakes.apiserver import FakeApiServer
from tests.fakes.counters import steady
from tests.fakes.prometheus import answer, matrix


def signals(rps: float, svc: str = "resnet", p99: float = 90.0) -> httpx.MockTransport:
    """Prometheus' raw samples of the service's one replica serving ``rps`` for the last 75 s."""
    return answer(matrix({("team-a", svc, f"{svc}-0"): steady(NOW - 75, NOW - 1, rps, p99_ms=p99)}, model="resnet50"))


def service(**spec: Any) -> dict[str, Any]:
    base = {"scaling__capacityPerReplicaRps": 20, "scaling__maxReplicas": 8, "scaling__overrides": {"forecastEnabled": False}}
    return isvc("resnet", "team-a", **{**base, **spec})


async def one_pass(api: FakeApiServer, transport: httpx.MockTransport | None, now: float = NOW) -> Autoscaler:
    prom = PromClient("http://prom", transport=transport) if transport is not None else None
    a = Autoscaler(api.kube(), prom, loop_seconds=2)
    try:
        await a.run_once(now)
    finally:
        if prom is not None:
            await prom.close()
    return a


def conditions(api: FakeApiServer) -> dict[str, str]:
    obj = api.get("InferenceService", "team-a", "resnet")
    assert obj is not None
    return {c["type"]: f"{c['status']}/{c['reason']}" for c in obj["status"]["conditions"]}


async def test_scales_up_through_the_scale_subresource_with_an_event_and_status(api: FakeApiServer) -> None:
    api.put(service(), deployment(replicas=1), pod("resnet", "team-a", 0), node("n1"))
    await one_pass(api, signals(30.0))
    (scale,) = api.writes("Deployment", sub="scale")
    assert scale.query == {"fieldManager": "foresail-autoscaler", "force": "true"}
    assert scale.body["spec"]["replicas"] == 3  # 30 rps x the default headroom 1.5 (no history yet) at 20 rps per replica
    (event,) = api.events()
    assert event["reason"] == "ScaledUp" and event["message"].startswith("replicas 1 -> 3: BaseDemand: ")
    st = api.get("InferenceService", "team-a", "resnet")["status"]  # type: ignore[index]
    assert st["desiredReplicas"] == 3
    rec = st["recommendation"]
    assert (rec["reason"], rec["forecastRps"], rec["headroom"], rec["capacitySource"]) == ("BaseDemand", 30.0, 1.5, "CapacityPerReplica")
    assert st["observed"]["arrivalRps"] == 30.0
    assert conditions(api) == {
        "MetricsAvailable": "True/MetricsOK",
        "ScalingActive": "True/Decided",
        "ScalingLimited": "False/WithinBounds",
    }


async def test_without_prometheus_replicas_hold_and_one_warning_says_why(api: FakeApiServer) -> None:
    api.put(service(), deployment(replicas=2))
    a = await one_pass(api, None)
    assert api.writes("Deployment", sub="scale") == []
    assert [(e["reason"], e["type"]) for e in api.events()] == [("MetricsUnavailable", "Warning")]
    assert "FORESAIL_PROMETHEUS_URL" in api.events()[0]["message"]
    assert conditions(api)["MetricsAvailable"] == "False/MetricsUnavailable"
    assert api.get("InferenceService", "team-a", "resnet")["status"]["recommendation"]["reason"] == "MetricsUnavailable"  # type: ignore[index]
    a.services[("team-a", "resnet")].next_due = 0.0
    await a.run_once(NOW + 5)
    assert len(api.events()) == 1, "the Warning is sent when metrics become unavailable, not every pass"


@pytest.mark.parametrize(
    ("name", "policies", "ref", "want"),
    [
        ("found", [policy("fast", tickSeconds=2)], "fast", "True/Decided"),
        ("missing", [], "fast", "False/PolicyNotFound"),
        ("invalid", [policy("fast", tickSeconds=0.1)], "fast", "False/PolicyInvalid"),
    ],
)
async def test_the_policy_a_service_names(api: FakeApiServer, name: str, policies: list[dict[str, Any]], ref: str, want: str) -> None:
    api.put(service(scaling__policyRef=ref), deployment(replicas=1), pod("resnet", "team-a", 0), *policies)
    await one_pass(api, signals(10.0))
    assert conditions(api)["ScalingActive"] == want, name


async def test_a_tenant_grant_caps_the_replicas_and_says_so(api: FakeApiServer) -> None:
    api.put(
        service(),
        deployment(replicas=1),
        pod("resnet", "team-a", 0),
        node("n1"),
        namespace("team-a"),
        tenant("a", ["team-a"], limit=2),
    )
    await one_pass(api, signals(60.0))  # 60 rps on one ready replica: the fast path wants 60 x 1.5 / 20 = 5
    (scale,) = api.writes("Deployment", sub="scale")
    assert scale.body["spec"]["replicas"] == 2
    st = api.get("InferenceService", "team-a", "resnet")["status"]  # type: ignore[index]
    assert st["quota"] == {"tenant": "a", "requestedReplicas": 5, "grantedReplicas": 2, "gpusPerReplica": 1, "reason": st["quota"]["reason"]}
    assert conditions(api)["QuotaLimited"] == "True/QuotaExceeded"
    assert conditions(api)["ScalingLimited"] == "True/Quota"
    quota = api.get("ResourceQuota", "team-a", "foresail-tenant-gpus")
    assert quota is not None and quota["spec"]["hard"] == {"requests.nvidia.com/gpu": "2"}


async def test_a_service_without_its_deployment_is_left_to_the_reconciler(api: FakeApiServer) -> None:
    api.put(service())
    await one_pass(api, signals(60.0))
    assert api.writes() == []


def paused(annotations: dict[str, str]) -> dict[str, Any]:
    obj = service()
    obj["metadata"]["annotations"] = annotations
    return obj


async def test_a_paused_service_is_set_to_its_paused_count_and_says_so(api: FakeApiServer) -> None:
    api.put(paused({"foresail.dev/paused-replicas": "1"}), deployment(replicas=3), pod("resnet", "team-a", 0), node("n1"))
    await one_pass(api, signals(60.0))  # 60 rps would want 5 replicas
    (scale,) = api.writes("Deployment", sub="scale")
    assert scale.body["spec"]["replicas"] == 1
    assert conditions(api) == {
        "MetricsAvailable": "True/MetricsOK",
        "ScalingActive": "False/Paused",
        "ScalingLimited": "False/WithinBounds",
        "Paused": "True/Paused",
    }
    labels = {"namespace": "team-a", "inferenceservice": "resnet"}
    for cond, want in (("Paused", 1), ("MetricsAvailable", 1), ("QuotaLimited", 0)):
        assert REGISTRY.get_sample_value("foresail_inferenceservice_condition", {**labels, "condition": cond}) == want, cond
    assert REGISTRY.get_sample_value("foresail_arrival_rps", labels) == 60.0


async def test_a_paused_service_holds_its_replicas(api: FakeApiServer) -> None:
    api.put(paused({"foresail.dev/paused": "true"}), deployment(replicas=2), pod("resnet", "team-a", 0), node("n1"))
    await one_pass(api, signals(60.0))
    assert api.writes("Deployment", sub="scale") == []
    assert api.get("InferenceService", "team-a", "resnet")["status"]["recommendation"]["reason"] == "Paused"  # type: ignore[index]


async def test_serving_replicas_without_series_are_no_series(api: FakeApiServer) -> None:
    api.put(service(), deployment(replicas=1), pod("resnet", "team-a", 0), node("n1"))
    await one_pass(api, answer(matrix({}, model="resnet50")))
    assert conditions(api)["MetricsAvailable"] == "False/NoSeries"
    assert "foresail_dev_inferenceservice" in api.events()[0]["message"]
