"""The operator's own Prometheus metrics (served on the health port at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["COLD_START", "COLD_START_ESTIMATE", "REGISTRY", "WARMUPS", "WARMUPS_IN_FLIGHT", "WARMUP_SECONDS", "render"]

REGISTRY = CollectorRegistry()
_LABELS = ("namespace", "inferenceservice")

WARMUPS = Counter(
    "foresail_warmups_total", "Warm-ups finished, by result (warm, failed, replaced).", [*_LABELS, "result"], registry=REGISTRY
)
WARMUPS_IN_FLIGHT = Gauge("foresail_warmups_in_flight", "Warm-ups running now.", registry=REGISTRY)
WARMUP_SECONDS = Histogram(
    "foresail_warmup_seconds",
    "Time from Triton ready to warm.",
    _LABELS,
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
    registry=REGISTRY,
)
COLD_START = Histogram(
    "foresail_cold_start_seconds",
    "Pod creation to warm, by phase (scheduled, containers_ready, warm).",
    [*_LABELS, "phase"],
    buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600),
    registry=REGISTRY,
)
COLD_START_ESTIMATE = Gauge(
    "foresail_cold_start_estimate_seconds",
    "The cold-start estimate the autoscaler uses (p50, p90).",
    [*_LABELS, "quantile"],
    registry=REGISTRY,
)


def render() -> bytes:
    return bytes(generate_latest(REGISTRY))
