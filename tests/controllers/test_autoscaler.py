"""The autoscaler's glue against a fake apiserver and a fake Prometheus: what one pass writes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from foresail.clients.prometheus import PromClient
from foresail.controllers import telemetry
from foresail.controllers.autoscaler import HISTORY_CONCURRENCY, Autoscaler
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


@contextlib.asynccontextmanager
async def autoscaler(api: FakeApiServer, transport: httpx.AsyncBaseTransport | None) -> AsyncIterator[Autoscaler]:
    """An autoscaler on the fake apiserver (and a Prometheus on ``transport``), closed afterwards."""
    prom = PromClient("http://prom", transport=transport) if transport is not None else None
    a = Autoscaler(api.kube(), prom, loop_seconds=2)
    try:
        yield a
    finally:
        await a.close()
        if prom is not None:
            await prom.close()


async def one_pass(api: FakeApiServer, transport: httpx.MockTransport | None, now: float = NOW) -> Autoscaler:
    async with autoscaler(api, transport) as a:
        await a.run_once(now)
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


@pytest.mark.parametrize(
    "owner",
    [
        pytest.param(None, id="a user's Deployment wearing Foresail's labels, no controller"),
        pytest.param({"kind": "InferenceService", "name": "resnet", "uid": "uid-of-an-earlier-resnet"}, id="one of an earlier service of the name"),
    ],
)
async def test_a_deployment_the_service_does_not_control_is_never_scaled(api: FakeApiServer, owner: dict[str, str] | None) -> None:
    dep = deployment(replicas=1)
    dep["metadata"]["ownerReferences"] = [] if owner is None else [{"apiVersion": "foresail.dev/v1alpha1", "controller": True, **owner}]
    api.put(service(), dep, pod("resnet", "team-a", 0), node("n1"))
    await one_pass(api, signals(30.0))
    assert api.writes("Deployment") == []
    assert api.get("Deployment", "team-a", "resnet")["spec"]["replicas"] == 1  # type: ignore[index]


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


def two_services(api: FakeApiServer, **spec: Any) -> httpx.MockTransport:
    """resnet (with ``spec``) and other, one replica each, both serving 60 rps: each wants 5 replicas."""
    other = isvc("other", "team-a", scaling__capacityPerReplicaRps=20, scaling__maxReplicas=8, scaling__overrides={"forecastEnabled": False})
    api.put(service(**spec), deployment(replicas=1), pod("resnet", "team-a", 0), node("n1"))
    api.put(other, deployment("other", replicas=1), pod("other", "team-a", 0))
    samples = {("team-a", s, f"{s}-0"): steady(NOW - 75, NOW - 1, 60.0, p99_ms=90.0) for s in ("resnet", "other")}
    return answer(matrix(samples, model="resnet50"))


def replicas(api: FakeApiServer, name: str) -> int:
    dep = api.get("Deployment", "team-a", name)
    assert dep is not None
    return int(dep["spec"]["replicas"])


FAILING_LISTS = [
    ("the tenants", "tenants"),
    ("the nodes", "nodes"),
    ("the namespaces", "namespaces"),
    ("the quotas", "resourcequotas"),
]


@pytest.mark.parametrize(("name", "plural"), FAILING_LISTS, ids=[c[0] for c in FAILING_LISTS])
async def test_a_failing_tenant_side_list_holds_growth_but_not_the_pass(api: FakeApiServer, name: str, plural: str) -> None:
    api.failing[plural] = 500
    await one_pass(api, two_services(api))
    for svc in ("resnet", "other"):  # decided and reported; no arbitration, so none grows past its replicas
        st = api.get("InferenceService", "team-a", svc)["status"]  # type: ignore[index]
        assert st["recommendation"]["reason"] == "BaseDemand", name
        assert "tenant arbitration unavailable" in st["recommendation"]["message"], name
        assert replicas(api, svc) == 1, name
    assert conditions(api)["ScalingLimited"] == "True/Quota"


async def test_a_failing_policy_list_holds_only_the_services_that_name_a_policy(api: FakeApiServer) -> None:
    api.failing["scalingpolicies"] = 500
    await one_pass(api, two_services(api, scaling__policyRef="fast"))
    assert replicas(api, "other") == 5
    assert replicas(api, "resnet") == 1
    assert "recommendation" not in (api.get("InferenceService", "team-a", "resnet") or {}).get("status", {})


async def test_a_failing_arbitration_does_not_stop_the_others(api: FakeApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("a tenant the arbiter cannot read")

    transport = two_services(api)
    prom = PromClient("http://prom", transport=transport)
    a = Autoscaler(api.kube(), prom, loop_seconds=2)
    monkeypatch.setattr(a.arbiter, "arbitrate", broken)
    try:
        await a.run_once(NOW)
    finally:
        await prom.close()
    for svc in ("resnet", "other"):
        st = api.get("InferenceService", "team-a", svc)["status"]  # type: ignore[index]
        assert "tenant arbitration failed: RuntimeError" in st["recommendation"]["message"]


async def test_one_failing_service_is_reported_on_it_and_the_others_scale(api: FakeApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import foresail.controllers.autoscaler as autoscaler
    from foresail.scaling.observe import observe as real

    def observe(isvc: Any, *args: Any) -> Any:
        if isvc.name == "resnet":
            raise ValueError("a sample the decision cannot use")
        return real(isvc, *args)

    monkeypatch.setattr(autoscaler, "observe", observe)
    await one_pass(api, two_services(api))
    assert replicas(api, "other") == 5
    assert replicas(api, "resnet") == 1
    failed = [e for e in api.events() if e["reason"] == "AutoscalingFailed"]
    assert [(e["involvedObject"]["name"], e["type"]) for e in failed] == [("resnet", "Warning")]
    assert "a sample the decision cannot use" in failed[0]["message"]


async def test_kubectl_scale_is_reported_and_foresails_intent_kept(api: FakeApiServer) -> None:
    body = service()
    body["status"] = {"desiredReplicas": 3}  # what Foresail wanted last
    dep = deployment(replicas=7)  # then someone ran kubectl scale --replicas=7
    dep["metadata"]["managedFields"] = [
        {"manager": "foresail", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {}}}},
        {"manager": "kubectl", "operation": "Update", "subresource": "scale", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
    ]
    api.put(body, dep, pod("resnet", "team-a", 0), node("n1"))
    await one_pass(api, signals(30.0))
    assert replicas(api, "resnet") == 3, "the decision starts from Foresail's intent, not from the foreign 7"
    (writer,) = [e for e in api.events() if e["reason"] == "OtherWriter"]
    assert writer["type"] == "Warning" and "kubectl (/scale)" in writer["message"]
    assert conditions(api)["ReplicasContested"] == "True/OtherWriter"


async def test_a_deleted_service_leaves_no_bookkeeping_and_no_metric_series(api: FakeApiServer) -> None:
    api.put(service(), deployment(replicas=1), pod("resnet", "team-a", 0), node("n1"))
    async with autoscaler(api, signals(30.0)) as a:
        await a.run_once(NOW)
        assert ("team-a", "resnet") in a.services
        assert 'foresail_desired_replicas{inferenceservice="resnet",namespace="team-a"}' in telemetry.render().decode()
        for key in [k for k in api.objects if k[1] == "inferenceservices"]:
            del api.objects[key]
        await a.run_once(NOW + 5)
    assert a.services == {}
    assert 'inferenceservice="resnet",namespace="team-a"' not in telemetry.render().decode()


async def test_history_arrives_in_the_background_a_bounded_number_at_a_time(api: FakeApiServer) -> None:
    """20 services after a restart: the pass decides on live signals without waiting for any history; the
    histories come 8 at a time and go before the live samples."""
    names = [f"svc{i}" for i in range(20)]
    for n in names:
        api.put(isvc(n, "team-a", scaling__capacityPerReplicaRps=20, scaling__maxReplicas=8), deployment(n, replicas=1))
    live = answer(matrix({("team-a", n, f"{n}-0"): steady(NOW - 75, NOW - 1, 10.0) for n in names}, model="resnet50"))
    release, full = asyncio.Event(), asyncio.Event()
    in_flight, most = 0, 0

    async def handler(req: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        if req.url.path != "/api/v1/query_range":
            return live.handle_request(req)
        in_flight += 1
        most = max(most, in_flight)
        if in_flight == HISTORY_CONCURRENCY:
            full.set()
        await release.wait()
        in_flight -= 1
        values = [[NOW - 600 + 5 * i, "7"] for i in range(100)]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}})

    async with autoscaler(api, httpx.MockTransport(handler)) as a:
        await a.run_once(NOW)
        assert len(api.writes("InferenceService", sub="status")) == 20, "every service decided on its live signals"
        assert len(a.histories) == 20
        await full.wait()
        await asyncio.sleep(0.1)  # room for a ninth, if the bound did not hold
        release.set()
        await asyncio.gather(*a.histories.values())
    assert most == HISTORY_CONCURRENCY
    h = a.services[("team-a", "svc0")].state.history
    assert list(h.t[:100]) == [NOW - 600 + 5 * i for i in range(100)] and h.rate[0] == 7.0
    assert h.t[-1] == NOW, "the live sample stays last"


async def test_a_pass_with_nothing_due_only_lists(api: FakeApiServer) -> None:
    api.put(service(), deployment(replicas=1), pod("resnet", "team-a", 0), node("n1"))
    async with autoscaler(api, signals(30.0)) as a:
        await a.run_once(NOW)
        sent = a.kube.sent.copy()
        await a.run_once(NOW + 0.1)  # no service due: no read of an object, no write
    assert a.kube.sent - sent == {"GET": 8}, "the 8 lists of the pass"
    (pods,) = {r.query.get("fieldSelector") for r in api.requests if r.path == "/api/v1/pods"}
    assert pods == "status.phase!=Succeeded,status.phase!=Failed", "finished pods are not listed"


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


@pytest.mark.parametrize(
    "lose_at",
    [
        pytest.param("before the pass", id="lease lost before the pass: nothing written"),
        pytest.param("mid-pass", id="lease lost mid-pass (during the Prometheus read): no write of the pass is sent"),
    ],
)
async def test_a_replica_that_is_no_longer_leader_writes_nothing(api: FakeApiServer, lose_at: str) -> None:
    """Fencing: the autoscaler's client asks the lease before every write (``Kube.fence``)."""
    api.put(service(), deployment(replicas=1), pod("resnet", "team-a", 0), node("n1"), namespace("team-a"), tenant("team-a", ["team-a"], 4))
    leading = [lose_at != "before the pass"]
    inner = signals(30.0)

    def read(req: httpx.Request) -> httpx.Response:
        leading[0] = False  # the renew deadline passes while the pass reads Prometheus
        return inner.handle_request(req)

    kube = api.kube()
    kube.fence = lambda: leading[0]
    prom = PromClient("http://prom", transport=httpx.MockTransport(read))
    a = Autoscaler(kube, prom, loop_seconds=2)
    try:
        await a.run_once(NOW)
    finally:
        await a.close()
        await prom.close()
    assert api.writes() == []
    assert {r.method for r in api.requests} == {"GET"}


