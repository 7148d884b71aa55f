"""Warm-up steadiness and the cold-start estimator (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ColdStartEstimate", "estimate_cold_start", "is_steady", "percentile", "warmup_batch_sizes"]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def is_steady(latencies_ms: Sequence[float], window: int, tolerance_percent: float) -> bool:
    """True when the last ``window`` latencies all lie within ``tolerance_percent`` of their median."""
    if len(latencies_ms) < window:
        return False
    last = latencies_ms[-window:]
    med = percentile(last, 50)
    if med <= 0:
        return True
    return all(abs(x - med) <= med * tolerance_percent / 100.0 for x in last)


def warmup_batch_sizes(model_max_batch_size: int, cap: int | None = None) -> list[int]:
    """Batch sizes a warm-up exercises: 1, the powers of two below the maximum, and the maximum; the
    maximum is the model's own (0 = the model does not batch), lowered to ``cap`` (spec.warmup.maxBatchSize)."""
    max_batch_size = model_max_batch_size if cap is None else min(cap, model_max_batch_size)
    if max_batch_size <= 1:
        return [1]
    sizes = {1, max_batch_size}
    b = 2
    while b < max_batch_size:
        sizes.add(b)
        b *= 2
    return sorted(sizes)


@dataclass(frozen=True)
class ColdStartEstimate:
    p50_seconds: float
    p90_seconds: float
    samples: int


def estimate_cold_start(samples: Sequence[float], keep: int = 20) -> ColdStartEstimate | None:
    """Robust estimate over the most recent ``keep`` create-to-warm durations."""
    recent = [s for s in samples if s >= 0][-keep:]
    if not recent:
        return None
    return ColdStartEstimate(round(percentile(recent, 50), 2), round(percentile(recent, 90), 2), len(recent))
