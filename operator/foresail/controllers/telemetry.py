"""The operator's own telemetry: Prometheus metrics about Foresail itself, served on the health port at /metrics.

(Not to be confused with the services' signals the autoscaler reads from Prometheus.) The registry is the
module's own, so the process metrics every exporter has (``process_resident_memory_bytes``,
``process_cpu_seconds_total``, ``process_open_fds``, ...) and ``python_info`` are registered on it explicitly.
Every label set of a service goes with the service (``forget``): 2,000 services created and deleted leave no series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector, generate_latest

__all__ = [
    "ACTUAL",
    "AUTOSCALER_API_REQUESTS",
    "AUTOSCALER_LOOP",
    "AUTOSCALER_QUERIES",
    "COLD_START",
    "COLD_START_ESTIMATE",
    "DESIRED",
    "FAST_PATH",
    "FORECAST_ERROR",
    "HEADROOM",
    "REGISTRY",
    "VERBS",
    "WARMUPS",
    "WARMUPS_IN_FLIGHT",
    "WARMUP_SECONDS",
    "forget",
    "per_service",
    "render",
]

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
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
AUTOSCALER_LOOP = Histogram(
    "foresail_autoscaler_loop_seconds",
    "Duration of one pass of the autoscaler loop (all services).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
    registry=REGISTRY,
)
AUTOSCALER_QUERIES = Gauge(
    "foresail_autoscaler_queries_per_loop", "Prometheus queries the last pass of the loop ran (constant).", registry=REGISTRY
)
VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")
AUTOSCALER_API_REQUESTS = Gauge(
    "foresail_autoscaler_apiserver_requests_per_loop",
    "Requests the autoscaler's client sent to the apiserver in the last pass, by verb.",
    ["verb"],
    registry=REGISTRY,
)
DESIRED = Gauge("foresail_desired_replicas", "Replicas the autoscaler wants.", _LABELS, registry=REGISTRY)
ACTUAL = Gauge("foresail_actual_replicas", "Replicas the Deployment has (spec).", _LABELS, registry=REGISTRY)
FAST_PATH = Gauge(
    "foresail_fast_path", "1 when the last decision came from the fast path (burst onset, 2 s demand).", _LABELS, registry=REGISTRY
)
HEADROOM = Gauge("foresail_headroom", "Headroom multiplier over the forecast the error budget sized.", _LABELS, registry=REGISTRY)
FORECAST_ERROR = Gauge(
    "foresail_forecast_error_rps", "Forecast minus the rate that arrived at the forecast time.", _LABELS, registry=REGISTRY
)


# the metrics labelled by service (namespace and name their first two labels)
_PER_SERVICE: list[Counter | Gauge | Histogram] = [
    WARMUPS, WARMUP_SECONDS, COLD_START, COLD_START_ESTIMATE, DESIRED, ACTUAL, FAST_PATH, HEADROOM, FORECAST_ERROR,
]  # fmt: skip


def per_service(metric: Gauge) -> Gauge:
    """Register ``metric`` (namespace and service its first two labels) to be forgotten with its service."""
    _PER_SERVICE.append(metric)
    return metric


def forget(namespace: str, name: str) -> int:
    """Remove every label set of the service ``namespace/name``; returns how many were removed."""
    removed = 0
    for metric in _PER_SERVICE:
        # the label sets themselves (prometheus_client's own index): collect() would render every sample of
        # every service, per deleted service
        for values in [v for v in list(metric._metrics) if tuple(v[:2]) == (namespace, name)]:
            metric.remove(*values)
            removed += 1
    return removed


def render() -> bytes:
    return bytes(generate_latest(REGISTRY))
