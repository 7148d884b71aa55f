"""The fleet's p99 from the replicas' summaries (pure): named cases of the mixture quantile."""

from __future__ import annotations

import math

import pytest

from foresail.scaling.latency import mixture_quantile

A = (10.0, 20.0, 30.0, 40.0, 50.0)  # latencies at 0.5, 0.9, 0.95, 0.99, 0.999
SLOW = (100.0, 200.0, 300.0, 400.0, 500.0)
NAN = (math.nan,) * 5

CASES: list[tuple[str, list[tuple[float, tuple[float, ...]]], float, float | None]] = [
    ("one replica: its own p99", [(5.0, A)], 0.99, 40.0),
    ("equal replicas: their p99, whatever the weights", [(5.0, A), (50.0, A)], 0.99, 40.0),
    ("one replica: its median", [(1.0, A)], 0.5, 10.0),
    ("between quantile points: linear", [(1.0, A)], 0.97, 35.0),
    ("half the requests slow: the fleet's p99 is the slow replica's p98", [(1.0, A), (1.0, SLOW)], 0.99, 375.0),
    ("a slow replica with 1% of the requests: far below its p99, above the fast one's", [(99.0, A), (1.0, SLOW)], 0.99, 48.395),
    ("no weight, NaN quantiles: left out", [(0.0, SLOW), (3.0, NAN), (2.0, A)], 0.99, 40.0),
    ("nothing measured", [(0.0, A), (1.0, NAN)], 0.99, None),
    ("quantiles out of order are made monotone (and jump)", [(1.0, (10.0, 30.0, 20.0, 40.0, 50.0))], 0.925, 30.0),
    ("one request in the window: every quantile is its latency", [(1.0, (80.0,) * 5)], 0.99, 80.0),
]  # fmt: skip


@pytest.mark.parametrize(("name", "replicas", "q", "want"), CASES, ids=[c[0] for c in CASES])
def test_mixture_quantile(name: str, replicas: list[tuple[float, tuple[float, ...]]], q: float, want: float | None) -> None:
    got = mixture_quantile(replicas, q)
    assert got == (None if want is None else pytest.approx(want, abs=0.01)), name
