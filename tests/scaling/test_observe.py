"""A service's observation from listed objects and Prometheus signals (pure): named cases."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.api.inferenceservice import InferenceService
from foresail.api.scalingpolicy import ScalingBehavior
from foresail.scaling.capacity import Calibration, Routing
from foresail.scaling.decide import Observation
from foresail.scaling.observe import ServiceSignals, fleet_signals, observe, service_settings
from foresail.scaling.signals import WINDOWS, FleetSignals, MetricsSource, WindowSignals
from tests.builders import IsvcBuilder

GOOD = ServiceSignals(arrival_rps=12.0, queue=3.0, p99_ms=80.0, sample_age_s=1.0)
FLEET = FleetSignals(tuple(WindowSignals(w, 12.0, 12.0, 0.0, 0.0, 0.0, 80.0) for w in WINDOWS), queued=3.0, in_flight=3.0)
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
    ("bad signals are unavailable", service(), dep(1), [pod(0)], ServiceSignals(12.0, 3.0, None, 1.0, ["p99: no series"]), Observation(None, ready=1, starting=0, current=1, calibration=FLAT)),
    ("no series for the service", service(), dep(1), [pod(0)], None, Observation(None, ready=1, starting=0, current=1, calibration=FLAT)),
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


def test_a_service_without_series_carries_the_errors_that_hit_every_service() -> None:
    _, used = observe(service(), dep(1), [], None, ["arrival: query failed"])
    assert used.errors == ["arrival: query failed", "no series for this service"]
    assert not used.ok


def test_status_names_of_the_signals_drop_what_is_not_finite() -> None:
    s = ServiceSignals(arrival_rps=12.34567, queue=float("nan"), p99_ms=None, sample_age_s=0.5)
    assert s.rounded() == {"arrivalRps": 12.346, "ageSeconds": 0.5}


def test_service_settings_come_from_the_spec() -> None:
    isvc = (
        IsvcBuilder()
        .set("spec.scaling", {"minReplicas": 2, "maxReplicas": 9, "fallback": {"replicas": 4, "afterSeconds": 30}})
        .set("spec.slo.p99LatencyMs", 150)
        .build()
    )
    s = service_settings(isvc, ScalingBehavior().resolve())
    assert (s.min_replicas, s.max_replicas, s.slo_p99_ms, s.fallback_replicas, s.fallback_after_s) == (2, 9, 150.0, 4, 30)


def test_todays_prometheus_signals_stand_in_for_every_window() -> None:
    sig = fleet_signals(GOOD)
    assert sig == FLEET and sig.source == MetricsSource.PROMETHEUS
    assert sig.window(2.0).arrival_rps == sig.window(60.0).arrival_rps == 12.0
    assert fleet_signals(ServiceSignals(12.0, 3.0, None, 1.0, ["p99: no series"])) is None


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
