"""The replay simulator: small named scenarios with known answers."""

from __future__ import annotations

import math

import pytest

from foresail.api.scalingpolicy import ScalingBehavior
from foresail.replay.run import Scenario, markdown, run_scenario
from foresail.replay.sim import PolicyView, ReplicaModel, SimConfig, simulate
from foresail.replay.traces import Arrivals, profile_arrivals

MODEL = ReplicaModel(base_ms=20.0, per_item_ms=2.0, max_batch=16)


def constant(rate: float, seconds: float) -> Arrivals:
    return profile_arrivals("constant", {"rate": rate}, seconds, seed=3)


def test_under_capacity_everything_meets_the_slo_and_gpu_seconds_add_up() -> None:
    cfg = SimConfig(model=MODEL, slo_ms=100.0, cold_start_s=5.0, tick_s=5.0, initial_replicas=2)
    res = simulate(constant(50, 60), cfg, lambda v: 2)
    assert res.within_slo(100.0) == 1.0
    assert res.gpu_seconds == pytest.approx(2 * 60, rel=0.02)
    assert res.scale_actions == 0


def test_overload_misses_the_slo() -> None:
    cfg = SimConfig(model=MODEL, slo_ms=100.0, cold_start_s=5.0, initial_replicas=1)
    res = simulate(constant(600, 30), cfg, lambda v: 1)
    assert res.within_slo(100.0) < 0.5


def test_no_replica_means_no_service() -> None:
    cfg = SimConfig(model=MODEL, slo_ms=100.0, cold_start_s=5.0, initial_replicas=0, min_replicas=0)
    res = simulate(constant(10, 10), cfg, lambda v: 0)
    assert all(math.isinf(x) for x in res.latencies_ms)
    assert res.within_slo(100.0) == 0.0


def test_a_new_replica_holds_a_gpu_from_creation_and_serves_after_its_cold_start() -> None:
    seen: list[PolicyView] = []

    def policy(v: PolicyView) -> int:
        seen.append(v)
        return 2

    cfg = SimConfig(model=MODEL, slo_ms=100.0, cold_start_s=20.0, tick_s=5.0, initial_replicas=1)
    res = simulate(constant(20, 60), cfg, policy)
    (t0, holding, ready) = res.replicas_t[0]
    assert (t0, holding, ready) == (5.0, 2, 1)
    assert any(v.starting == 1 for v in seen)
    assert res.replicas_t[-1][2] == 2
    # 1 GPU for 5 s, then 2 for the rest
    assert res.gpu_seconds == pytest.approx(5 + 2 * (60 - 5), rel=0.02)


def test_replica_capacity_at_the_slo_is_monotone_in_the_slo() -> None:
    caps = [MODEL.capacity_rps(slo) for slo in (30.0, 60.0, 120.0)]
    assert caps == sorted(caps)
    assert MODEL.capacity_rps(10.0) == 0.0  # a single request takes 22 ms


def test_model_from_a_calibration_curve() -> None:
    curve = [
        {"concurrency": 1, "throughput_rps": 40.0, "p50_ms": 25.0},
        {"concurrency": 32, "throughput_rps": 300.0, "p50_ms": 108.0},
    ]
    m = ReplicaModel.from_curve(curve, max_batch=32)
    assert m.batch_ms(1) == pytest.approx(25.0)
    assert 32 / m.batch_ms(32) * 1000 == pytest.approx(300.0, rel=0.01)


def test_run_scenario_is_deterministic_and_the_oracle_meets_the_slo() -> None:
    step = profile_arrivals("step", {"from": 20, "to": 200, "at": 60}, 180, seed=5)
    sc = Scenario("step", step, MODEL, 100.0, 10.0, ScalingBehavior())
    a, _ = run_scenario(sc, progress=False)
    b, _ = run_scenario(sc, progress=False)
    for x in (a, b):
        x.pop("wall_s")
        for r in x["policies"].values():
            r.pop("sim_seconds")  # wall time of the simulation itself
            r.pop("requests_per_s")
    assert a == b
    assert a["policies"]["oracle"]["gpu_vs_oracle"] == 1.0
    assert a["policies"]["oracle"]["within_slo"] >= 0.99
    assert "| foresail |" in markdown(a)
