"""Windows, the forecaster and the cold-start estimator: named cases, clock passed in."""

from __future__ import annotations

import pytest

from foresail.scaling.coldstart import estimate_cold_start, is_steady, warmup_batch_sizes
from foresail.scaling.forecast import DAY, Forecaster
from foresail.replay.windows import TimeWindow


def test_time_window_average_and_maximum() -> None:
    w = TimeWindow(10)
    for t, v in [(0, 1.0), (5, 3.0), (9, 5.0)]:
        w.add(t, v)
    assert w.average(9) == pytest.approx(3.0)
    assert w.maximum(12) == 5.0  # the sample at 0 left the window
    assert w.average(12) == pytest.approx(4.0)
    assert w.average(100) is None
    with pytest.raises(ValueError, match="older"):
        w.add(1, 1.0)


@pytest.mark.parametrize(
    ("name", "lat", "window", "tol", "steady"),
    [
        ("too few", [10, 10], 5, 10, False),
        ("flat", [50, 10, 10, 10, 10, 10], 5, 10, True),
        ("still falling", [30, 25, 20, 15, 10], 5, 10, False),
        ("noise within tolerance", [10, 10.5, 9.6, 10.2, 10], 5, 10, True),
    ],
)
def test_is_steady(name: str, lat: list[float], window: int, tol: float, steady: bool) -> None:
    assert is_steady(lat, window, tol) is steady, name


@pytest.mark.parametrize(
    ("name", "mbs", "cap", "sizes"),
    [
        ("no batching", 0, None, [1]),
        ("batch of one", 1, None, [1]),
        ("powers of two", 8, None, [1, 2, 4, 8]),
        ("and the maximum", 12, None, [1, 2, 4, 8, 12]),
        ("capped by spec.warmup.maxBatchSize", 64, 8, [1, 2, 4, 8]),
        ("a cap above the model's own maximum changes nothing", 8, 64, [1, 2, 4, 8]),
        ("a cap on a model that does not batch", 0, 8, [1]),
    ],
)
def test_warmup_batch_sizes(name: str, mbs: int, cap: int | None, sizes: list[int]) -> None:
    assert warmup_batch_sizes(mbs, cap) == sizes, name


def test_cold_start_estimate_uses_recent_starts() -> None:
    est = estimate_cold_start([100.0] * 5 + [10.0] * 20)
    assert est is not None
    assert est.p50_seconds == 10.0
    assert est.samples == 20
    assert estimate_cold_start([]) is None


def test_forecaster_follows_a_trend_and_bounds_above() -> None:
    f = Forecaster()
    for t in range(0, 300, 5):
        f.observe(float(t), 10.0 + 0.5 * t + (3.0 if (t // 5) % 2 else -3.0))
    point = f.point(300.0 + 60)
    upper = f.upper(300.0, 60, 0.9, 5)
    assert point is not None and upper is not None
    assert point == pytest.approx(10 + 0.5 * 360, rel=0.15)
    assert upper > point


def test_forecaster_learns_a_daily_profile_after_two_days() -> None:
    f = Forecaster()
    for day in range(3):
        for t in range(0, int(DAY), 300):
            rate = 100.0 if 36_000 <= t < 43_200 else 10.0  # a busy 10:00-12:00
            f.observe(day * DAY + t, rate)
    at_9_55 = 3 * DAY + 35_700
    f.observe(at_9_55, 10.0)
    busy = f.point(3 * DAY + 36_300)
    assert busy is not None and busy > 30, "the daily peak is expected before it arrives (off-peak is 10)"
