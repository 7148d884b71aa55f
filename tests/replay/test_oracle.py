"""Oracles and denominators: plateaus of the need curve, the capped oracle, the hindsight-best baseline."""

from __future__ import annotations

import numpy as np
import pytest

from foresail.api.scalingpolicy import ScalingBehavior
from foresail.replay import oracle
from foresail.replay.policies import KNOBS
from foresail.replay.run import CAPPED, Scenario, hindsight_best, run_scenario
from foresail.replay.sim import ReplicaModel, Serving
from foresail.replay.traces import Arrivals, profile_arrivals, superpose

MODEL = ReplicaModel(base_ms=20.0, per_item_ms=2.0, max_batch=16)


def per_second(counts: list[int]) -> Arrivals:
    """``counts[i]`` requests spread over second ``i``."""
    times = [i + (k + 0.5) / c for i, c in enumerate(counts) for k in range(c)]
    return Arrivals(times, [1.0] * len(times))


@pytest.mark.parametrize(
    ("name", "need", "cold", "plan"),
    [
        ("a spike is held from a cold start + 2 s ahead", [1, 1, 1, 1, 3, 1, 1, 1], 0.0, [1, 1, 3, 3, 3, 1, 1, 1]),
        ("a longer cold start starts earlier", [1, 1, 1, 1, 3, 1, 1, 1], 2.0, [3, 3, 3, 3, 3, 1, 1, 1]),
        ("flat need is flat", [2, 2, 2], 0.0, [2, 2, 2]),
    ],
)
def test_oracle_plan(name: str, need: list[int], cold: float, plan: list[int]) -> None:
    assert oracle.oracle_plan(np.array(need, np.int64), cold).tolist() == plan, name


@pytest.mark.parametrize(
    ("name", "budget", "plan"),
    [
        ("no budget: the full plan", 0.0, [1, 1, 3, 3, 3, 1, 1, 1, 1, 1, 0]),
        ("the spike's excess fits: given up down to the level below", 25.0, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]),
        ("too small a budget gives up nothing", 5.0, [1, 1, 3, 3, 3, 1, 1, 1, 1, 1, 0]),
    ],
)
def test_plateaus_give_up_the_cheapest_spike_first(name: str, budget: float, plan: list[int]) -> None:
    # 10 rps per replica: 10 rps, a one-second spike of 30 (needs 3), then 10 rps
    arr = per_second([10, 10, 10, 10, 30, 10, 10, 10, 10, 10])
    p = oracle.Plateaus(arr, capacity_rps=10.0, cold_start_s=0.0, score_from_s=0.0)
    assert p.need.tolist()[:10] == [1, 1, 1, 1, 3, 1, 1, 1, 1, 1]
    assert p.plan(budget).tolist() == plan, name


def test_the_prior_is_never_given_up() -> None:
    arr = per_second([10, 10, 10, 10, 30, 10, 10, 10, 10, 10])
    p = oracle.Plateaus(arr, capacity_rps=10.0, cold_start_s=0.0, score_from_s=5.0)
    assert p.plan(1e9).tolist()[:5] == [1, 1, 3, 3, 3]


@pytest.mark.parametrize(
    ("name", "front", "best"),
    [
        (
            "the cheapest baseline setting at the target",
            {"hpa": [{"knob": 0.6, "within_slo": 0.999, "gpu_seconds": 100.0}, {"knob": 0.8, "within_slo": 0.996, "gpu_seconds": 80.0}],
             "static": [{"knob": 0.9, "within_slo": 0.995, "gpu_seconds": 90.0}],
             "foresail": [{"knob": 90.0, "within_slo": 0.999, "gpu_seconds": 50.0}]},
            ("hpa", 0.8),
        ),
        ("none reaches the target", {"hpa": [{"knob": 0.6, "within_slo": 0.9, "gpu_seconds": 100.0}]}, None),
    ],
)  # fmt: skip
def test_hindsight_best_is_a_baseline(name: str, front: dict[str, list[dict[str, float]]], best: tuple[str, float] | None) -> None:
    got = hindsight_best(front, 0.995)
    assert (None if got is None else (got["policy"], got["knob"])) == best, name


def test_the_capped_oracle_meets_the_target_for_less_than_the_full_oracle() -> None:
    base = profile_arrivals("sine", {"mean": 100, "amp": 80, "period": 60}, 300, seed=1)
    arr = superpose(base, 3, seed=2)
    sc = Scenario("sine", arr, MODEL, 60.0, 5.0, ScalingBehavior(), prior_s=60.0, target_share=0.99)
    summary, _ = run_scenario(sc, ("oracle", CAPPED, "static"), progress=False, with_frontier=True)
    full, capped = summary["policies"]["oracle"], summary["policies"][CAPPED]
    assert capped["within_slo"] >= 0.99
    assert capped["gpu_seconds"] <= full["gpu_seconds"]
    assert capped["gpu_vs_oracle_capped"] == 1.0
    assert summary["requests"] == int(np.count_nonzero(arr.times >= 60.0))
    assert [p["knob"] for p in summary["frontier"]["static"]] == list(KNOBS["static"].grid)


def test_under_uneven_routing_the_capped_oracle_plans_with_less_capacity_per_replica() -> None:
    arr = profile_arrivals("constant", {"rate": 600}, 120, seed=1)
    serving = Serving("per-connection", connections=12, connection_lifetime_s=0.0)
    sc = Scenario("pinned", arr, MODEL, 60.0, 2.0, ScalingBehavior(), prior_s=20.0, serving=serving, target_share=0.99)
    summary, _ = run_scenario(sc, ("oracle", CAPPED), progress=False)
    full, capped = summary["policies"]["oracle"], summary["policies"][CAPPED]
    assert full["within_slo"] < 0.99  # the even-spread plan overloads the replicas holding more connections
    assert capped["within_slo"] >= 0.99
    assert capped["capacity_factor"] < 1.0
