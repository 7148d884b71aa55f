"""Calibration curves (pure): one replica's throughput and latency against concurrency.

``foresail calibrate`` (and ``hack.calibrate`` with perf_analyzer) write a curve as JSON:
``{"model", "tool", "protocol", "points": [{"concurrency", "throughput_rps", "p50_ms", "p90_ms",
"p95_ms", "p99_ms", "avg_ms"}, ...]}``. ``capacity_from_curve`` reads the requests/s one replica serves
within a p99 SLO from it: the value for ``spec.scaling.capacityPerReplicaRps``. ``batch_model`` fits the
batch-latency model (``base_ms + per_item_ms x batch``) from it: the values for
``spec.scaling.calibration`` and the replay simulator's replica.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from foresail.scaling.coldstart import percentile

__all__ = ["batch_model", "capacity_from_curve", "curve_point"]


def curve_point(concurrency: int, latencies_ms: Sequence[float], seconds: float, items_per_request: int = 1) -> dict[str, float]:
    """One point of a curve from the latencies of the requests completed in ``seconds`` at ``concurrency``;
    throughput counts inferences (requests x ``items_per_request``), as perf_analyzer does."""
    if not latencies_ms or seconds <= 0:
        raise ValueError(f"concurrency {concurrency}: no request completed in {seconds:.1f}s")
    return {
        "concurrency": concurrency,
        "throughput_rps": round(len(latencies_ms) * items_per_request / seconds, 2),
        "p50_ms": round(percentile(latencies_ms, 50), 2),
        "p90_ms": round(percentile(latencies_ms, 90), 2),
        "p95_ms": round(percentile(latencies_ms, 95), 2),
        "p99_ms": round(percentile(latencies_ms, 99), 2),
        "avg_ms": round(sum(latencies_ms) / len(latencies_ms), 2),
    }


def capacity_from_curve(points: Sequence[Mapping[str, float]], slo_p99_ms: float) -> float | None:
    """Highest throughput of a calibration curve whose p99 meets the SLO (linear between points);
    None when not even the lightest load meets it."""
    pts = sorted(points, key=lambda p: p["throughput_rps"])
    best: float | None = None
    for a, b in zip([None, *pts], pts, strict=False):
        if b["p99_ms"] <= slo_p99_ms:
            best = b["throughput_rps"]
        elif a is not None and a["p99_ms"] <= slo_p99_ms < b["p99_ms"]:
            f = (slo_p99_ms - a["p99_ms"]) / (b["p99_ms"] - a["p99_ms"])
            best = a["throughput_rps"] + f * (b["throughput_rps"] - a["throughput_rps"])
            break
    return best


def batch_model(points: Sequence[Mapping[str, float]], max_batch: int) -> tuple[float, float]:
    """(base_ms, per_item_ms) of a replica batching up to ``max_batch``: a lone request (the lowest
    concurrency's median) takes base + per item; at the best throughput the replica runs full batches."""
    if not points or max_batch < 1:
        raise ValueError("a curve with points and max_batch >= 1 is needed")
    one = min(points, key=lambda p: p["concurrency"])
    best = max(points, key=lambda p: p["throughput_rps"])
    per = max(1e-3, (1000.0 / best["throughput_rps"] * max_batch - one["p50_ms"]) / max(max_batch - 1, 1))
    return max(0.1, one["p50_ms"] - per), per
