"""Reaction figures of the simulator: windowed p99 by arrival time and the recovery time after a step."""

from __future__ import annotations

import math

import pytest

from foresail.replay.sim import ReplicaModel, SimConfig, p99_by_window, recovery_s, simulate
from foresail.replay.traces import profile_arrivals

MODEL = ReplicaModel(base_ms=20.0, per_item_ms=2.0, max_batch=16)


def test_p99_is_the_nearest_rank_of_the_requests_arriving_in_each_window() -> None:
    times = [0.01 * i for i in range(100)]  # 100 requests in the first second
    lats = [float(i + 1) for i in range(100)]  # 1..100 ms
    assert p99_by_window(times, lats, 1.0) == [99.0]


def test_windows_without_arrivals_are_none_and_the_horizon_adds_trailing_ones() -> None:
    assert p99_by_window([0.5, 2.5], [10.0, 20.0], 1.0) == [10.0, None, 20.0]
    assert p99_by_window([0.5], [10.0], 1.0, horizon=3.0) == [10.0, None, None, None]
    assert p99_by_window([], [], 5.0) == [None]


def test_unserved_requests_are_over_any_slo() -> None:
    p = p99_by_window([0.1, 0.2], [5.0, math.inf], 1.0)
    assert p == [math.inf]
    assert recovery_s(p, 1.0, 1e9, since=0.0) is None


def test_a_bad_window_size_is_refused() -> None:
    with pytest.raises(ValueError, match="window_s"):
        p99_by_window([1.0], [1.0], 0.0)


@pytest.mark.parametrize(
    ("name", "p99s", "since", "expected"),
    [
        ("never over the SLO", [10.0, 50.0, 90.0], 1.0, 0.0),
        ("over after the step, back two windows later", [10.0, 200.0, 300.0, 50.0, 40.0], 1.0, 2.0),
        ("a relapse counts: recovery is after the last bad window", [10.0, 200.0, 50.0, 200.0, 50.0], 1.0, 3.0),
        ("still over at the end: never recovered", [10.0, 200.0, 50.0, 200.0], 1.0, None),
        ("a bad window before the step is ignored", [200.0, 10.0, 10.0], 1.0, 0.0),
        ("the window holding the step counts", [10.0, 200.0, 10.0], 1.5, 0.5),
        ("empty windows count as within", [10.0, 200.0, None, 10.0], 1.0, 1.0),
    ],
)
def test_recovery_after_a_step(name: str, p99s: list[float | None], since: float, expected: float | None) -> None:
    assert recovery_s(p99s, 1.0, 100.0, since) == expected, name


def test_recovery_with_five_second_windows() -> None:
    # step at 60 s; windows [60, 65) and [65, 70) over, [70, ...) within: 10 s
    p99s: list[float | None] = [*([10.0] * 12), 500.0, 500.0, *([10.0] * 6)]
    assert recovery_s(p99s, 5.0, 100.0, since=60.0) == 10.0


def test_a_step_served_by_replicas_started_at_the_step_recovers_after_about_one_cold_start() -> None:
    # 50 -> 350 rps at 30 s; one replica serves ~300 rps at most, the policy starts 3 more at the tick of the step
    arr = profile_arrivals("step", {"from": 50, "to": 350, "at": 30}, 90, seed=2)
    cfg = SimConfig(model=MODEL, slo_ms=100.0, cold_start_s=10.0, tick_s=5.0, initial_replicas=1)
    res = simulate(arr, cfg, lambda v: 4 if v.now >= 30 else 1)
    p99s = p99_by_window(res.arrivals, res.latencies_ms, 1.0, horizon=90)
    rec = recovery_s(p99s, 1.0, 100.0, since=30.0)
    assert rec is not None
    assert 10.0 <= rec <= 15.0  # the cold start, then the first replica drains its backlog
    # with the replicas there from the start the step never hurts
    warm = simulate(arr, SimConfig(model=MODEL, slo_ms=100.0, cold_start_s=10.0, tick_s=5.0, initial_replicas=4), lambda v: 4)
    assert recovery_s(p99_by_window(warm.arrivals, warm.latencies_ms, 1.0), 1.0, 100.0, since=30.0) == 0.0


@pytest.mark.parametrize(
    ("name", "p99s", "hold_s", "expected"),
    [
        ("a blip long after the recovery is not the step's", [10.0, 200.0, 50.0, 50.0, 50.0, 200.0, 50.0], 3.0, 1.0),
        ("the same blip counts when it must stay to the end", [10.0, 200.0, 50.0, 50.0, 50.0, 200.0, 50.0], None, 5.0),
        ("a relapse within the hold counts", [10.0, 200.0, 50.0, 200.0, 50.0, 50.0, 50.0], 3.0, 3.0),
        ("never within for long enough", [10.0, 200.0, 50.0, 200.0, 50.0, 200.0], 2.0, None),
        ("a hold longer than what is left asks for everything left", [10.0, 200.0, 50.0, 50.0], 10.0, 1.0),
    ],
)
def test_recovery_that_must_hold_for_a_while(
    name: str, p99s: list[float | None], hold_s: float | None, expected: float | None
) -> None:
    assert recovery_s(p99s, 1.0, 100.0, since=1.0, hold_s=hold_s) == expected, name