# ------------------------------------------------------------------------- which services go to the pool


class _Arb:
    """An Arbitration's ``grant``, all ``Autoscaler._idle`` reads of it."""

    def __init__(self, units: int | None) -> None:
        self.units = units

    def grant(self, ns: str, name: str) -> Any:
        return None if self.units is None else type("G", (), {"units": self.units})()


@pytest.mark.parametrize(
    ("name", "due", "rollout", "arb", "idle"),
    [
        ("due: applied", True, False, _Arb(4), False),
        ("due, no arbitration this pass: applied", True, False, "arbitration failed", False),
        ("not due, no arbitration this pass: nothing to write", False, False, "arbitration failed", True),
        ("not due, no grant: nothing to write", False, False, _Arb(None), True),
        ("not due, grant above its replicas: nothing to write", False, False, _Arb(5), True),
        ("not due, grant equal to its replicas: nothing to write", False, False, _Arb(2), True),
        ("not due, grant shrunk below its replicas: capped", False, False, _Arb(1), False),
        ("not due, with rollouts, grant shrunk: its slots change only when it decides", False, True, _Arb(1), True),
    ],
)
def test_idle_services_are_not_sent_to_the_pool(name: str, due: bool, rollout: bool, arb: Any, idle: bool) -> None:
    from foresail.api.inferenceservice import InferenceService

    body = isvc()
    if rollout:
        body["status"] = {"rollout": {"stableSlot": "a"}}
    svc = InferenceService.model_validate(body)
    pending: Any = object() if due else None
    assert Autoscaler._idle(svc, deployment(replicas=2), pending, arb) is idle, name
