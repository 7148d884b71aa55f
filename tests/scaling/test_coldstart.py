"""Warm-up steadiness, warm-up batch sizes and the cold-start estimator: named cases."""

from __future__ import annotations

import pytest

from foresail.scaling.coldstart import estimate_cold_start, is_steady, warmup_batch_sizes


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
