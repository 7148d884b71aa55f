"""Per-service gauges of the autoscaler's last decision, for the dashboard and the alerts (charts/foresail/
dashboards, charts/foresail/rules): what arrived, the forecast, the capacity, replicas ready, p99 against the
SLO, the queue, late requests against the error budget, and the conditions a platform team alerts on.

Served with the rest of the operator's telemetry (``telemetry.REGISTRY``) at the health port's /metrics.
"""

from __future__ import annotations

from prometheus_client import Gauge

from foresail.api.inferenceservice import InferenceService
from foresail.api.reasons import ConditionType, DecisionReason, Limit
from foresail.controllers.telemetry import REGISTRY, per_service
from foresail.scaling.decide import Decision, Observation

__all__ = ["CONDITION", "record"]

_LABELS = ("namespace", "inferenceservice")


def _gauge(name: str, doc: str, labels: tuple[str, ...] = _LABELS) -> Gauge:
    return per_service(Gauge(name, doc, labels, registry=REGISTRY))  # removed with its service (telemetry.forget)


CONDITION = _gauge(
    "foresail_inferenceservice_condition",
    "1 when the condition holds at the last decision (MetricsAvailable, QuotaLimited, Paused), else 0.",
    (*_LABELS, "condition"),
)
ARRIVAL = _gauge("foresail_arrival_rps", "Requests/s that arrived over the 10 s window (NaN: metrics unavailable).")
FORECAST = _gauge("foresail_forecast_rps", "The forecast the decision sized for (NaN: none).")
CAPACITY = _gauge("foresail_capacity_per_replica_rps", "Requests/s one replica serves within the SLO (NaN: no estimate).")
READY = _gauge("foresail_ready_replicas", "Replicas serving (warm).")
P99 = _gauge("foresail_p99_ms", "Request-weighted p99 latency of the warm replicas over the 10 s window, ms (NaN: not measured).")
SLO = _gauge("foresail_slo_p99_ms", "spec.slo.p99LatencyMs.")
QUEUED = _gauge("foresail_queued_requests", "Requests queued in Triton now.")
LATE = _gauge("foresail_late_percent", "Share of requests later than the SLO, measured (NaN: not yet).")
BUDGET = _gauge("foresail_error_budget_percent", "The error budget the decision spends (NaN: forecast off).")
NAN = float("nan")


def _or_nan(x: float | None) -> float:
    return NAN if x is None else x


def record(isvc: InferenceService, d: Decision, obs: Observation) -> None:
    """The gauges of one service after a decision."""
    ns, name = isvc.namespace, isvc.name
    holds = {
        ConditionType.METRICS_AVAILABLE: obs.signals is not None,
        ConditionType.QUOTA_LIMITED: d.limited_by == Limit.QUOTA,
        ConditionType.PAUSED: d.reason == DecisionReason.PAUSED,
    }
    for cond, on in holds.items():
        CONDITION.labels(ns, name, cond.value).set(1 if on else 0)
    w = obs.signals.window(10.0) if obs.signals is not None else None
    ARRIVAL.labels(ns, name).set(NAN if w is None else w.arrival_rps)
    P99.labels(ns, name).set(NAN if w is None or w.p99_ms is None else w.p99_ms)  # NaN: not measured
    QUEUED.labels(ns, name).set(NAN if obs.signals is None else obs.signals.queued)
    FORECAST.labels(ns, name).set(_or_nan(d.forecast_rps))
    CAPACITY.labels(ns, name).set(_or_nan(d.capacity_rps))
    READY.labels(ns, name).set(obs.ready)
    SLO.labels(ns, name).set(isvc.spec.slo.p99_latency_ms)
    LATE.labels(ns, name).set(_or_nan(d.measured_late_percent))
    BUDGET.labels(ns, name).set(_or_nan(d.budget_percent))
