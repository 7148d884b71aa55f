"""Figures of a run shared by the simulator's and the cluster's benchmarks."""

from __future__ import annotations

import math

import pytest

from foresail.replay.figures import (
    agreement,
    busiest_window,
    busiest_window_rps,
    integrate,
    reaction_figures,
    share_within,
    step_samples,
    value_before,
)


@pytest.mark.parametrize(
    ("name", "samples", "start", "end", "expected"),
    [
        ("no samples", [], 0.0, 10.0, 0.0),
        ("one value held to the end", [(0.0, 2.0)], 0.0, 10.0, 20.0),
        ("zero before the first sample", [(5.0, 2.0)], 0.0, 10.0, 10.0),
        ("steps", [(0.0, 1.0), (4.0, 3.0), (6.0, 2.0)], 0.0, 10.0, 4 * 1 + 2 * 3 + 4 * 2),
        ("unsorted samples", [(6.0, 2.0), (0.0, 1.0), (4.0, 3.0)], 0.0, 10.0, 18.0),
        ("a window inside one step", [(0.0, 1.0), (4.0, 3.0)], 5.0, 7.0, 6.0),
        ("samples after the end do not count", [(0.0, 1.0), (20.0, 100.0)], 0.0, 10.0, 10.0),
        ("an empty window", [(0.0, 1.0)], 5.0, 5.0, 0.0),
    ],
)
def test_integrate(name: str, samples: list[tuple[float, float]], start: float, end: float, expected: float) -> None:
    assert integrate(samples, start, end) == pytest.approx(expected), name


@pytest.mark.parametrize(
    ("name", "samples", "t", "expected"),
    [
        ("nothing before", [(5.0, 2.0)], 5.0, None),
        ("strictly before", [(0.0, 1.0), (5.0, 2.0)], 5.0, 1),
        ("the last one before", [(0.0, 1.0), (2.0, 4.0), (9.0, 7.0)], 5.0, 4),
        ("unsorted", [(2.0, 4.0), (0.0, 1.0)], 5.0, 4),
        ("no samples", [], 5.0, None),
    ],
)
def test_value_before(name: str, samples: list[tuple[float, float]], t: float, expected: int | None) -> None:
    assert value_before(samples, t) == expected, name


def test_step_samples_start_at_zero_with_the_initial_value() -> None:
    assert step_samples(2, [(3, 4), (5.5, 1)]) == [(0.0, 2.0), (3.0, 4.0), (5.5, 1.0)]
    assert integrate(step_samples(2, [(3, 4)]), 0.0, 5.0) == 2 * 3 + 4 * 2


@pytest.mark.parametrize(
    ("name", "lats", "slo", "expected"),
    [
        ("none", [], 100.0, 0.0),
        ("all within, the SLO itself included", [10.0, 100.0], 100.0, 1.0),
        ("unserved requests are over", [10.0, math.inf, math.nan, 200.0], 100.0, 0.25),
    ],
)
def test_share_within(name: str, lats: list[float], slo: float, expected: float) -> None:
    assert share_within(lats, slo) == expected, name


def test_reaction_figures_of_a_step() -> None:
    # 10 requests a second for 20 s; from the step at 10 s the next 3 s are slow, then fine again
    times = [i / 10 for i in range(200)]
    lats = [500.0 if 10.0 <= t < 13.0 else 20.0 for t in times]
    f = reaction_figures(times, lats, 100.0, since=10.0, horizon=20.0, shape="step")
    assert f["requests"] == 200 and f["over_slo"] == 30 and f["over_slo_after_change"] == 30
    assert f["over_slo_share"] == 0.15
    assert f["worst_p99_1s_ms"] == 500.0 and f["worst_p99_5s_ms"] == 500.0
    assert f["recovery_1s_s"] == 3.0
    assert f["recovery_5s_s"] == 5.0  # the window [10, 15) holds slow requests
    assert f["recovery_5s_hold30_s"] == 5.0  # a hold longer than what is left asks for everything left
    assert f["windows_5s_over_slo"] == [10]


def test_reaction_figures_of_a_ramp_have_no_recovery() -> None:
    f = reaction_figures([0.5, 1.5], [10.0, math.inf], 100.0, since=1.0, horizon=2.0, shape="ramp")
    assert "recovery_1s_s" not in f
    assert f["over_slo"] == 1 and f["worst_p99_1s_ms"] is None  # an unserved request: no finite p99


@pytest.mark.parametrize(
    ("name", "per_second", "window", "expected"),
    [
        ("empty", [], 10, 0.0),
        ("shorter than the window: the mean of all", [1.0, 3.0], 10, 2.0),
        ("the busiest run of three", [1.0, 9.0, 9.0, 9.0, 1.0, 10.0], 3, 9.0),
        ("one second", [1.0, 5.0, 2.0], 1, 5.0),
    ],
)
def test_busiest_window_rps(name: str, per_second: list[float], window: int, expected: float) -> None:
    assert busiest_window_rps(per_second, window) == pytest.approx(expected), name


def test_busiest_window_needs_a_window() -> None:
    with pytest.raises(ValueError, match="window"):
        busiest_window_rps([1.0], 0)


@pytest.mark.parametrize(
    ("name", "real", "sim", "agrees"),
    [
        ("identical", (0.99, 1000.0), (0.99, 1000.0), True),
        ("2 points and 10% apart: just agrees", (0.99, 1000.0), (0.97, 1100.0), True),
        ("3 points apart", (0.99, 1000.0), (0.96, 1000.0), False),
        ("11% more replica-seconds", (0.99, 1000.0), (0.99, 1110.0), False),
    ],
)
def test_agreement(name: str, real: tuple[float, float], sim: tuple[float, float], agrees: bool) -> None:
    a = agreement(real[0], real[1], sim[0], sim[1])
    assert a["agrees"] == agrees, (name, a)


@pytest.mark.parametrize(
    ("per_second", "window", "expected"),
    [
        pytest.param([1.0, 5.0, 5.0, 1.0, 5.0, 5.0], 2, (1, 5.0), id="the first of two equal peaks"),
        pytest.param([0.0, 0.0, 9.0], 2, (1, 4.5), id="peak at the end"),
        pytest.param([3.0], 10, (0, 3.0), id="shorter than the window"),
        pytest.param([], 10, (0, 0.0), id="empty"),
    ],
)
def test_busiest_window_start_and_rate(per_second: list[float], window: int, expected: tuple[int, float]) -> None:
    assert busiest_window(per_second, window) == expected
