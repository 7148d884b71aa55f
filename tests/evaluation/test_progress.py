"""Recent windows (throughput, latency percentiles) and the progress snapshot."""

from __future__ import annotations

import pytest

from foresail.evaluation.progress import RecentWindow, ShardProgress


@pytest.mark.parametrize(
    ("name", "events", "now", "since", "want"),
    [
        ("empty", [], 5.0, 0.0, 0.0),
        ("since the start, shorter than the window", [(1.0, 10), (2.0, 10)], 2.0, 0.0, 10.0),
        ("over the window", [(t, 5) for t in range(20)], 19.0, 0.0, 5.0),
        ("old events leave the window", [(1.0, 100), (15.0, 10)], 15.0, 0.0, 1.0),
        ("no time elapsed", [(0.0, 3)], 0.0, 0.0, 0.0),
    ],
)
def test_rate(name: str, events: list[tuple[float, int]], now: float, since: float, want: float) -> None:
    w = RecentWindow(span=10.0)
    for t, n in events:
        w.add(t, n, 1.0)
    assert w.rate(now, since) == pytest.approx(want), name


def test_latency_percentiles_ignore_failures_and_old_samples() -> None:
    w = RecentWindow(span=10.0)
    w.add(0.0, 1, 1000.0)  # leaves the window
    for i in range(1, 101):
        w.add(10.0 + i * 0.01, 1, float(i))
    w.add(11.5, 0, None)  # a failed request: counts in no percentile
    p50, p95, p99 = w.latency_percentiles(12.0)
    assert (p50, p95, p99) == (50.5, 95.05, 99.01)
    assert RecentWindow().latency_percentiles(0.0) == (None, None, None)


def test_max_samples_bounds_memory() -> None:
    w = RecentWindow(span=1e9, max_samples=10)
    for i in range(100):
        w.add(float(i), 1, float(i))
    assert w.latency_percentiles(100.0)[0] == 94.5


def test_progress_as_camel_case() -> None:
    p = ShardProgress(
        shard=1,
        total=10,
        done=4,
        ok=3,
        errors=1,
        correct=2,
        scored=3,
        eps=1.5,
        p50_ms=1.0,
        p95_ms=2.0,
        p99_ms=3.0,
        limit=4,
        throttled_s=0.0,
    )
    assert p.to_dict() == {
        "shard": 1,
        "total": 10,
        "done": 4,
        "ok": 3,
        "errors": 1,
        "correct": 2,
        "scored": 3,
        "eps": 1.5,
        "p50Ms": 1.0,
        "p95Ms": 2.0,
        "p99Ms": 3.0,
        "limit": 4,
        "throttledS": 0.0,
        "finished": False,
    }
