"""Bursts, the hold window and the forecaster (pure, clock passed in): named cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from foresail.scaling.bursts import KEEP_GAPS, KEEP_HOLD, BurstTracker, HoldWindow, quantile
from foresail.scaling.forecast import Forecaster, forecasts

QUIET, ONSET = 1.0, 10.0


def run(rates: list[float], queued: list[float] | None = None) -> tuple[BurstTracker, list[bool]]:
    b = BurstTracker()
    onsets = [b.observe(2.0 * i, r, (queued or [0.0] * len(rates))[i], QUIET, ONSET) for i, r in enumerate(rates)]
    return b, onsets


@pytest.mark.parametrize(
    ("name", "rates", "queued", "onsets", "peaks"),
    [
        ("a burst from quiet, its peak kept when it ends", [0, 0, 20, 50, 30, 0], None, [2], [50.0]),
        ("a trickle below the onset is no burst", [0, 0, 5, 6, 0], None, [], []),
        ("requests queued on a quiet fleet are an onset", [0, 0, 0.5, 0], [0, 0, 5, 0], [2], [0.5]),
        ("busy from the start: no onset until quiet first", [40, 60, 0, 0, 30, 0], None, [4], [60.0, 30.0]),
        ("a burst that has not ended keeps its peak to itself", [0, 20, 90], None, [1], []),
    ],
)
def test_burst_tracker(name: str, rates: list[float], queued: list[float] | None, onsets: list[int], peaks: list[float]) -> None:
    b, got = run(rates, queued)
    assert [i for i, x in enumerate(got) if x] == onsets, name
    assert b.peaks == peaks, name


def test_the_burst_level_is_a_quantile_of_past_peaks_once_three_are_known() -> None:
    b = BurstTracker(peaks=[10.0, 20.0])
    assert b.level(0.75) is None
    b.peaks.append(40.0)
    assert b.level(0.5) == 20.0 and b.level(1.0) == 40.0
    assert quantile([], 0.5) is None


def test_the_hold_window_is_a_staircase_of_the_most_wanted() -> None:
    h = HoldWindow()
    for t, w in [(0, 5), (10, 8), (20, 3), (30, 6)]:
        h.add(float(t), w, keep_s=100.0)
    assert h.steps == [(10.0, 8), (30.0, 6)]
    assert h.most(35.0, 30.0) == (8, 10.0)  # 8 was last wanted at 10
    assert h.most(35.0, 10.0) == (6, 30.0)
    assert h.most(200.0, 10.0) is None


def test_gaps_are_learned_only_when_asked_and_only_beyond_a_tick() -> None:
    h = HoldWindow()
    tick, wants = 5.0, [10, 1, 10] + [1] * 22  # ticks every 5 s: 10 wanted at 0 and 10 s, then 1 until 120
    for i, w in enumerate(wants):
        h.add(tick * i, w, keep_s=900.0)  # a forecast wanting 10 again at 10 s: nothing learned
    assert h.gaps == []
    h.add(125.0, 10, keep_s=900.0, learn_gaps_over_s=1.5 * tick)  # a burst onset wants 10 again
    assert h.gaps == [115.0]  # idle since 10 s; level 1, wanted a tick ago, had no gap
    assert h.gap(0.9) is None  # three gaps first


def test_the_hold_window_stays_bounded_and_survives_malformed_status() -> None:
    h = HoldWindow()
    for t in range(1000):
        h.add(float(t), 2000 - t, keep_s=1e9, learn_gaps_over_s=0.0)
    assert len(h.steps) <= KEEP_HOLD and len(h.gaps) <= KEEP_GAPS
    assert HoldWindow.from_dict(h.to_dict()).steps == [(float(t), w) for t, w in h.steps]
    assert HoldWindow.from_dict({"steps": [[1, 2], "x", [1]], "gaps": [3, -1, "y"]}) == HoldWindow([(1.0, 2)], [3.0])
    assert HoldWindow.from_dict(None) == HoldWindow()


def test_a_clock_step_back_drops_what_lies_in_the_future() -> None:
    h = HoldWindow()
    h.add(100.0, 9, keep_s=600.0)
    h.add(50.0, 3, keep_s=600.0)
    assert h.steps == [(50.0, 3)]


def feed(f: Forecaster, rate: object, until: float, step: float = 2.0) -> None:
    t = 0.0
    while t <= until:
        f.observe(t, rate(t) if callable(rate) else float(rate))  # type: ignore[arg-type]
        t += step


@pytest.mark.parametrize(
    ("name", "rate", "level", "trend"),
    [
        ("flat", 100.0, 100.0, 0.0),
        ("a ramp is followed without lag", lambda t: 50.0 + 2.0 * t, 50.0 + 2.0 * 300, 2.0),
        ("a falling ramp", lambda t: 1000.0 - 1.5 * t, 1000.0 - 1.5 * 300, -1.5),
    ],
)
def test_the_forecaster_follows_level_and_trend(name: str, rate: object, level: float, trend: float) -> None:
    f = Forecaster(tau_s=10.0)
    feed(f, rate, 300.0)
    assert f.level == pytest.approx(level, rel=0.01, abs=0.5), name
    assert f.trend == pytest.approx(trend, abs=0.05), name


def test_the_forecast_damps_the_trend_and_can_leave_it_out() -> None:
    f = Forecaster(tau_s=10.0, damp_s=90.0)
    feed(f, lambda t: 2.0 * t, 300.0)
    level, trend = f.level, f.trend
    assert level is not None
    assert f.at(300.0, 60.0) == pytest.approx(level + trend * 90.0 * (1 - math.exp(-60.0 / 90.0)))
    assert f.at(300.0, 60.0, trend=False) == level
    assert Forecaster().at(0.0, 10.0) is None


def test_a_step_re_anchors_the_level_upward_only() -> None:
    f = Forecaster()
    feed(f, 100.0, 60.0)
    f.shift(50.0)
    assert f.level == pytest.approx(100.0)
    f.shift(400.0)
    assert f.level == pytest.approx(400.0) and f.trend == pytest.approx(0.0)


def test_bad_rates_are_refused_and_a_clock_step_is_skipped() -> None:
    f = Forecaster()
    with pytest.raises(ValueError, match="rate"):
        f.observe(0.0, math.nan)
    f.observe(10.0, 5.0)
    f.observe(5.0, 500.0)  # earlier than the last sample: ignored
    assert f.level == 5.0
    assert Forecaster.from_dict(f.to_dict()).to_dict() == f.to_dict()
    assert Forecaster.from_dict({"s1": "x"}).level is None


def test_forecasts_replays_a_forecaster_over_a_history() -> None:
    t = [2.0 * i for i in range(50)]
    rate = [10.0 + i for i in range(50)]
    shift = [0.0] * 49 + [200.0]
    got = forecasts(t, rate, shift, 10.0, 12.0, True)
    f = Forecaster(tau_s=10.0)
    want: list[float] = []
    for ti, ri in zip(t, rate, strict=True):
        f.observe(ti, ri)
        want.append(f.at(ti, 12.0) or 0.0)
    assert np.allclose(got[:-1], want[:-1])
    assert got[-1] >= 200.0  # re-anchored on the step
