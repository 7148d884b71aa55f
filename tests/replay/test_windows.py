"""The replayed baselines' time windows (pure, clock passed in)."""

from __future__ import annotations

import pytest

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
