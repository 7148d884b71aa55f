"""The autoscaler: one loop for all InferenceServices (not a timer per object).

Each pass: list the services, their Deployments and pods, policies, nodes, tenants, namespaces and
quotas (one list call each), run the constant set of Prometheus queries for all services at once,
then for every service whose decision is due: ``observe`` -> ``decide`` (pure, ``scaling``); arbitrate
GPUs across tenants on what every service wants (pure, ``quota``); write the tenants (namespace owner
labels, the quota backstop, Tenant status) first, so the backstop has room for the grants before pods
are created; then only the replicas that change (scale subresource, field manager
``foresail-autoscaler``), status (``scaling.status``) and an Event per scale action. Its own telemetry:
pass duration, queries per pass, desired vs actual, forecast error, headroom, fast path.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from foresail.api.conditions import Condition
from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import LABEL_ISVC, group_by_label, spec_replicas
from foresail.api.reasons import DecisionReason, Problem, Reason
from foresail.api.scalingpolicy import resolve_policy
from foresail.clients.kube import Kube
from foresail.clients.prometheus import MetricsError, PromClient
from foresail.controllers import service_telemetry, telemetry
from foresail.controllers.live_signals import LiveSignals, ServiceView
from foresail.controllers.tenants import TenantArbiter
from foresail.quota.snapshot import Arbitration
from foresail.render.tenant_quota import LABEL_TENANT
from foresail.scaling.counters import ServiceSignals
from foresail.scaling.decide import Decision, DecisionState, Observation, apply_grant, decide
from foresail.scaling.observe import observe, service_settings, serving_pods
from foresail.scaling.pause import pause_of, paused_decision
from foresail.scaling.status import autoscaler_status, quota_status

__all__ = ["Autoscaler"]

log = logging.getLogger("foresail.autoscaler")
Key = tuple[str, str]


@dataclass
class _Service:
    """What the loop remembers of a service between passes."""

    state: DecisionState
    next_due: float = 0.0
    last_forecast: tuple[float, float] | None = None  # (for time, forecast)
    last_desired: int | None = None  # the last decision: the service's demand between its decisions


@dataclass(frozen=True)
class _Pending:
    """A decision made this pass, not yet written."""

    decision: Decision
    signals: ServiceSignals
    obs: Observation
    tick: float
    policy_problem: Problem | None


@dataclass(frozen=True)
class _Lists:
    isvcs: list[dict[str, Any]]
    deployments: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    tenants: list[dict[str, Any]]
    namespaces: list[dict[str, Any]]
    quotas: list[dict[str, Any]]


@dataclass
class Autoscaler:
    kube: Kube
    prom: PromClient | None
    loop_seconds: float = 5.0
    batch_min_runtime_s: float = 300.0
    live: LiveSignals | None = None  # default: Prometheus only
    default_tenant: str | None = None  # tenancy mode open
    watch: tuple[str, ...] = ()  # the namespaces it manages (empty: all)
    require_tenant: bool = False  # the operator: services no tenant owns are granted no GPUs
    arbiter: TenantArbiter = field(init=False)
    services: dict[Key, _Service] = field(default_factory=dict)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=8, thread_name_prefix="autoscaler"))

    def __post_init__(self) -> None:
        self.arbiter = TenantArbiter(
            self.kube, self.batch_min_runtime_s, self.default_tenant, frozenset(self.watch), self.require_tenant
        )
        if self.live is None:
            self.live = LiveSignals(self.prom)

    async def _io(self, fn: Any, *args: Any) -> Any:
        """Blocking API calls run on this loop's own threads, never queued behind kopf's handlers."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args))

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.run_once(time.time())
            except Exception as e:
                log.exception("autoscaler pass failed: %r", e)
            telemetry.AUTOSCALER_LOOP.observe(time.monotonic() - started)
            await asyncio.sleep(max(0.0, self.loop_seconds - (time.monotonic() - started)))

    async def _list(self) -> _Lists:
        kinds = [
            ("InferenceService", None),
            ("Deployment", "app.kubernetes.io/managed-by=foresail"),
            ("Pod", None),
            ("ScalingPolicy", None),
            ("Node", None),
            ("Tenant", None),
            ("Namespace", None),
            ("ResourceQuota", LABEL_TENANT),
        ]
        return _Lists(*await asyncio.gather(*(self._io(self.kube.list, kind, None, sel) for kind, sel in kinds)))

    async def _signals(self, lists: _Lists, pods: dict[Key, list[dict[str, Any]]], now: float) -> tuple[dict[Key, ServiceSignals], list[str]]:
        """Every service's live signals: its model and serving replicas to the counters' reader."""
        assert self.live is not None
        views = {}
        for body in lists.isvcs:
            try:
                isvc = InferenceService.model_validate(body)
            except ValidationError:
                continue
            key = (isvc.namespace, isvc.name)
            views[key] = ServiceView(isvc.spec.model.name, serving_pods(pods.get(key, []), now))
        q0 = self.prom.queries_run if self.prom is not None else 0
        out = await self.live.read(now, views)
        telemetry.AUTOSCALER_QUERIES.set((self.prom.queries_run if self.prom is not None else 0) - q0)
        return out

    async def run_once(self, now: float) -> None:
        """One pass: decide for every due service, arbitrate, then write."""
        lists = await self._list()
        pods = group_by_label(lists.pods, LABEL_ISVC)
        signals, errors_for_all = await self._signals(lists, pods, now)
        deployments = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in lists.deployments}
        policies = {p["metadata"]["name"]: p for p in lists.policies}

        # 1. decide for every service that is due (pure; nothing is written yet)
        live: list[tuple[InferenceService, dict[str, Any]]] = []
        pending: dict[Key, _Pending] = {}
        for body in lists.isvcs:
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            dep = deployments.get(key)
            if dep is None or body["metadata"].get("deletionTimestamp") or (self.watch and key[0] not in self.watch):
                continue
            try:
                isvc = InferenceService.model_validate(body)
            except ValidationError:
                continue  # the reconciler reports InvalidSpec
            live.append((isvc, dep))
            svc = self.services.get(key)
            if svc is None:
                svc = self.services[key] = _Service(self._restore(isvc))
                await self._warm_history(isvc, svc, policies, now)
            if now < svc.next_due:
                continue
            try:
                pending[key] = self._decide(isvc, dep, pods.get(key, []), policies, signals.get(key), errors_for_all, svc, now)
            except Exception as e:
                log.exception("%s/%s: autoscaling failed: %r", key[0], key[1], e)
        for gone in set(self.services) - {(i.namespace, i.name) for i, _ in live}:
            del self.services[gone]

        # 2. arbitrate GPUs across tenants on what every service wants now
        desired = {}
        for isvc, dep in live:
            key = (isvc.namespace, isvc.name)
            want = pending[key].decision.replicas if key in pending else self.services[key].last_desired
            desired[key] = want if want is not None else spec_replicas(dep)
        arb = self.arbiter.arbitrate([i for i, _ in live], lists.pods, lists.nodes, lists.tenants, lists.namespaces, desired, now)

        # 3. act: the tenants first (the backstop makes room for the grants before pods are created), then
        # replicas (capped by the grants), status, events
        await self._io(self.arbiter.write, arb, lists.pods, lists.quotas, lists.tenants, now)
        for isvc, dep in live:
            try:
                await self._io(self._apply, isvc, dep, pending.get((isvc.namespace, isvc.name)), arb, now)
            except Exception as e:
                log.exception("%s/%s: applying the decision failed: %r", isvc.namespace, isvc.name, e)

    async def _warm_history(self, isvc: InferenceService, svc: _Service, policies: dict[str, Any], now: float) -> None:
        """A restart does not forget: refill the decision's arrival history from Prometheus."""
        b = resolve_policy(isvc.spec.scaling.policy_ref, isvc.spec.scaling.overrides, policies).behavior
        if self.prom is None:
            return
        try:
            points = await self.prom.arrival_history(isvc.namespace, isvc.name, now - b.history_seconds, now, b.tick_seconds)
        except MetricsError as e:
            log.warning("%s/%s: no arrival history: %s", isvc.namespace, isvc.name, e)
            return
        svc.state.warm(points, b.history_seconds)
        if points:
            log.info("%s/%s: decision history warmed with %d points", isvc.namespace, isvc.name, len(points))

    @staticmethod
    def _restore(isvc: InferenceService) -> DecisionState:
        st = isvc.status.scaling_state
        return DecisionState.from_dict(st.model_dump(by_alias=True)) if st is not None else DecisionState()

    def _decide(
        self,
        isvc: InferenceService,
        dep: dict[str, Any],
        pods: list[dict[str, Any]],
        policies: dict[str, Any],
        signals: ServiceSignals | None,
        errors_for_all: list[str],
        svc: _Service,
        now: float,
    ) -> _Pending:
        policy = resolve_policy(isvc.spec.scaling.policy_ref, isvc.spec.scaling.overrides, policies)
        tick = policy.behavior.tick_seconds
        svc.next_due = now + tick - 0.5
        obs, used = observe(isvc, dep, pods, signals, errors_for_all)
        pause = pause_of(isvc.metadata.get("annotations"))
        if pause is not None:
            d = paused_decision(pause, obs.current, used.ok)
            svc.last_desired = d.replicas
            return _Pending(d, used, obs, tick, policy.problem)
        d = decide(service_settings(isvc, policy.behavior), obs, svc.state, now)
        svc.last_desired = d.replicas
        return _Pending(d, used, obs, tick, policy.problem)

    def _apply(self, isvc: InferenceService, dep: dict[str, Any], p: _Pending | None, arb: Arbitration, now: float) -> None:
        """Write the (granted) replicas of a due service, or cap any service its grant shrank."""
        ns, name = isvc.namespace, isvc.name
        current = spec_replicas(dep)
        grant = arb.grant(ns, name)
        quota = arb.quota_of(isvc)
        missing_tenant = arb.membership.missing.get((ns, name))
        if p is None and (grant is None or current <= grant.units):
            return  # not due, and no shrunk grant to apply
        d = p.decision if p is not None else Decision(current, DecisionReason.NOT_DUE, "holding between decisions", True)
        if grant is not None:
            d = apply_grant(d, grant.units, grant.reason)
        if d.replicas != current:
            self.kube.scale(ns, name, d.replicas)
            verb = Reason.SCALED_UP if d.replicas > current else Reason.SCALED_DOWN
            self.kube.event(isvc.model_dump(by_alias=True), verb, f"replicas {current} -> {d.replicas}: {d.reason}: {d.message}")
            log.info("%s/%s: %s %d -> %d: %s: %s", ns, name, verb, current, d.replicas, d.reason, d.message)
        if p is None:
            self.kube.update_status(
                "InferenceService", ns, name, lambda fresh: quota_status(_conditions(fresh), quota, missing_tenant, isvc.generation, now)
            )
            return
        self._telemetry(ns, name, d, current, p.obs, self.services[(ns, name)], now, p.tick)
        service_telemetry.record(isvc, d, p.obs)
        announce: list[str] = []

        def build(fresh: dict[str, Any]) -> dict[str, Any]:
            state = self.services[(ns, name)].state.to_dict()
            update = autoscaler_status(
                _conditions(fresh), d, p.signals, p.policy_problem, quota, missing_tenant, state, isvc.generation, now
            )
            announce[:] = [update.announce] if update.announce else []
            return update.patch

        self.kube.update_status("InferenceService", ns, name, build)
        if announce:
            self.kube.event(isvc.model_dump(by_alias=True), Reason.METRICS_UNAVAILABLE, f"holding replicas: {announce[0]}", "Warning")

    def _telemetry(
        self, ns: str, name: str, d: Decision, current: int, obs: Observation, svc: _Service, now: float, tick: float
    ) -> None:
        telemetry.DESIRED.labels(ns, name).set(d.replicas)
        telemetry.ACTUAL.labels(ns, name).set(current)
        telemetry.FAST_PATH.labels(ns, name).set(1 if d.reason in (DecisionReason.FAST_PATH, DecisionReason.BURST_ONSET) else 0)
        if d.headroom is not None:
            telemetry.HEADROOM.labels(ns, name).set(d.headroom)
        if svc.last_forecast is not None and d.signals_ok and obs.signals is not None and now >= svc.last_forecast[0]:
            telemetry.FORECAST_ERROR.labels(ns, name).set(svc.last_forecast[1] - obs.signals.window(10.0).arrival_rps)
            svc.last_forecast = None
        if d.forecast_rps is not None and svc.last_forecast is None:
            svc.last_forecast = (now + (d.lead_s or tick), d.forecast_rps)


def _conditions(obj: dict[str, Any]) -> list[Condition]:
    return [Condition.model_validate(c) for c in (obj.get("status") or {}).get("conditions") or []]
