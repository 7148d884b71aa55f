"""The autoscaler: one loop for all InferenceServices (not a timer per object).

Each tick: snapshot the services, their Deployments and pods (three list calls), run the constant set
of Prometheus queries for all services at once, decide per service (pure ``scaling.decide``), write
only the replicas that change (scale subresource, field manager ``foresail-autoscaler``), then status
(recommendation and reason, forecast, capacity, observed metrics with their age, conditions) and an
Event for each scale action. Its own metrics: tick duration, queries per tick, desired vs actual,
forecast error, panic state.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from foresail.api.conditions import Condition, set_condition
from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import format_rfc3339, group_by_label, pod_is_live, pod_is_ready
from foresail.api.scalingpolicy import ScalingBehavior, ScalingPolicy
from foresail.clients.kube import Kube
from foresail.clients.prometheus import MetricsError, PromClient, ServiceMetrics
from foresail.controllers import metrics
from foresail.controllers.tenants import LABEL_TENANT, Arbitration, TenantArbiter
from foresail.render.isvc_status import is_warm
from foresail.render.triton import LABEL_ISVC
from foresail.scaling.decide import Decision, DecisionState, Observation, Settings, apply_grant, decide

__all__ = ["Autoscaler"]

log = logging.getLogger("foresail.autoscaler")


@dataclass
class _Service:
    state: DecisionState
    next_due: float = 0.0
    last_forecast: tuple[float, float] | None = None  # (for time, forecast)
    last_desired: int | None = None  # the last decision, the service's demand between its ticks


@dataclass(frozen=True)
class _Pending:
    decision: Decision
    metrics: ServiceMetrics
    obs: Observation
    tick: float
    policy_missing: bool


@dataclass
class Autoscaler:
    kube: Kube
    prom: PromClient | None
    tick: float = 5.0
    arbiter: TenantArbiter = field(init=False)
    min_runtime_s: float = 300.0
    services: dict[tuple[str, str], _Service] = field(default_factory=dict)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=8, thread_name_prefix="autoscaler"))

    def __post_init__(self) -> None:
        self.arbiter = TenantArbiter(self.kube, self.min_runtime_s)

    async def _io(self, fn: Any, *args: Any) -> Any:
        """Blocking API calls run on this loop's own threads, never queued behind kopf's handlers."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args))

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.tick_once(time.time())
            except Exception as e:
                log.exception("autoscaler tick failed: %r", e)
            metrics.AUTOSCALER_TICK.observe(time.monotonic() - started)
            await asyncio.sleep(max(0.0, self.tick - (time.monotonic() - started)))

    async def tick_once(self, now: float) -> None:
        q0 = self.prom.queries_run if self.prom else 0
        isvcs, deps, pods, policies, nodes, tenants, namespaces, quotas, (snap, global_errors) = await asyncio.gather(
            self._io(self.kube.list, "InferenceService"),
            self._io(self.kube.list, "Deployment", None, "app.kubernetes.io/managed-by=foresail"),
            self._io(self.kube.list, "Pod"),
            self._io(self.kube.list, "ScalingPolicy"),
            self._io(self.kube.list, "Node"),
            self._io(self.kube.list, "Tenant"),
            self._io(self.kube.list, "Namespace"),
            self._io(self.kube.list, "ResourceQuota", None, LABEL_TENANT),
            self._snapshot(now),
        )
        if self.prom:
            metrics.AUTOSCALER_QUERIES.set(self.prom.queries_run - q0)
        dep_by = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in deps}
        pods_by = group_by_label(pods, LABEL_ISVC)
        policy_by = {p["metadata"]["name"]: p for p in policies}

        # 1. decide for every service that is due (pure; nothing is written yet)
        live: list[tuple[InferenceService, dict[str, Any]]] = []
        pending: dict[tuple[str, str], _Pending] = {}
        for body in isvcs:
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            dep = dep_by.get(key)
            if dep is None or body["metadata"].get("deletionTimestamp"):
                continue
            try:
                isvc = InferenceService.model_validate(body)
            except ValidationError:
                continue  # the reconciler reports InvalidSpec
            live.append((isvc, dep))
            svc = self.services.get(key)
            if svc is None:
                svc = _Service(self._restore(isvc))
                await self._warm_forecaster(isvc, svc, policy_by, now)
                self.services[key] = svc
            if now < svc.next_due:
                continue
            try:
                pending[key] = self._decide(isvc, dep, pods_by.get(key, []), policy_by, snap.get(key), global_errors, svc, now)
            except Exception as e:
                log.exception("%s/%s: autoscaling failed: %r", key[0], key[1], e)
        for gone in set(self.services) - {(i.namespace, i.name) for i, _ in live}:
            del self.services[gone]

        # 2. arbitrate GPUs across tenants on what every service wants now
        desired = {}
        for isvc, dep in live:
            key = (isvc.namespace, isvc.name)
            want = pending[key].decision.replicas if key in pending else self.services[key].last_desired
            desired[key] = want if want is not None else int(dep["spec"].get("replicas", 0) or 0)
        arb = self.arbiter.arbitrate([i for i, _ in live], pods, nodes, tenants, namespaces, desired, now)

        # 3. act: replicas (capped by the grants), status, events; then tenants
        for isvc, dep in live:
            key = (isvc.namespace, isvc.name)
            try:
                await self._io(self._apply, isvc, dep, pending.get(key), arb, now)
            except Exception as e:
                log.exception("%s/%s: applying the decision failed: %r", key[0], key[1], e)
        await self._io(self.arbiter.write, arb, pods, quotas, now)

    async def _snapshot(self, now: float) -> tuple[dict[tuple[str, str], ServiceMetrics], list[str]]:
        if self.prom is None:
            return {}, ["no Prometheus URL configured (FORESAIL_PROMETHEUS_URL)"]
        return await self.prom.snapshot(now)

    async def _warm_forecaster(
        self, isvc: InferenceService, svc: _Service, policies: dict[str, dict[str, Any]], now: float
    ) -> None:
        """A restart does not forget: feed the forecaster the service's recent history from Prometheus."""
        sc = isvc.spec.scaling
        pbody = policies.get(sc.policy_ref or "")
        policy = ScalingPolicy.model_validate(pbody).behavior() if pbody else None
        b = ScalingBehavior().resolve(policy, sc.overrides)
        if not b.forecast_enabled or self.prom is None:
            return
        try:
            points = await self.prom.arrival_history(
                isvc.namespace, isvc.name, now - b.forecast_history_seconds, now, b.tick_seconds
            )
        except MetricsError as e:
            log.warning("%s/%s: no history for the forecaster: %s", isvc.namespace, isvc.name, e)
            return
        for t, rate in points:
            svc.state.forecaster.observe(t, max(rate, 0.0))
        if points:
            log.info("%s/%s: forecaster warmed with %d points of history", isvc.namespace, isvc.name, len(points))

    @staticmethod
    def _restore(isvc: InferenceService) -> DecisionState:
        st = isvc.status.scaling_state
        state = DecisionState.from_dict(st.model_dump(by_alias=True)) if st is not None else DecisionState()
        state.capacity.prior = isvc.spec.scaling.capacity_per_replica_rps
        if state.capacity.estimate is None:
            state.capacity.estimate = state.capacity.prior
        return state

    def _decide(
        self,
        isvc: InferenceService,
        dep: dict[str, Any],
        pods: list[dict[str, Any]],
        policies: dict[str, dict[str, Any]],
        m: ServiceMetrics | None,
        global_errors: list[str],
        svc: _Service,
        now: float,
    ) -> _Pending:
        sc = isvc.spec.scaling
        policy: ScalingBehavior | None = None
        policy_missing = False
        if sc.policy_ref:
            pbody = policies.get(sc.policy_ref)
            if pbody is None:
                policy_missing = True
            else:
                policy = ScalingPolicy.model_validate(pbody).behavior()
        behavior = ScalingBehavior().resolve(policy, sc.overrides)
        svc.next_due = now + behavior.tick_seconds - 0.5
        live = [p for p in pods if pod_is_live(p)]
        ready = sum(1 for p in live if is_warm(p) or (not isvc.spec.warmup.enabled and pod_is_ready(p)))
        current = int(dep["spec"].get("replicas", 0) or 0)
        cold = isvc.status.cold_start.p90_seconds if isvc.status.cold_start else None
        m = m or ServiceMetrics(errors=[*global_errors, "no series for this service"])
        obs = Observation(
            arrival_rps=m.arrival_rps if m.ok else None,
            queue=m.queue,
            p99_ms=m.p99_ms,
            sample_age_s=m.sample_age_s,
            ready=ready,
            starting=max(0, max(current, len(live)) - ready),
            current=current,
            cold_start_s=cold,
        )
        settings = Settings(
            behavior=behavior,
            min_replicas=sc.min_replicas,
            max_replicas=sc.max_replicas,
            slo_p99_ms=isvc.spec.slo.p99_latency_ms,
            fallback_replicas=sc.fallback.replicas,
            fallback_after_s=sc.fallback.after_seconds,
        )
        d = decide(settings, obs, svc.state, now)
        svc.last_desired = d.replicas
        return _Pending(d, m, obs, behavior.tick_seconds, policy_missing)

    def _apply(self, isvc: InferenceService, dep: dict[str, Any], p: _Pending | None, arb: Arbitration, now: float) -> None:
        """Write the (granted) replicas of a due service, or cap any service its grant shrank."""
        ns, name = isvc.namespace, isvc.name
        key = (ns, name)
        current = int(dep["spec"].get("replicas", 0) or 0)
        grant = arb.grant(ns, name)
        quota: dict[str, Any] | None = None
        if grant is not None:
            quota = {
                "tenant": arb.tenant_of[key],
                "requestedReplicas": grant.desired,
                "grantedReplicas": grant.units,
                "gpusPerReplica": isvc.spec.triton.gpus_per_replica,
                "reason": grant.reason,
            }
        if p is None:
            if grant is None or current <= grant.units:
                return
            d = Decision(current, "holding", metrics_ok=True)  # not due: only the cap applies
        else:
            d = p.decision
        if grant is not None:
            d = apply_grant(d, grant.units, grant.reason)
        if d.replicas != current:
            self.kube.scale(ns, name, d.replicas)
            body = isvc.model_dump(by_alias=True)
            verb = "ScaledUp" if d.replicas > current else "ScaledDown"
            self.kube.event(body, verb, f"replicas {current} -> {d.replicas}: {d.reason}")
            log.info("%s/%s: %s %d -> %d: %s", ns, name, verb, current, d.replicas, d.reason)
        if p is None:
            self._quota_status(isvc, quota, arb, now)
            return
        self._metrics(ns, name, d, current, p.obs, self.services[key], now, p.tick)
        self._status(isvc, d, p.metrics, p.obs, now, p.policy_missing, quota, arb.missing.get(key))

    def _quota_status(self, isvc: InferenceService, quota: dict[str, Any] | None, arb: Arbitration, now: float) -> None:
        gen, t = isvc.generation, datetime.fromtimestamp(now, UTC)

        def build(fresh: dict[str, Any]) -> dict[str, Any]:
            conds = [Condition.model_validate(c) for c in (fresh.get("status") or {}).get("conditions") or []]
            conds = _quota_condition(conds, quota, arb.missing.get((isvc.namespace, isvc.name)), gen, t)
            return {"quota": quota, "conditions": [c.model_dump(by_alias=True) for c in conds]}

        self.kube.update_status("InferenceService", isvc.namespace, isvc.name, build)

    def _metrics(
        self, ns: str, name: str, d: Decision, current: int, obs: Observation, svc: _Service, now: float, tick: float
    ) -> None:
        metrics.DESIRED.labels(ns, name).set(d.replicas)
        metrics.ACTUAL.labels(ns, name).set(current)
        metrics.PANIC.labels(ns, name).set(1 if d.panic else 0)
        if svc.last_forecast is not None and obs.arrival_rps is not None and now >= svc.last_forecast[0]:
            metrics.FORECAST_ERROR.labels(ns, name).set(svc.last_forecast[1] - obs.arrival_rps)
            svc.last_forecast = None
        if d.forecast_rps is not None and svc.last_forecast is None:
            lead = (obs.cold_start_s or 0.0) + tick  # the horizon decide() forecast for
            svc.last_forecast = (now + lead, d.forecast_rps)

    def _status(
        self,
        isvc: InferenceService,
        d: Decision,
        m: ServiceMetrics,
        obs: Observation,
        now: float,
        policy_missing: bool,
        quota: dict[str, Any] | None,
        missing_tenant: str | None,
    ) -> None:
        gen, t = isvc.generation, datetime.fromtimestamp(now, UTC)
        key = (isvc.namespace, isvc.name)
        announce: list[str] = []

        def build(fresh: dict[str, Any]) -> dict[str, Any]:
            conds = [Condition.model_validate(c) for c in (fresh.get("status") or {}).get("conditions") or []]
            if d.metrics_ok:
                conds = set_condition(
                    conds, "MetricsAvailable", True, "MetricsOK", "queue depth, p99 and arrival rate are fresh", gen, t
                )
            else:
                msg = "; ".join(m.errors)[:500] or "metrics unavailable"
                prev = next((c for c in conds if c.type == "MetricsAvailable"), None)
                if prev is None or prev.status != "False":
                    announce.append(msg)
                conds = set_condition(conds, "MetricsAvailable", False, "MetricsUnavailable", msg, gen, t)
            if policy_missing:
                msg = f"ScalingPolicy {isvc.spec.scaling.policy_ref!r} not found: using defaults"
                conds = set_condition(conds, "ScalingActive", False, "PolicyNotFound", msg, gen, t)
            else:
                conds = set_condition(
                    conds, "ScalingActive", d.metrics_ok, "Decided" if d.metrics_ok else "Holding", d.reason[:500], gen, t
                )
            conds = _quota_condition(conds, quota, missing_tenant, gen, t)
            limited = d.limited_by in ("maxReplicas", "minReplicas", "quota")
            conds = set_condition(
                conds,
                "ScalingLimited",
                limited,
                d.limited_by or "WithinBounds",
                d.reason[:500] if limited else "within bounds",
                gen,
                t,
            )
            rec: dict[str, Any] = {"replicas": d.replicas, "reason": d.reason, "time": format_rfc3339(now), "panic": d.panic}
            for k, v in (("demandRps", d.demand_rps), ("forecastRps", d.forecast_rps), ("capacityRps", d.capacity_rps)):
                if v is not None:
                    rec[k] = v
            observed = {"arrivalRps": m.arrival_rps, "queueDepth": m.queue, "p99Ms": m.p99_ms, "ageSeconds": m.sample_age_s}
            return {
                "desiredReplicas": d.replicas,
                "recommendation": rec,
                "observed": {**{k: _round(v) for k, v in observed.items() if _round(v) is not None}, "time": format_rfc3339(now)},
                "scalingState": self.services[key].state.to_dict(),
                "quota": quota,
                "conditions": [c.model_dump(by_alias=True) for c in conds],
            }

        self.kube.update_status("InferenceService", isvc.namespace, isvc.name, build)
        if announce:
            self.kube.event(isvc.model_dump(by_alias=True), "MetricsUnavailable", f"holding replicas: {announce[0]}", "Warning")


def _quota_condition(
    conds: list[Condition], quota: dict[str, Any] | None, missing_tenant: str | None, gen: int, t: datetime
) -> list[Condition]:
    if missing_tenant is not None:
        msg = f"spec.tenant: tenant {missing_tenant!r} does not exist; GPUs are not arbitrated"
        return set_condition(conds, "QuotaLimited", False, "TenantNotFound", msg, gen, t)
    if quota is None:
        return [c for c in conds if c.type != "QuotaLimited"]  # no tenant: nothing to say
    granted, asked = quota["grantedReplicas"], quota["requestedReplicas"]
    if granted < asked:
        msg = f"tenant {quota['tenant']!r} grants {granted} of {asked} replicas ({quota['gpusPerReplica']} GPU each): {quota['reason']}"
        return set_condition(conds, "QuotaLimited", True, "QuotaExceeded", msg[:1000], gen, t)
    msg = f"tenant {quota['tenant']!r} grants all {granted} replicas"
    return set_condition(conds, "QuotaLimited", False, "WithinQuota", msg, gen, t)


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 3)
