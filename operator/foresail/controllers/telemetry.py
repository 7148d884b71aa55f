"""The operator's own telemetry: Prometheus metrics about Foresail itself, served on the health port at /metrics.

(Not to be confused with the services' signals the autoscaler reads from Prometheus.) The registry is the
module's own, so the process metrics every exporter has (``process_resident_memory_bytes``,
``process_cpu_seconds_total``, ``process_open_fds``, ...) and ``python_info`` are registered on it explicitly.
Every label set of a service goes with the service (``forget``): 2,000 services created and deleted leave no series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from foresail.clients.caches import SKIPPED_APPLIES
from foresail.clients.informer import CacheHealth
from foresail.clients.kube import REQUESTS

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
    "watch_caches",
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


class _ApiRequests(Collector):
    """``foresail_apiserver_requests_total{resource, verb}``: every request of the process's clients
    (``clients.kube.REQUESTS``; LIST and WATCH told from GET), so a benchmark reads requests per tick; and
    ``foresail_applies_skipped_total{resource}``, the applies ``clients.caches.CachedKube`` did not send."""

    def collect(self) -> Iterator[Metric]:
        c = CounterMetricFamily("foresail_apiserver_requests", "Requests sent to the apiserver, by resource and verb.", labels=["resource", "verb"])
        for (resource, verb), n in sorted(REQUESTS.snapshot().items()):
            c.add_metric([resource, verb], n)
        yield c
        skipped = CounterMetricFamily(
            "foresail_applies_skipped", "Applies not sent: the live child already held what was rendered.", labels=["resource"]
        )
        for (resource, _), n in sorted(SKIPPED_APPLIES.snapshot().items()):
            skipped.add_metric([resource], n)
        yield skipped


class _Caches(Collector):
    """The watch-fed caches' health: synced, objects, seconds since the last event, relists."""

    def __init__(self) -> None:
        self.sources: list[Callable[[], list[CacheHealth]]] = []

    def collect(self) -> Iterator[Metric]:
        labels = ["kind", "selector"]
        synced = GaugeMetricFamily("foresail_cache_synced", "1 once the cache's first list completed.", labels=labels)
        objects = GaugeMetricFamily("foresail_cache_objects", "Objects the cache holds.", labels=labels)
        age = GaugeMetricFamily("foresail_cache_last_event_age_seconds", "Seconds since the cache last heard from the apiserver.", labels=labels)
        relists = CounterMetricFamily("foresail_cache_relists", "Lists after the first (410 Gone).", labels=labels)
        for source in self.sources:
            for h in source():
                key = [h.kind, h.selector]
                synced.add_metric(key, 1 if h.synced else 0)
                objects.add_metric(key, h.objects)
                relists.add_metric(key, h.relists)
                if h.last_event_age_s is not None:
                    age.add_metric(key, h.last_event_age_s)
        yield from (synced, objects, age, relists)


REGISTRY.register(_ApiRequests())
_CACHES = _Caches()
REGISTRY.register(_CACHES)


def watch_caches(health: Callable[[], list[CacheHealth]]) -> None:
    """Export the health of a set of caches (``clients.caches.Caches.health``)."""
    _CACHES.sources.append(health)


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
