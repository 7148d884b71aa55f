"""A service's observation from listed objects and Prometheus signals (pure): named cases."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.api.inferenceservice import InferenceService
from foresail.api.scalingpolicy import ScalingBehavior
from foresail.scaling.capacity import Calibration, Routing
from foresail.scaling.counters import ServiceSignals, ServingPod
from foresail.scaling.decide import Observation
from foresail.scaling.observe import observe, service_settings, serving_pods
from tests.builders import IsvcBuilder
from tests.fakes.counters import measured

GOOD = measured(12.0, 3.0, 80.0)
FLEET = GOOD.fleet
FLAT = Calibration()


def pod(i: int, *, ready: bool = True, warm: bool = True, phase: str = "Running", deleting: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {"name": f"p{i}", "namespace": "team-a"}
    if deleting:
        md["deletionTimestamp"] = "2027-01-01T00:00:00Z"
    conds = [{"type": "Ready", "status": str(ready)}, {"type": "foresail.dev/warm", "status": str(warm)}]
    return {"metadata": md, "status": {"phase": phase, "conditions": conds}}


def service(warmup: bool = True, cold_p90: float | None = None) -> InferenceService:
    b = IsvcBuilder().set("spec.warmup", {"enabled": warmup})
    if cold_p90 is not None:
        b.set("status.coldStart", {"p90Seconds": cold_p90, "samples": 3})
    return b.build()


def dep(replicas: int | None) -> dict[str, Any]:
    return {"spec": {} if replicas is None else {"replicas": replicas}}


CASES: list[tuple[str, InferenceService, dict[str, Any], list[dict[str, Any]], ServiceSignals | None, Observation]] = [
    ("warm pods serve", service(), dep(2), [pod(0), pod(1)], GOOD, Observation(FLEET, ready=2, starting=0, current=2, calibration=FLAT)),
    ("a cold pod is starting", service(), dep(2), [pod(0), pod(1, warm=False)], GOOD, Observation(FLEET, ready=1, starting=1, current=2, calibration=FLAT)),
    ("replicas wanted but not created yet are starting", service(), dep(4), [pod(0)], GOOD, Observation(FLEET, ready=1, starting=3, current=4, calibration=FLAT)),
    ("terminating and finished pods are gone", service(), dep(1), [pod(0), pod(1, deleting=True), pod(2, phase="Succeeded")], GOOD, Observation(FLEET, ready=1, starting=0, current=1, calibration=FLAT)),
    ("more pods than wanted (scaling down)", service(), dep(1), [pod(0), pod(1)], GOOD, Observation(FLEET, ready=2, starting=0, current=1, calibration=FLAT)),
    ("without a warm-up gate Ready pods serve", service(warmup=False), dep(2), [pod(0, warm=False), pod(1, ready=False, warm=False)], GOOD, Observation(FLEET, ready=1, starting=1, current=2, calibration=FLAT)),
    ("the measured cold start", service(cold_p90=17.0), dep(1), [pod(0)], GOOD, Observation(FLEET, ready=1, starting=0, current=1, cold_start_s=17.0, calibration=FLAT)),
    ("bad signals are unavailable", service(), dep(1), [pod(0)], ServiceSignals(None, ("stale: newest sample 30s old",)), Observation(None, ready=1, starting=0, current=1, calibration=FLAT)),
    ("no signals for the service", service(), dep(1), [pod(0)], None, Observation(None, ready=1, starting=0, current=1, calibration=FLAT)),
    ("a Deployment without replicas", service(), dep(None), [], GOOD, Observation(FLEET, ready=0, starting=0, current=0, calibration=FLAT)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "isvc", "deployment", "pods", "signals", "want"), CASES, ids=[c[0] for c in CASES])
def test_observe(
    name: str,
    isvc: InferenceService,
    deployment: dict[str, Any],
    pods: list[dict[str, Any]],
    signals: ServiceSignals | None,
    want: Observation,
) -> None:
    got, _ = observe(isvc, deployment, pods, signals, ["prometheus down"])
    assert got == want, name


def test_a_service_without_signals_carries_the_errors_that_hit_every_service() -> None:
    _, used = observe(service(), dep(1), [], None, ["Prometheus: query failed"])
    assert used.errors == ("Prometheus: query failed",)
    assert not used.ok


def timed(i: int, *, ready_at: str | None, warm_at: str | None, ip: str = "10.0.0.1", **kw: Any) -> dict[str, Any]:
    p = pod(i, **kw)
    for c in p["status"]["conditions"]:
        at = ready_at if c["type"] == "Ready" else warm_at
        if at is not None:
            c["lastTransitionTime"] = at
    p["status"]["podIP"] = ip
    return p


NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
SERVING: list[tuple[str, list[dict[str, Any]], list[ServingPod]]] = [
    ("serving since the later of Ready and warm", [timed(0, ready_at="2027-01-15T07:59:00Z", warm_at="2027-01-15T07:58:59Z")], [ServingPod("p0", NOW - 60, "10.0.0.1")]),
    ("a Triton restart after warm-up: since Ready again", [timed(0, ready_at="2027-01-15T07:59:50Z", warm_at="2027-01-15T07:00:00Z")], [ServingPod("p0", NOW - 10, "10.0.0.1")]),
    ("no transition times: from now, so nothing before counts", [timed(0, ready_at=None, warm_at=None)], [ServingPod("p0", NOW, "10.0.0.1")]),
    ("not Ready (warming up, or its container restarting): not serving", [timed(0, ready_at="2027-01-15T07:59:00Z", warm_at=None, ready=False)], []),
    ("terminating: not serving", [timed(0, ready_at="2027-01-15T07:59:00Z", warm_at=None, deleting=True)], []),
    ("without a warm-up gate: Ready", [{**timed(0, ready_at="2027-01-15T07:59:30Z", warm_at=None), "status": {"phase": "Running", "podIP": "10.0.0.2", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2027-01-15T07:59:30Z"}]}}], [ServingPod("p0", NOW - 30, "10.0.0.2")]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "pods", "want"), SERVING, ids=[c[0] for c in SERVING])
def test_serving_pods(name: str, pods: list[dict[str, Any]], want: list[ServingPod]) -> None:
    assert serving_pods(pods, NOW) == want, name


def test_service_settings_come_from_the_spec() -> None:
    isvc = (
        IsvcBuilder()
        .set("spec.scaling", {"minReplicas": 2, "maxReplicas": 9, "fallback": {"replicas": 4, "afterSeconds": 30}})
        .set("spec.slo.p99LatencyMs", 150)
        .build()
    )
    s = service_settings(isvc, ScalingBehavior().resolve())
    assert (s.min_replicas, s.max_replicas, s.slo_p99_ms, s.fallback_replicas, s.fallback_after_s) == (2, 9, 150.0, 4, 30)


@pytest.mark.parametrize(
    ("name", "scaling", "want"),
    [
        ("nothing given", {}, Calibration()),
        ("a flat capacity", {"capacityPerReplicaRps": 20}, Calibration(capacity_rps=20.0)),
        (
            "a calibration, with the flat capacity kept aside",
            {"calibration": {"baseMs": 20, "perItemMs": 2, "maxBatch": 32}, "capacityPerReplicaRps": 20},
            Calibration(20.0, 2.0, 32, 20.0),
        ),
        (
            "per-connection routing",
            {"capacityPerReplicaRps": 20, "routing": {"model": "per-connection", "connections": 16}},
            Calibration(capacity_rps=20.0, routing=Routing.PER_CONNECTION, connections=16),
        ),
    ],
)
def test_the_calibration_comes_from_the_spec(name: str, scaling: dict[str, Any], want: Calibration) -> None:
    isvc = IsvcBuilder().set("spec.scaling", scaling).build()
    got, _ = observe(isvc, dep(1), [pod(0)], GOOD)
    assert got.calibration == want, name
