"""Benchmark verdicts (pure): frontiers at equal share, goals, burst statistics; named cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from foresail.replay.traces import Arrivals
from foresail.replay.verdict import below, burst_stats, cost_at, efficient, verdict


def pts(*xs: tuple[float, float]) -> list[dict[str, Any]]:
    return [{"within_slo": s, "gpu_seconds": g} for s, g in xs]


def test_efficient_drops_points_beaten_on_both_share_and_cost() -> None:
    got = efficient(pts((0.99, 100), (0.98, 120), (0.995, 150), (0.995, 140), (1.0, 200)))
    assert [(p["within_slo"], p["gpu_seconds"]) for p in got] == [(0.99, 100), (0.995, 140), (1.0, 200)]


@pytest.mark.parametrize(
    ("name", "share", "want"),
    [
        ("on a point", 0.995, 140.0),
        ("between two points", 0.9975, 170.0),
        ("below every point: the cheapest", 0.9, 100.0),
        ("never reached", 1.01, None),
    ],
)
def test_cost_at(name: str, share: float, want: float | None) -> None:
    assert cost_at(pts((0.99, 100), (0.995, 140), (1.0, 200)), share) == (pytest.approx(want) if want else None), name


def test_below_counts_the_baseline_points_foresail_matches_from_99_percent() -> None:
    foresail = pts((0.99, 90), (0.999, 150))
    baseline = pts((0.95, 10), (0.99, 100), (0.999, 140))
    assert below(foresail, baseline) == (1, 2)  # beats 0.99 at 90 < 100, loses 0.999 at 150 > 140


def summary(kind_cold: float, share: float, vs_oracle: float, vs_hindsight: float) -> dict[str, Any]:
    return {
        "cold_start_s": kind_cold,
        "policies": {"oracle": {"gpu_seconds": {"mean": 100.0}},
                     "foresail": {"knob": 0.5, "within_slo": {"mean": share}, "gpu_vs_oracle": {"mean": vs_oracle},
                                  "gpu_vs_hindsight": {"mean": vs_hindsight}}},
        "frontier": {"foresail": pts((0.995, 95.0), (0.999, 120.0)), "kpa": pts((0.995, 100.0), (0.999, 110.0))},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "kind", "s", "met"),
    [
        ("conv, cold 10: 99.6% at 1.05x", "conv", summary(10.0, 0.996, 1.05, 1.2), True),
        ("conv, cold 10: 99.6% at 1.2x", "conv", summary(10.0, 0.996, 1.2, 0.9), False),
        ("conv, cold 60: 1.0x at most", "conv", summary(60.0, 0.996, 1.02, 0.9), False),
        ("conv, cold 30: the share only", "conv", summary(30.0, 0.996, 1.5, 0.9), True),
        ("code: within 1.1x of the hindsight-best", "code", summary(10.0, 0.996, 3.0, 1.08), True),
        ("code: the share missed", "code", summary(10.0, 0.99, 3.0, 1.0), False),
    ],
)
def test_verdict(name: str, kind: str, s: dict[str, Any], met: bool) -> None:
    v = verdict(s, kind, 0.995)
    assert v["met"] is met, (name, v)
    assert v["cheapest_at_target"] and not v["frontier_below_every_baseline"]  # 95 < 100 at 99.5%, 120 > 110 at 99.9%
    assert v["below"] == {"kpa": (1, 2)}


def test_burst_stats_of_a_sparse_trace() -> None:
    # three 10 s bursts at 100 rps, 100 s apart, on a 10 rps per replica service
    times = np.concatenate([np.linspace(s, s + 10, 1000, endpoint=False) for s in (0.0, 110.0, 220.0)])
    b = burst_stats(Arrivals(times, np.ones(len(times))), 0.0, 10.0, cold_s=10.0)
    assert b["bursts"] == 3
    assert b["gap_s_p50_p90_max"] == [100.0, 100.0, 100.0]
    assert b["peak_replicas_p50_p90_max"] == [10.0, 10.0, 10.0]
    assert b["requests_in_their_first_cold_start"] == pytest.approx(2 / 3, abs=0.01)  # two bursts after a long gap
    assert burst_stats(Arrivals([], []), 0.0, 10.0, 10.0) == {"bursts": 0}
