"""One service's observation and settings for ``decide`` (pure): listed objects and live signals in.

The autoscaler lists services, Deployments and pods and reads Triton's counters once per tick for all
services; ``serving_pods`` says which replicas count for the signals and since when, ``observe`` turns
one service's share into the ``Observation`` the decision reads, and ``service_settings`` its spec and
resolved policy into ``ServiceSettings``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import WARM_GATE, condition, parse_rfc3339, pod_is_live, pod_is_ready, pod_is_warm, spec_replicas
from foresail.api.scalingpolicy import ResolvedBehavior
from foresail.scaling.capacity import Calibration, Routing
from foresail.scaling.counters import ServiceSignals, ServingPod
from foresail.scaling.decide import Observation, ServiceSettings

__all__ = ["HEADLINE_WINDOW_S", "calibration", "observe", "service_settings", "serving_pods"]

HEADLINE_WINDOW_S = 10.0  # the window status shows first (the decision reads every window)


def serving_pods(pods: Sequence[Mapping[str, Any]], now: float) -> list[ServingPod]:
    """The replicas that serve (Ready, hence warm when gated) and since when: the later transition of
    Ready and the warm-up gate (``now`` when there is none, so that nothing before counts)."""
    gates = ("Ready", WARM_GATE)
    out = []
    for p in pods:
        if not pod_is_live(p) or not pod_is_ready(p):
            continue
        times = [parse_rfc3339(str(c["lastTransitionTime"])) for g in gates if (c := condition(p, g)) and c.get("lastTransitionTime")]
        since = max(times, default=now)
        out.append(ServingPod(p["metadata"]["name"], since, (p.get("status") or {}).get("podIP") or ""))
    return out


def observe(
    isvc: InferenceService,
    deployment: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    signals: ServiceSignals | None,
    errors_for_all: Sequence[str] = (),
) -> tuple[Observation, ServiceSignals]:
    """The decision's view of a service, and the signals it used (``errors_for_all`` hit every service:
    Prometheus unreachable, no URL configured)."""
    if signals is None:
        signals = ServiceSignals(None, errors=tuple(errors_for_all) or ("no signals for this service",))
    live = [p for p in pods if pod_is_live(p)]
    gated = isvc.spec.warmup.enabled
    ready = sum(1 for p in live if pod_is_warm(p) or (not gated and pod_is_ready(p)))
    current = spec_replicas(deployment)
    cold = isvc.status.cold_start.p90_seconds if isvc.status.cold_start else None
    obs = Observation(
        signals=signals.fleet if signals.ok else None,
        ready=ready,
        starting=max(0, max(current, len(live)) - ready),
        current=current,
        cold_start_s=cold,
        calibration=calibration(isvc),
    )
    return obs, signals


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
