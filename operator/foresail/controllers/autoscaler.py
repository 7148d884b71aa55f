"""The autoscaler: one loop for all InferenceServices (not a timer per object).

Each pass: list the services, their Deployments and pods, policies, nodes, tenants, namespaces and
quotas (one list call each), run the constant set of Prometheus queries for all services at once,
then for every service whose decision is due: ``observe`` -> ``decide`` (pure, ``scaling``); arbitrate
GPUs across tenants on what every service wants (pure, ``quota``); write the tenants (namespace owner
labels, the quota backstop, Tenant status) first, so the backstop has room for the grants before pods
are created; then only the replicas that change (scale subresource, field manager
``foresail-autoscaler``), status (``scaling.status``) and an Event per scale action, the services' writes
concurrently on the loop's 8 threads. Its own telemetry: pass duration, queries per pass, apiserver
requests per pass (by verb), desired vs actual, forecast error, headroom, fast path. Status is written on the object as the pass listed it (no read before the
write; a conflict re-reads) and only when it changes; a decision's status only when something a reader
needs moved, else at most every ``throttle.refresh_s`` (``scaling.status_throttle``: what staleness costs).

A service first seen (a restart, a failover) gets its arrival history from Prometheus in the background,
``HISTORY_CONCURRENCY`` at a time: the pass never waits for it, and until it arrives the service decides on
its live signals alone. Arbitration runs on a thread, so the event loop (the lease renewal) is never held.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from foresail.api.conditions import Condition
from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import LABEL_ISVC, group_by_label, spec_replicas
from foresail.api.parsed import ParsedCache
from foresail.api.reasons import DecisionReason, Problem, Reason
from foresail.api.scalingpolicy import resolve_policy
from foresail.clients.kube import FIELD_MANAGER, SCALE_MANAGER, Kube
from foresail.clients.prometheus import MetricsError, PromClient
from foresail.controllers import rollout_evals, rollouts, service_telemetry, telemetry
from foresail.controllers.live_signals import LiveSignals, ServiceView
from foresail.controllers.liveness import Heartbeat
from foresail.controllers.tenants import TenantArbiter
from foresail.quota.snapshot import Arbitration
from foresail.render.meta import controlled_by
from foresail.render.tenant_quota import LABEL_TENANT
from foresail.rollout.steps import StepAction
from foresail.scaling.counters import ServiceSignals
from foresail.scaling.decide import Decision, DecisionState, Observation, apply_grant, decide
from foresail.scaling.observe import observe, service_settings, serving_pods
from foresail.scaling.pause import pause_of, paused_decision
from foresail.scaling.status import autoscaler_status, quota_status
from foresail.scaling.status_throttle import Throttle, worth_writing
from foresail.scaling.writers import Seen, contest_condition, keep_intent, replica_writers

__all__ = ["HISTORY_CONCURRENCY", "Autoscaler"]

log = logging.getLogger("foresail.autoscaler")
Key = tuple[str, str]
HISTORY_CONCURRENCY = 8  # history range queries in flight at once
LIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"  # what pod_is_live keeps, asked of the apiserver


@dataclass
class _Service:
    """What the loop remembers of a service between passes."""

    state: DecisionState
    next_due: float = 0.0
    last_forecast: tuple[float, float] | None = None  # (for time, forecast)
    last_desired: int | None = None  # the last decision: the service's demand between its decisions
    writers_seen: Seen | None = None  # other writers of its replicas, last seen when
    status_written: float | None = None  # when this process last wrote its status after a decision (wall time)


@dataclass(frozen=True)
class _Pending:
    """A decision made this pass, not yet written."""

    decision: Decision
    signals: ServiceSignals
    obs: Observation
    tick: float
    policy_problem: Problem | None
    writers: list[str]  # managers other than Foresail's that wrote the Deployment's replicas
    rollout: rollouts.RolloutPass | None = None  # a service with rollouts: its slots and the step machine's decision


@dataclass(frozen=True)
class _Lists:
    """What one pass listed; None: that list failed this pass (the services are listed or the pass fails)."""

    isvcs: list[dict[str, Any]]
    deployments: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    policies: list[dict[str, Any]] | None
    nodes: list[dict[str, Any]] | None
    tenants: list[dict[str, Any]] | None
    namespaces: list[dict[str, Any]] | None
    quotas: list[dict[str, Any]] | None


ESSENTIAL = 3  # services, Deployments, pods: without them no service can be decided


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
    throttle: Throttle = field(default_factory=Throttle)  # which decisions' status is written (scaling.status_throttle)
    arbiter: TenantArbiter = field(init=False)
    services: dict[Key, _Service] = field(default_factory=dict)
    # the services' models, parsed once per resourceVersion (not once or twice per pass)
    parsed: ParsedCache[InferenceService] = field(default_factory=lambda: ParsedCache(InferenceService))
    heartbeat: Heartbeat = field(default_factory=Heartbeat)  # the health check's view of the loop
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=8, thread_name_prefix="autoscaler"))
    histories: dict[Key, asyncio.Task[None]] = field(default_factory=dict)  # history fetches in flight
    history_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(HISTORY_CONCURRENCY))

    def __post_init__(self) -> None:
        self.arbiter = TenantArbiter(
            self.kube, self.batch_min_runtime_s, self.default_tenant, frozenset(self.watch), self.require_tenant
        )
        if self.live is None:
            self.live = LiveSignals(self.prom)
        self.live.progress = self._progress

    async def _io(self, fn: Any, *args: Any) -> Any:
        """Blocking API calls run on this loop's own threads, never queued behind kopf's handlers."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args))

    async def run(self) -> None:
        self.heartbeat.start(time.monotonic())
        try:
            while True:
                started, sent = time.monotonic(), self.kube.sent.copy()
                try:
                    await self.run_once(time.time())
                    self.heartbeat.beat(time.monotonic())
                except Exception as e:
                    log.exception("autoscaler pass failed: %r", e)
                telemetry.AUTOSCALER_LOOP.observe(time.monotonic() - started)
                for verb in telemetry.VERBS:
                    telemetry.AUTOSCALER_API_REQUESTS.labels(verb).set(self.kube.sent[verb] - sent[verb])
                await asyncio.sleep(max(0.0, self.loop_seconds - (time.monotonic() - started)))
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the history fetches in flight."""
        tasks = list(self.histories.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _list(self) -> _Lists:
        kinds = [
            ("InferenceService", None, None),
            ("Deployment", "app.kubernetes.io/managed-by=foresail", None),
            # every pod, not only Foresail's: the GPU supply subtracts what the others hold; finished pods hold nothing
            ("Pod", None, LIVE_PODS),
            ("ScalingPolicy", None, None),
            ("Node", None, None),
            ("Tenant", None, None),
            ("Namespace", None, None),
            ("ResourceQuota", LABEL_TENANT, None),
        ]
        got = await asyncio.gather(*(self._io(self.kube.list, kind, None, sel, fields) for kind, sel, fields in kinds), return_exceptions=True)
        for (kind, _, _), r in zip(kinds, got, strict=True):
            if isinstance(r, BaseException):
                log.warning("listing %s failed: %r", kind, r)
        if isinstance(failed := next((r for r in got[:ESSENTIAL] if isinstance(r, BaseException)), None), BaseException):
            raise failed
        listed: list[Any] = [None if isinstance(r, BaseException) else r for r in got]
        return _Lists(*listed)

    async def _signals(self, lists: _Lists, pods: dict[Key, list[dict[str, Any]]], now: float) -> tuple[dict[Key, ServiceSignals], list[str]]:
        """Every service's live signals: its model and serving replicas to the counters' reader."""
        assert self.live is not None
        views = {}
        for body in lists.isvcs:
            try:
                isvc = self.parsed.get(body)
            except ValidationError:
                continue
            key = (isvc.namespace, isvc.name)
            views[key] = ServiceView(isvc.spec.model.name, serving_pods(pods.get(key, []), now))
        q0 = self.prom.queries_run if self.prom is not None else 0
        out = await self.live.read(now, views)
        telemetry.AUTOSCALER_QUERIES.set((self.prom.queries_run if self.prom is not None else 0) - q0)
        return out

    def _progress(self) -> None:
        self.heartbeat.progress(time.monotonic())

    async def run_once(self, now: float) -> None:
        """One pass: decide for every due service, arbitrate, then write (each step beats the liveness
        check's progress: a long pass that keeps moving is not a stall)."""
        lists = await self._list()
        self._progress()
        pods = group_by_label(lists.pods, LABEL_ISVC)
        signals, errors_for_all = await self._signals(lists, pods, now)
        deployments = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in lists.deployments}
        policies = {p["metadata"]["name"]: p for p in lists.policies or []}

        # 1. decide for every service that is due (pure; nothing is written yet)
        live: list[tuple[InferenceService, dict[str, Any]]] = []
        pending: dict[Key, _Pending] = {}
        for body in lists.isvcs:
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            dep = deployments.get(key)
            if dep is None or body["metadata"].get("deletionTimestamp") or (self.watch and key[0] not in self.watch):
                continue
            try:
                isvc = self.parsed.get(body)
            except ValidationError:
                continue  # the reconciler reports InvalidSpec
            if not controlled_by(dep, isvc):
                continue  # a Deployment of that name (labels can be copied) the service does not control: NameTaken
            live.append((isvc, dep))
            if lists.policies is None and isvc.spec.scaling.policy_ref:
                continue  # its policy is unknown this pass: hold rather than decide on the defaults
            try:  # one service's failure is its own: the others are decided and written
                svc = self.services.get(key)
                if svc is None:
                    svc = self.services[key] = _Service(self._restore(isvc))
                    self._start_history(key, isvc, svc, policies, now)
                if now < svc.next_due:
                    continue
                slots = rollouts.slots_of(isvc, deployments)
                rollout = None
                if rollouts.involved(isvc, slots):
                    seen = await rollouts.observe(self.prom, isvc, slots, pods.get(key, []), now)
                    ev = await self._io(rollouts.evaluate, self.kube, isvc, slots, pods.get(key, []))
                    rollout = rollouts.decide(isvc, slots, seen, now, pods.get(key, []), ev)
                pending[key] = self._decide(isvc, dep, pods.get(key, []), policies, signals.get(key), errors_for_all, svc, now, rollout)
                self._progress()
            except Exception as e:
                log.exception("%s/%s: autoscaling failed: %r", key[0], key[1], e)
                with contextlib.suppress(Exception):
                    await self._io(self.kube.event, body, Reason.AUTOSCALING_FAILED, f"this pass's decision failed: {e!r}"[:1000], "Warning")
        listed = {(b["metadata"]["namespace"], b["metadata"]["name"]) for b in lists.isvcs}
        self.parsed.retain(listed)
        for gone in set(self.services) - {(i.namespace, i.name) for i, _ in live}:
            del self.services[gone]
            if (task := self.histories.pop(gone, None)) is not None:
                task.cancel()
            if gone not in listed:
                telemetry.forget(*gone)  # deleted: a pass that raced the delete may have set its gauges again

        # 2. arbitrate GPUs across tenants on what every service wants now
        desired = {}
        for isvc, dep in live:
            key = (isvc.namespace, isvc.name)
            svc = self.services.get(key)
            want = pending[key].decision.replicas if key in pending else (svc.last_desired if svc else None)
            desired[key] = want if want is not None else spec_replicas(dep)
            if key in pending and (rp := pending[key].rollout) is not None:
                desired[key] = rp.wanted(desired[key])  # both revisions' replicas (a surge replica at total 1)
        arb = await self._arbitrate(lists, [i for i, _ in live], desired, now)
        if not isinstance(arb, str):
            self._progress()

        # 3. act: the tenants first (the backstop makes room for the grants before pods are created), then
        # replicas (capped by the grants; without arbitration, by the current replicas), status, events
        bodies = {(b["metadata"]["namespace"], b["metadata"]["name"]): b for b in lists.isvcs}

        async def apply(isvc: InferenceService, dep: dict[str, Any]) -> None:
            key = (isvc.namespace, isvc.name)
            try:
                await self._io(self._apply, isvc, dep, pending.get(key), arb, now, bodies[key])
                self._progress()  # a write that failed (an apiserver out of reach) is no progress
            except Exception as e:
                log.exception("%s/%s: applying the decision failed: %r", isvc.namespace, isvc.name, e)

        todo = [(isvc, dep) for isvc, dep in live if not self._idle(isvc, dep, pending.get((isvc.namespace, isvc.name)), arb)]
        await asyncio.gather(*(apply(isvc, dep) for isvc, dep in todo))  # as many at once as the pool has threads

    async def _arbitrate(
        self, lists: _Lists, isvcs: list[InferenceService], desired: dict[Key, int], now: float
    ) -> Arbitration | str:
        """The grants, written to the tenants; or why there are none this pass (a failed list, arbitration or
        write): then no service grows, and the others' decisions still apply."""
        if lists.nodes is None or lists.tenants is None or lists.namespaces is None or lists.quotas is None:
            return "tenant arbitration unavailable: listing nodes, tenants, namespaces or quotas failed"
        try:
            # on a thread: the event loop (the leader lease's renewal among its tasks) is never held by it
            arb: Arbitration = await self._io(self.arbiter.arbitrate, isvcs, lists.pods, lists.nodes, lists.tenants, lists.namespaces, desired, now)
            await self._io(self.arbiter.write, arb, lists.pods, lists.quotas, lists.tenants, now)
        except Exception as e:
            log.exception("tenant arbitration failed: %r", e)
            return f"tenant arbitration failed: {e!r}"[:500]
        return arb

    def _start_history(self, key: Key, isvc: InferenceService, svc: _Service, policies: dict[str, Any], now: float) -> None:
        """Fetch the service's arrival history in the background (``history_slots`` at once); it decides on
        live signals meanwhile."""
        if self.prom is None:
            return
        task = asyncio.get_running_loop().create_task(self._warm_history(isvc, svc, policies, now), name=f"history {key[0]}/{key[1]}")
        self.histories[key] = task
        task.add_done_callback(lambda t: self.histories.pop(key, None) if self.histories.get(key) is t else None)

    async def _warm_history(self, isvc: InferenceService, svc: _Service, policies: dict[str, Any], now: float) -> None:
        """A restart does not forget: refill the decision's arrival history from Prometheus (in the background)."""
        b = resolve_policy(isvc.spec.scaling.policy_ref, isvc.spec.scaling.overrides, policies).behavior
        assert self.prom is not None
        try:
            async with self.history_slots:
                points = await self.prom.arrival_history(isvc.namespace, isvc.name, now - b.history_seconds, now, b.tick_seconds)
        except MetricsError as e:
            log.warning("%s/%s: no arrival history: %s", isvc.namespace, isvc.name, e)
            return
        except Exception as e:  # a background task: nobody else would see it
            log.exception("%s/%s: history warm-up failed: %r", isvc.namespace, isvc.name, e)
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
        rollout: rollouts.RolloutPass | None = None,
    ) -> _Pending:
        policy = resolve_policy(isvc.spec.scaling.policy_ref, isvc.spec.scaling.overrides, policies)
        tick = policy.behavior.tick_seconds
        svc.next_due = now + tick - 0.5
        writers = replica_writers(dep, (FIELD_MANAGER, SCALE_MANAGER))
        if rollout is not None:  # the decision sizes both slots together
            dep = {**dep, "spec": {**dep.get("spec", {}), "replicas": rollout.current()}}
        intent = svc.last_desired if svc.last_desired is not None else isvc.status.desired_replicas
        obs, used = observe(isvc, keep_intent(dep, writers, intent), pods, signals, errors_for_all)
        pause = pause_of(isvc.metadata.get("annotations"))
        if pause is not None:
            d = paused_decision(pause, obs.current, used.ok)
            svc.last_desired = d.replicas
            return _Pending(d, used, obs, tick, policy.problem, writers, rollout)
        d = decide(service_settings(isvc, policy.behavior), obs, svc.state, now)
        svc.last_desired = d.replicas
        return _Pending(d, used, obs, tick, policy.problem, writers, rollout)

    @staticmethod
    def _idle(isvc: InferenceService, dep: dict[str, Any], p: _Pending | None, arb: Arbitration | str) -> bool:
        """Whether ``_apply`` has nothing to write for the service: it is not due, and either it has rollouts
        (their slots' replicas change only when it decides), there are no grants this pass, or its grant
        leaves its current replicas. The pass sends only the others to the pool (a thread hop per service
        was a good part of a pass at 2,000 services that were mostly not due)."""
        if p is not None:
            return False
        if rollouts.involved(isvc, rollouts.slots_of(isvc, {(isvc.namespace, isvc.name): dep})):
            return True
        if isinstance(arb, str):
            return True
        grant = arb.grant(isvc.namespace, isvc.name)
        return grant is None or spec_replicas(dep) <= grant.units

    def _apply(
        self, isvc: InferenceService, dep: dict[str, Any], p: _Pending | None, arb: Arbitration | str, now: float, listed: dict[str, Any]
    ) -> None:
        """Write the (granted) replicas of a due service, or cap any service its grant shrank."""
        ns, name = isvc.namespace, isvc.name
        if p is not None and p.rollout is not None:
            self._apply_rollout(isvc, p, p.rollout, arb, now, listed)
            return
        if self._idle(isvc, dep, p, arb):
            return
        current = spec_replicas(dep)
        if isinstance(arb, str):  # no arbitration this pass: decisions apply, none grows past its replicas
            if p is None:
                return
            grant, quota, missing_tenant = None, isvc.status.quota, None
            d = apply_grant(p.decision, current, arb)
        else:
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
                "InferenceService",
                ns,
                name,
                lambda fresh: quota_status(_conditions(fresh), quota, missing_tenant, isvc.generation, now),
                listed=listed,
            )
            return
        self._telemetry(ns, name, d, current, p.obs, self.services[(ns, name)], now, p.tick)
        service_telemetry.record(isvc, d, p.obs)
        announce: list[str] = []
        svc = self.services[(ns, name)]
        contest = contest_condition([], p.writers, svc.writers_seen, d.replicas, isvc.generation, now)
        svc.writers_seen = contest.seen

        def build(fresh: dict[str, Any]) -> dict[str, Any] | None:
            state = svc.state.to_dict()
            conds = contest_condition(_conditions(fresh), p.writers, contest.seen, d.replicas, isvc.generation, now).conditions
            update = autoscaler_status(conds, d, p.signals, p.policy_problem, quota, missing_tenant, state, isvc.generation, now)
            if worth_writing(fresh.get("status") or {}, update.patch, svc.status_written, now, self.throttle) is None:
                announce[:] = []
                return None  # nothing a reader needs moved: a later decision writes it (at most throttle.refresh_s on)
            announce[:] = [update.announce] if update.announce else []
            return update.patch

        self.kube.update_status("InferenceService", ns, name, build, listed=listed, on_write=self._wrote(svc, now))
        if announce:
            self.kube.event(isvc.model_dump(by_alias=True), Reason.METRICS_UNAVAILABLE, f"holding replicas: {announce[0]}", "Warning")
        if contest.announce:
            self.kube.event(isvc.model_dump(by_alias=True), Reason.OTHER_WRITER, contest.announce, "Warning")

    def _apply_rollout(
        self, isvc: InferenceService, p: _Pending, rp: rollouts.RolloutPass, arb: Arbitration | str, now: float, listed: dict[str, Any]
    ) -> None:
        """A service with rollouts: the total granted, split onto the two slots; status.rollout and
        RolloutProgressing; an Event per step action and per slot scaled."""
        ns, name = isvc.namespace, isvc.name
        current = rp.current()
        wanted = rp.wanted(p.decision.replicas)
        if isinstance(arb, str):  # no arbitration this pass: no growth past the current replicas
            grant, quota, missing_tenant, granted = None, isvc.status.quota, None, min(wanted, max(current, 0))
            d = apply_grant(p.decision, current, arb)
        else:
            grant, quota = arb.grant(ns, name), arb.quota_of(isvc)
            missing_tenant = arb.membership.missing.get((ns, name))
            granted = wanted if grant is None else min(wanted, grant.units)
            d = p.decision if grant is None else apply_grant(p.decision, grant.units, grant.reason)
        body = isvc.model_dump(by_alias=True)
        step = rp.decision
        if step is not None and step.action is not StepAction.HOLD:
            kind = "Warning" if step.action in (StepAction.ROLL_BACK, StepAction.ABORT) else "Normal"
            reason = {
                StepAction.START: Reason.ROLLOUT_STARTED,
                StepAction.NEXT_STEP: Reason.ROLLOUT_STEP,
                StepAction.PROMOTE: Reason.PROMOTED,
                StepAction.ROLL_BACK: Reason.ROLLED_BACK,
                StepAction.ABORT: Reason.ABORTED,
            }[step.action]
            self.kube.event(body, reason, step.message[:1000], kind)
            log.info("%s/%s: rollout %s: %s", ns, name, step.action, step.message)
        writes = rollouts.slot_writes(isvc, rp, granted)
        svc = self.services[(ns, name)]
        status = rp.status
        announce: list[str] = []
        contest = contest_condition([], p.writers, svc.writers_seen, d.replicas, isvc.generation, now)
        svc.writers_seen = contest.seen

        def build(fresh: dict[str, Any]) -> dict[str, Any] | None:
            state = svc.state.to_dict()
            conds = contest_condition(_conditions(fresh), p.writers, contest.seen, d.replicas, isvc.generation, now).conditions
            if rp.write:
                conds = rollouts.rollout_condition(conds, rp, isvc.generation, now)
            update = autoscaler_status(conds, d, p.signals, p.policy_problem, quota, missing_tenant, state, isvc.generation, now)
            patch = dict(update.patch)
            if rp.write:
                patch["rollout"] = rollouts.status_patch(rp, name, writes)
            if worth_writing(fresh.get("status") or {}, patch, svc.status_written, now, self.throttle) is None:
                announce[:] = []
                return None  # a changed status.rollout is always written (a field the throttle compares exactly)
            announce[:] = [update.announce] if update.announce else []
            return patch

        # status first: the reconciler renders the slots from status.rollout.stableSlot
        self.kube.update_status("InferenceService", ns, name, build, listed=listed, on_write=self._wrote(svc, now, heartbeat=False))
        if announce:
            self.kube.event(body, Reason.METRICS_UNAVAILABLE, f"holding replicas: {announce[0]}", "Warning")
        if contest.announce:
            self.kube.event(body, Reason.OTHER_WRITER, contest.announce, "Warning")
        for dep_name, (have, want) in writes.items():
            self.kube.scale(ns, dep_name, want)
            verb = Reason.SCALED_UP if want > have else Reason.SCALED_DOWN
            self.kube.event(body, verb, f"{dep_name}: replicas {have} -> {want} (rollout {status.phase.value}, canary {rp.percent}%)")
            log.info("%s/%s: %s %s %d -> %d", ns, name, verb, dep_name, have, want)
        try:  # best effort: a job left over is owned by the service and retried on the next pass
            rollout_evals.cleanup(self.kube, isvc, isvc.status.rollout, rp.status)
        except Exception as e:
            log.warning("%s/%s: deleting the EvalJobs of an earlier rollout: %r", ns, name, e)
        self._telemetry(ns, name, d, current, p.obs, svc, now, p.tick)
        service_telemetry.record(isvc, d, p.obs)

    def _wrote(self, svc: _Service, now: float, heartbeat: bool = True) -> Callable[[float], None]:
        """The ``on_write`` of a decision's status write: the throttle's clock (and the liveness echo)."""

        def wrote(sent: float) -> None:
            svc.status_written = now
            if heartbeat:
                self.heartbeat.wrote(sent)

        return wrote

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
