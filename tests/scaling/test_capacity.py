"""Capacity per replica at the SLO from the calibration, by replica count: named cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from foresail.replay.sim import ReplicaModel
from foresail.scaling.capacity import (
    Calibration,
    CapacitySource,
    Routing,
    SaturationLearner,
    capacity_at_slo,
    capacity_table,
    replica_late_share,
    replica_quantile_ms,
    routing_factors,
)

CAL = Calibration(100.0, 10.0, 32)


@pytest.mark.parametrize(
    ("name", "base", "per", "batch", "slo"),
    [
        ("the README's replay replica", 100.0, 10.0, 32, 440.0),
        ("the emulated model at the demo's SLO", 20.0, 2.0, 32, 150.0),
        ("a small batch", 10.0, 1.0, 8, 50.0),
        ("a tight SLO, far from saturation", 100.0, 10.0, 32, 250.0),
    ],
)
def test_the_replica_model_agrees_with_the_simulator(name: str, base: float, per: float, batch: int, slo: float) -> None:
    simulated = ReplicaModel(base, per, batch).capacity_rps(slo)
    assert capacity_at_slo(base, per, batch, slo) == pytest.approx(simulated, rel=0.07), name


def test_the_tail_rises_with_the_load_and_p99_meets_the_slo_at_capacity() -> None:
    cap = capacity_at_slo(100.0, 10.0, 32, 440.0)
    assert replica_quantile_ms(cap, 100.0, 10.0, 32) == pytest.approx(440.0, rel=0.01)
    lates = [replica_late_share(x * cap, 100.0, 10.0, 32, 440.0) for x in (0.5, 1.0, 1.2, 1.5)]
    assert lates[0] < 1e-3 and lates[1] == pytest.approx(0.01, abs=0.003)
    assert lates == sorted(lates) and lates[-1] > 0.2
    assert replica_quantile_ms(0.0, 100.0, 10.0, 32) == 110.0  # no load: one request alone


def test_a_replica_too_slow_for_the_slo_has_no_capacity() -> None:
    assert capacity_at_slo(100.0, 10.0, 32, 100.0) == 0.0
    assert capacity_table(Calibration(100.0, 10.0, 32), 100.0, 4) is None


@pytest.mark.parametrize(
    ("name", "routing", "connections", "n", "lo", "hi"),
    [
        ("round robin spreads evenly", Routing.ROUND_ROBIN, 64, 20, 1.0, 1.0),
        ("least outstanding too", Routing.LEAST_OUTSTANDING, 64, 20, 1.0, 1.0),
        ("one replica holds every connection", Routing.PER_CONNECTION, 64, 1, 1.0, 1.0),
        ("two replicas share 64 connections unevenly", Routing.PER_CONNECTION, 64, 2, 0.7, 0.85),
        ("20 replicas over 64 connections", Routing.PER_CONNECTION, 64, 20, 0.3, 0.45),
        ("more connections spread more evenly", Routing.PER_CONNECTION, 1024, 20, 0.7, 0.9),
    ],
)
def test_routing_factors(name: str, routing: Routing, connections: int, n: int, lo: float, hi: float) -> None:
    f = routing_factors(routing, connections, 40)
    assert lo <= f[n - 1] <= hi, (name, f[n - 1])
    assert len(f) == 40 and (f <= 1.0).all()


def test_per_connection_uses_the_replica_tail_and_tells_the_late_share_by_replica_count() -> None:
    table = capacity_table(Calibration(100.0, 10.0, 32, routing=Routing.PER_CONNECTION, connections=64), 440.0, 40)
    assert table is not None and table.imbalance is not None
    assert 0.45 <= table.at(20) / table.single <= 0.55, "an overloaded replica still serves most of its requests in time"
    load = np.array([1.0, 1.0])
    late = table.late_share(load, load, np.array([2.0, 2.0]), 0.44, np.array([1, 20]))
    assert late[0] == pytest.approx(0.01, abs=0.003) and late[1] == pytest.approx(0.01, abs=0.003), "1% at capacity, by definition"
    even = capacity_table(Calibration(100.0, 10.0, 32), 440.0, 40)
    assert even is not None and even.imbalance is None


def test_the_fleet_never_serves_less_with_more_replicas() -> None:
    table = capacity_table(Calibration(100.0, 10.0, 32, routing=Routing.PER_CONNECTION, connections=16), 440.0, 64)
    assert table is not None
    assert (np.diff(table.fleet) >= 0).all()
    assert table.at(1) == pytest.approx(table.single)
    assert table.at(64) < 0.5 * table.single  # 64 replicas over 16 connections: most idle


@pytest.mark.parametrize(
    ("name", "rate", "want"),
    [
        ("no load, no replica", 0.0, 0),
        ("a trickle needs one", 0.1, 1),
        ("exactly two replicas' capacity", 2.0, 2),
        ("just over", 2.01, 3),
        ("beyond the table: its size", 1e9, 8),
    ],
)
def test_replicas_for(name: str, rate: float, want: int) -> None:
    table = capacity_table(Calibration(capacity_rps=1.0), 100.0, 8)
    assert table is not None
    assert int(table.replicas_for(rate)) == want, name


@pytest.mark.parametrize(
    ("name", "load", "seconds", "lo", "hi"),
    [
        ("half the capacity: nothing late", 0.5, 2.0, 0.0, 1e-3),
        ("at capacity: the SLO's 1%", 1.0, 2.0, 0.005, 0.02),
        ("past saturation for long: most late", 4.0, 10.0, 0.8, 1.0),
        ("no replica ready: everything late", 50.0, 2.0, 0.95, 1.0),
    ],
)
def test_late_share_by_load(name: str, load: float, seconds: float, lo: float, hi: float) -> None:
    table = capacity_table(CAL, 440.0, 4)
    assert table is not None
    x = np.array([load])
    got = float(table.late_share(x, x, np.array([seconds]), 0.44)[0])
    assert lo <= got <= hi, (name, got)


def test_a_flat_capacity_has_no_tail_model() -> None:
    table = capacity_table(Calibration(capacity_rps=10.0), 100.0, 4)
    assert table is not None
    x = np.array([0.99, 1.5])
    assert table.late_share(x, x, np.array([10.0, 10.0]), 0.1).tolist() == [0.0, pytest.approx(1 - 0.1 / 5)]


@pytest.mark.parametrize(
    ("name", "cal", "source", "words"),
    [
        ("the curve", CAL, CapacitySource.CALIBRATION, "calibration 100 + 10 ms x batch (max 32), round-robin"),
        ("the curve wins over a flat figure", Calibration(100.0, 10.0, 32, 40.0), CapacitySource.CALIBRATION, "calibration"),
        ("a flat figure", Calibration(capacity_rps=40.0, routing=Routing.PER_CONNECTION, connections=8),
         CapacitySource.CAPACITY_PER_REPLICA, "capacityPerReplicaRps 40, per-connection over 8 connections"),
        ("nothing", Calibration(), CapacitySource.NONE, "no capacity known"),
    ],
)  # fmt: skip
def test_calibration_source(name: str, cal: Calibration, source: CapacitySource, words: str) -> None:
    assert cal.source == source, name
    assert cal.describe().startswith(words), name


SAT = 32 / 420 * 1000  # the calibrated replica's throughput with full batches


@pytest.mark.parametrize(
    ("name", "ready", "before", "in_flight", "growth", "completions", "learns", "ratio"),
    [
        ("saturated at the calibrated throughput", 2, 2, 400.0, 10.0, 2 * SAT, True, 1.0),
        ("saturated at half of it: moves down", 2, 2, 400.0, 10.0, SAT, True, 0.9),
        ("saturated above it: moves up", 2, 2, 400.0, 10.0, 3 * SAT, True, 1.1),
        ("a queue that shrinks says nothing", 2, 2, 400.0, -10.0, SAT, False, 1.0),
        ("too little queued: not saturated", 2, 2, 100.0, 10.0, SAT, False, 1.0),
        ("replicas just became ready: their window is mixed", 4, 2, 800.0, 10.0, SAT, False, 1.0),
        ("no replica ready", 0, 0, 400.0, 10.0, SAT, False, 1.0),
    ],
)
def test_saturated_throughput_is_learned_both_ways_and_only_when_saturated(
    name: str, ready: int, before: int, in_flight: float, growth: float, completions: float, learns: bool, ratio: float
) -> None:
    s = SaturationLearner(learn=0.2)
    assert s.observe(CAL, ready, before, in_flight, growth, completions) is learns, name
    assert s.ratio == pytest.approx(ratio), name


def test_the_learned_ratio_stays_bounded_and_a_flat_capacity_learns_nothing() -> None:
    s = SaturationLearner(learn=1.0)
    s.observe(CAL, 1, 1, 200.0, 1.0, 100 * SAT)
    assert s.ratio == 2.0
    s.observe(CAL, 1, 1, 200.0, 1.0, 0.01)
    assert s.ratio == 0.5
    assert not SaturationLearner().observe(Calibration(capacity_rps=5.0), 1, 1, 200.0, 1.0, 1.0)


def test_the_learned_ratio_rescales_the_capacity() -> None:
    slow = capacity_table(CAL, 440.0, 2, ratio=0.9)
    table = capacity_table(CAL, 440.0, 2)
    assert slow is not None and table is not None
    assert slow.single < table.single
    assert math.isclose(table.single, capacity_at_slo(100.0, 10.0, 32, 440.0))
