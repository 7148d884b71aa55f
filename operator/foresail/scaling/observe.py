"""One service's observation and settings for ``decide`` (pure): listed objects and Prometheus signals in.

The autoscaler lists services, Deployments and pods and queries Prometheus once per tick for all
services; ``observe`` turns one service's share of that into the ``Observation`` the decision reads,
and ``service_settings`` its spec and resolved policy into ``ServiceSettings``.

Until the live autoscaler reads Triton's counters per window (the ``FleetSignals`` contract), the
signals come from today's four Prometheus queries: one arrival rate over the rate window, the queue and
the worst replica's p99 stand in for every window (``fleet_signals``), so the fast path is as fast as
that rate window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import pod_is_live, pod_is_ready, pod_is_warm, spec_replicas
from foresail.api.scalingpolicy import ResolvedBehavior
from foresail.scaling.capacity import Calibration, Routing
from foresail.scaling.decide import Observation, ServiceSettings
from foresail.scaling.signals import WINDOWS, FleetSignals, MetricsSource, WindowSignals

__all__ = ["ServiceSignals", "calibration", "fleet_signals", "observe", "service_settings"]


@dataclass
class ServiceSignals:
    """What Prometheus says about one service at one tick; ``errors`` say what is missing or bad."""

    arrival_rps: float | None = None
    queue: float | None = None
    p99_ms: float | None = None
    sample_age_s: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and None not in (self.arrival_rps, self.queue, self.p99_ms, self.sample_age_s)

    def rounded(self) -> dict[str, float]:
        """The finite values, rounded, by their status names (``status.observed``)."""
        named = {"arrivalRps": self.arrival_rps, "queueDepth": self.queue, "p99Ms": self.p99_ms, "ageSeconds": self.sample_age_s}
        return {k: r for k, v in named.items() if (r := _rounded(v)) is not None}


def _rounded(x: float | None, digits: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, digits)


def observe(
    isvc: InferenceService,
    deployment: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    signals: ServiceSignals | None,
    errors_for_all: Sequence[str] = (),
) -> tuple[Observation, ServiceSignals]:
    """The decision's view of a service, and the signals it used (``errors_for_all`` hit every service:
    Prometheus unreachable, no URL configured; a service without any series gets its own error)."""
    if signals is None:
        signals = ServiceSignals(errors=[*errors_for_all, "no series for this service"])
    live = [p for p in pods if pod_is_live(p)]
    gated = isvc.spec.warmup.enabled
    ready = sum(1 for p in live if pod_is_warm(p) or (not gated and pod_is_ready(p)))
    current = spec_replicas(deployment)
    cold = isvc.status.cold_start.p90_seconds if isvc.status.cold_start else None
    obs = Observation(
        signals=fleet_signals(signals),
        ready=ready,
        starting=max(0, max(current, len(live)) - ready),
        current=current,
        cold_start_s=cold,
        calibration=calibration(isvc),
    )
    return obs, signals


def fleet_signals(signals: ServiceSignals) -> FleetSignals | None:
    """Today's Prometheus signals as FleetSignals: the rate-window arrival rate (requests served or failed)
    and the p99 in every window, the queue as queued and in flight; None when any is missing or bad."""
    if not signals.ok:
        return None
    assert signals.arrival_rps is not None and signals.queue is not None and signals.p99_ms is not None
    rate, p99 = signals.arrival_rps, signals.p99_ms
    win = tuple(WindowSignals(w, rate, rate, 0.0, 0.0, 0.0, p99) for w in WINDOWS)
    return FleetSignals(win, queued=signals.queue, in_flight=signals.queue, source=MetricsSource.PROMETHEUS)


def calibration(isvc: InferenceService) -> Calibration:
    """What the service's capacity is computed from: spec.scaling.calibration or capacityPerReplicaRps, and routing."""
    sc = isvc.spec.scaling
    cal = sc.calibration
    routing = Routing(sc.routing.model.value)
    if cal is not None:
        return Calibration(cal.base_ms, cal.per_item_ms, cal.max_batch, sc.capacity_per_replica_rps, routing, sc.routing.connections)
    return Calibration(capacity_rps=sc.capacity_per_replica_rps, routing=routing, connections=sc.routing.connections)


def service_settings(isvc: InferenceService, behavior: ResolvedBehavior) -> ServiceSettings:
    sc = isvc.spec.scaling
    return ServiceSettings(
        behavior=behavior,
        min_replicas=sc.min_replicas,
        max_replicas=sc.max_replicas,
        slo_p99_ms=isvc.spec.slo.p99_latency_ms,
        fallback_replicas=sc.fallback.replicas,
        fallback_after_s=sc.fallback.after_seconds,
    )
