"""The warm-up gate: a Triton replica serves only once it is warm.

Every Triton pod of an InferenceService carries the readiness gate ``foresail.dev/warm``. This loop
watches those pods (label selector ``foresail.dev/inferenceservice``, so not every pod of the cluster),
and when Triton reports the model ready (the container's readiness probe passed) it sends warm-up
inferences straight to the pod IP, never through the Service, until latency is steady for every batch
size the model serves. Then it sets the pod condition ``foresail.dev/warm=True`` with the figures.
A replica that cannot warm up gets ``foresail.dev/warm=False`` with the reason, and after
``warmup.maxFailures`` attempts it is deleted so the Deployment replaces it. Pods already warm are
never warmed again (an operator restart resumes where it left off). Create -> scheduled -> container
ready -> warm durations are recorded on the pod and folded into the service's cold-start estimate.

Warm-ups run in their own task group with bounded concurrency, so 50 new pods never block the
reconcilers or the autoscaler loop. Their generated inputs are bounded by bytes, not by count: each is
in the model's own datatype, the batch sizes are lowered until one request's inputs fit
``FORESAIL_WARMUP_REQUEST_MB`` (the warm condition says so), only the batch size being sent is held,
and every request first takes twice its bytes from one budget (``FORESAIL_WARMUP_MEMORY_MB``) shared by
all warm-ups in flight, first come first served: a tenant's [3,224,224] input at batch 256 can neither
exhaust the operator's memory nor, sixteen at once, add up to it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch

from foresail.api.conditions import Condition, set_condition
from foresail.api.inferenceservice import InferenceService, QueuePolicy
from foresail.api.objects import LABEL_ISVC, WARM_GATE, condition, format_rfc3339, parse_rfc3339
from foresail.api.reasons import ConditionType, Reason
from foresail.clients.caches import CachedKube
from foresail.clients.kube import ApiException, Kube, path_for
from foresail.clients.triton import InputSpec, TritonReplica
from foresail.controllers import telemetry
from foresail.render.triton import HTTP, QUEUE_POLICY_ANNOTATION, with_queue_policy
from foresail.scaling.coldstart import WarmupPlan, estimate_cold_start, is_steady, item_bytes, warmup_plan

__all__ = ["COLD_START_ANNOTATION", "FAILURES_ANNOTATION", "WARM_RESTARTS_ANNOTATION", "ByteBudget", "WarmupManager"]

log = logging.getLogger("foresail.warmup")
COLD_START_ANNOTATION = "foresail.dev/cold-start"
# The ReplicaSet controller removes the lowest deletion cost first: replicas that never warmed go before
# warm ones; among warm ones its default ranking (ready for less time first) removes the newest first.
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
COST_WARM, COST_COLD = "1000", "-1000"
FAILURES_ANNOTATION = "foresail.dev/warmup-failures"
# the containers' restart count when the replica warmed: a Triton that restarts afterwards is cold again
# (and lost the queue policy its warm-up applied), so it is warmed again
WARM_RESTARTS_ANNOTATION = "foresail.dev/warm-restarts"
STEADY_WINDOW = 5
RETRY_SECONDS = 5.0


def restarts(pod: dict[str, Any]) -> int:
    return sum(int(c.get("restartCount") or 0) for c in pod.get("status", {}).get("containerStatuses") or [])


def restarted_since_warm(pod: dict[str, Any]) -> bool:
    recorded = (pod["metadata"].get("annotations") or {}).get(WARM_RESTARTS_ANNOTATION)
    return recorded is not None and recorded.isdigit() and restarts(pod) > int(recorded)


def needs_warmup(pod: dict[str, Any]) -> bool:
    gates = [g.get("conditionType") for g in pod.get("spec", {}).get("readinessGates") or []]
    if WARM_GATE not in gates or pod["metadata"].get("deletionTimestamp"):
        return False
    if pod.get("status", {}).get("phase") != "Running" or not pod.get("status", {}).get("podIP"):
        return False
    warm = condition(pod, WARM_GATE)
    if warm is not None and warm.get("status") == "True" and not restarted_since_warm(pod):
        return False
    ready = condition(pod, "ContainersReady")
    return ready is not None and ready.get("status") == "True"


def stuck_before_ready(pod: dict[str, Any]) -> bool:
    """Gated, running, but Triton not ready: a candidate for a warm-up timeout."""
    gates = [g.get("conditionType") for g in pod.get("spec", {}).get("readinessGates") or []]
    if WARM_GATE not in gates or pod["metadata"].get("deletionTimestamp") or pod.get("status", {}).get("phase") != "Running":
        return False
    ready = condition(pod, "ContainersReady")
    return ready is None or ready.get("status") != "True"


class WarmupFailed(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ByteBudget:
    """A semaphore counted in bytes, granted first come first served (a large request is not starved by
    later small ones); asking for more than the whole budget is refused at once."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    async def acquire(self, n: int) -> None:
        """Take ``n`` bytes, waiting behind earlier requests; a cancelled wait (``asyncio.timeout``) leaves no claim."""
        if n > self.total:
            raise ValueError(f"{n:,} bytes is more than the whole warm-up memory ({self.total:,} bytes)")
        if not self._waiting and self.used + n <= self.total:
            self.used += n
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, fut)
        self._waiting.append(entry)
        try:
            await asyncio.shield(fut)
        except BaseException:
            if fut.done() and not fut.cancelled():  # granted just as the wait ended: give it back
                self.used -= n
            else:
                fut.cancel()
                self._waiting.remove(entry)
            self._grant()
            raise

    def release(self, n: int) -> None:
        self.used -= n
        self._grant()

    @contextlib.asynccontextmanager
    async def hold(self, n: int) -> AsyncIterator[None]:
        await self.acquire(n)
        try:
            yield
        finally:
            self.release(n)

    def _grant(self) -> None:
        while self._waiting and self.used + self._waiting[0][0] <= self.total:
            n, fut = self._waiting.popleft()
            self.used += n
            fut.set_result(None)


class WarmupManager:
    def __init__(
        self,
        kube: Kube,
        concurrency: int = 16,
        watch: tuple[str, ...] = (),
        memory_bytes: int = 128_000_000,
        request_bytes: int = 32_000_000,
    ) -> None:
        self.kube = kube
        self.watch = watch  # the namespaces the operator manages (empty: all)
        self.sem = asyncio.Semaphore(concurrency)
        self.memory = ByteBudget(memory_bytes)  # generated inputs of all warm-ups in flight
        self.request_bytes = request_bytes  # the largest generated inputs of one request
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.not_before: dict[str, float] = {}
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="warmup")

    async def _io(self, fn: Any, *args: Any) -> Any:
        """Blocking API calls run on this loop's own threads, never queued behind kopf's handlers."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args))

    # ------------------------------------------------------------ pod watch (thread -> queue)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        v1 = client.CoreV1Api(self.kube.api)
        while not self.stop.is_set():
            try:
                w = watch.Watch()  # type: ignore[no-untyped-call]
                events = w.stream(  # type: ignore[no-untyped-call]
                    v1.list_pod_for_all_namespaces, label_selector=LABEL_ISVC, timeout_seconds=120, _request_timeout=150
                )
                for ev in events:
                    obj = self.kube.api.sanitize_for_serialization(ev["object"])  # type: ignore[no-untyped-call]
                    if ev["type"] != "DELETED":
                        loop.call_soon_threadsafe(self.queue.put_nowait, obj)
                    if self.stop.is_set():
                        return
            except Exception as e:
                if not self.stop.is_set():
                    log.warning("pod watch: %r; restarting", e)
                    time.sleep(1)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        if isinstance(self.kube, CachedKube):  # the pod cache's events: no watch of its own

            def seen(kind: str, pod: dict[str, Any]) -> None:
                if kind != "DELETED" and LABEL_ISVC in (pod["metadata"].get("labels") or {}):
                    loop.call_soon_threadsafe(self.queue.put_nowait, pod)

            self.kube.caches.on("Pod", seen)
        else:
            threading.Thread(target=self._watch, args=(loop,), name="warmup-watch", daemon=True).start()
        resync = loop.create_task(self._resync())
        try:
            while True:
                pod = await self.queue.get()
                self.consider(pod)
        finally:
            self.stop.set()
            resync.cancel()
            for t in self.tasks.values():
                t.cancel()

    async def _resync(self) -> None:
        """Retries (after failures) need no new event: re-list now and then."""
        while True:
            await asyncio.sleep(RETRY_SECONDS)
            try:
                pods = await self._io(self.kube.list, "Pod", None, LABEL_ISVC)
            except Exception as e:
                log.warning("pod list: %r", e)
                continue
            now = time.monotonic()
            self.not_before = {uid: t for uid, t in self.not_before.items() if t > now}  # pods gone leave nothing
            for p in pods:
                self.consider(p)

    def consider(self, pod: dict[str, Any]) -> None:
        pod.setdefault("apiVersion", "v1")  # list items carry no kind: events about the pod need it
        pod.setdefault("kind", "Pod")
        uid = pod["metadata"]["uid"]
        if uid in self.tasks or time.monotonic() < self.not_before.get(uid, 0.0):
            return
        if self.watch and pod["metadata"].get("namespace") not in self.watch:
            return
        if needs_warmup(pod):
            work = self._guarded(pod)
        elif stuck_before_ready(pod):
            work = self._check_stuck(pod)
        else:
            return
        task = asyncio.get_running_loop().create_task(work)
        self.tasks[uid] = task
        task.add_done_callback(functools.partial(self._done, uid))

    def _done(self, uid: str, _task: asyncio.Task[None]) -> None:
        self.tasks.pop(uid, None)

    async def _guarded(self, pod: dict[str, Any]) -> None:
        async with self.sem:
            telemetry.WARMUPS_IN_FLIGHT.inc()
            try:
                await self.warm(pod)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # never lose the loop to one pod
                log.exception("warm-up of %s/%s crashed: %r", pod["metadata"]["namespace"], pod["metadata"]["name"], e)
                self.not_before[pod["metadata"]["uid"]] = time.monotonic() + RETRY_SECONDS
            finally:
                telemetry.WARMUPS_IN_FLIGHT.dec()

    async def _check_stuck(self, pod: dict[str, Any]) -> None:
        """A replica whose model never becomes ready fails its warm-up once the timeout has passed."""
        md = pod["metadata"]
        body = await self._io(self.kube.get, "InferenceService", md["namespace"], (md.get("labels") or {}).get(LABEL_ISVC, ""))
        if body is None:
            return
        isvc = InferenceService.model_validate(body)
        started = parse_rfc3339(pod.get("status", {}).get("startTime")) or parse_rfc3339(md.get("creationTimestamp")) or time.time()
        age = time.time() - started
        if age < isvc.spec.warmup.timeout_seconds:
            self.not_before[md["uid"]] = time.monotonic() + min(RETRY_SECONDS, isvc.spec.warmup.timeout_seconds - age)
            return
        f = WarmupFailed(
            Reason.WARMUP_TIMEOUT,
            f"model {isvc.spec.model.name} not ready {age:.0f}s after the pod started (timeout {isvc.spec.warmup.timeout_seconds}s)",
        )
        await self._io(self._fail, pod, isvc, body, f, isvc.spec.warmup.max_failures)

    # ------------------------------------------------------------ one pod

    async def warm(self, pod: dict[str, Any]) -> None:
        md = pod["metadata"]
        ns, name, uid = md["namespace"], md["name"], md["uid"]
        owner = (md.get("labels") or {}).get(LABEL_ISVC, "")
        body = await self._io(self.kube.get, "InferenceService", ns, owner)
        if body is None:
            return
        isvc = InferenceService.model_validate(body)
        spec = isvc.spec.warmup
        model = isvc.spec.model.name
        started = time.monotonic()
        deadline = started + spec.timeout_seconds
        replica = TritonReplica(f"{pod['status']['podIP']}:{HTTP}")
        sent: int = 0
        first_ms: float | None = None
        steady_ms: list[float] = []
        if restarted_since_warm(pod) and (condition(pod, WARM_GATE) or {}).get("status") == "True":
            why = f"Triton restarted after its warm-up ({restarts(pod)} restarts): cold again, warming up"
            await self._io(self._set_gate, pod, "False", Reason.RESTARTED, why)
        try:
            await self._model_ready(replica, model, deadline, spec.timeout_seconds)
            policy = (md.get("annotations") or {}).get(QUEUE_POLICY_ANNOTATION)
            if policy is not None:
                await self._apply_queue_policy(replica, model, policy, deadline, spec.timeout_seconds)
            if spec.inputs:
                try:  # the user's own, checked against their shapes at admission; a value numpy refuses remains
                    given: list[Any] = TritonReplica.given([i.model_dump(mode="json") for i in spec.inputs])
                except (ValueError, TypeError, OverflowError) as e:
                    raise WarmupFailed(Reason.WARMUP_ERROR, f"spec.warmup.inputs: {e}") from e
                specs: list[InputSpec] = []
                batched, sizes, plan = False, [1], None
            else:
                given = []
                specs, mbs = await replica.describe(model)
                batched = mbs > 0
                plan = warmup_plan(mbs, spec.max_batch_size, item_bytes((s.datatype, s.dims) for s in specs), self.request_bytes)
                sizes = plan.sizes
                if plan.note:
                    log.info("%s/%s: warm-up batch sizes lowered to fit the request cap: %s", ns, name, plan.note)
                if 2 * plan.request_bytes(1) > self.memory.total:
                    raise WarmupFailed(
                        Reason.WARMUP_ERROR,
                        f"one item of generated input is {plan.request_bytes(1):,} bytes, more than the warm-up memory "
                        f"allows a request ({self.memory.total // 2:,}): give spec.warmup.inputs or raise FORESAIL_WARMUP_MEMORY_MB",
                    )
            # Two passes: the first primes every batch size (at least `requests` each, until steady);
            # the second must be steady again at every size. A cold phase that happens to be flat (a
            # slow first N requests) cannot pass for warm: the second pass would differ from it.
            # Generated inputs exist for one batch size at a time, inside their share of the memory budget.
            for pass_no in (1, 2):
                steady_ms = []
                for batch in sizes:
                    need = spec.requests if pass_no == 1 else STEADY_WINDOW
                    async with self._inputs(specs, batched, plan, batch, deadline, spec.timeout_seconds) as generated:
                        lats = await self._until_steady(
                            replica, model, generated or given, batch, need, deadline, spec.timeout_seconds, spec.steadiness_percent
                        )
                    sent += len(lats)
                    first_ms = lats[0] if first_ms is None else first_ms
                    steady_ms.append(sorted(lats[-STEADY_WINDOW:])[STEADY_WINDOW // 2])
        except WarmupFailed as f:
            await self._io(self._fail, pod, isvc, body, f, spec.max_failures)
            return
        finally:
            await replica.close()
        took = time.monotonic() - started
        lowered = f" ({plan.note})" if plan is not None and plan.note else ""
        msg = (
            f"warm after {sent} requests in {took:.1f}s; first {first_ms or 0:.1f} ms, steady p50 "
            f"{', '.join(f'{x:.1f}' for x in steady_ms)} ms for batch sizes {sizes}{lowered}"
        )
        await self._io(self._succeed, pod, body, msg)
        telemetry.WARMUPS.labels(ns, owner, "warm").inc()
        telemetry.WARMUP_SECONDS.labels(ns, owner).observe(took)
        self.not_before.pop(uid, None)
        log.info("%s/%s: %s", ns, name, msg)

    @contextlib.asynccontextmanager
    async def _inputs(
        self, specs: list[InputSpec], batched: bool, plan: WarmupPlan | None, batch: int, deadline: float, timeout_s: int
    ) -> AsyncIterator[list[Any]]:
        """Generated inputs of ``batch`` items (none when the user gave them), built and held only inside
        twice their bytes of the warm-up memory budget."""
        if plan is None:
            yield []
            return
        n = 2 * plan.request_bytes(batch)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self.memory.acquire(n)
        except TimeoutError:
            raise WarmupFailed(
                Reason.WARMUP_TIMEOUT, f"waited past the {timeout_s}s timeout for warm-up memory (other warm-ups hold it)"
            ) from None
        try:
            yield TritonReplica.generated(specs, batch, batched, seed=batch)
        finally:
            self.memory.release(n)

    @staticmethod
    async def _until_steady(
        replica: TritonReplica, model: str, inputs: list[Any], batch: int, need: int, deadline: float, timeout_s: int, steadiness: float
    ) -> list[float]:
        """Latencies of inferences at one batch size until at least ``need`` were sent and the last few are steady."""
        lats: list[float] = []
        while not (len(lats) >= need and is_steady(lats, STEADY_WINDOW, steadiness)):
            if time.monotonic() > deadline:
                raise WarmupFailed(
                    Reason.WARMUP_TIMEOUT,
                    f"latency not steady within {timeout_s}s at batch {batch} (last {[round(x, 1) for x in lats[-STEADY_WINDOW:]]} ms)",
                )
            try:
                lats.append(await replica.timed_infer(model, inputs))
            except Exception as e:
                raise WarmupFailed(Reason.WARMUP_ERROR, f"inference failed at batch {batch}: {e}") from e
        return lats

    @staticmethod
    async def _model_ready(replica: TritonReplica, model: str, deadline: float, timeout_s: int) -> None:
        while not await replica.model_ready(model):
            if time.monotonic() > deadline:
                raise WarmupFailed(Reason.WARMUP_TIMEOUT, f"model {model} not ready within {timeout_s}s")
            await asyncio.sleep(0.5)

    @staticmethod
    async def _apply_queue_policy(replica: TritonReplica, model: str, raw: str, deadline: float, timeout_s: int) -> None:
        """Load the model again with spec.triton.queuePolicy (the pod's annotation) before it serves."""
        try:
            policy = QueuePolicy.model_validate_json(raw)
            want = with_queue_policy(await replica.config(model), policy)
        except ValueError as e:
            raise WarmupFailed(Reason.QUEUE_POLICY_FAILED, str(e)) from e
        except Exception as e:
            raise WarmupFailed(Reason.QUEUE_POLICY_FAILED, f"reading the config of model {model}: {e}") from e
        wanted = want["dynamic_batching"]["default_queue_policy"]
        try:
            await replica.load(model, want)
            await WarmupManager._model_ready(replica, model, deadline, timeout_s)
            got = (await replica.config(model)).get("dynamic_batching", {}).get("default_queue_policy", {})
        except WarmupFailed:
            raise
        except Exception as e:
            raise WarmupFailed(Reason.QUEUE_POLICY_FAILED, f"loading model {model} with spec.triton.queuePolicy: {e}") from e
        if any(str(got.get(k)) != str(v) for k, v in wanted.items()):
            raise WarmupFailed(Reason.QUEUE_POLICY_FAILED, f"model {model} loaded with queue policy {got}, not {wanted}")

    def _set_gate(self, pod: dict[str, Any], status: str, reason: Reason, message: str) -> None:
        now = format_rfc3339(time.time())
        cond = {"type": WARM_GATE, "status": status, "reason": reason, "message": message[:1000], "lastTransitionTime": now}
        md = pod["metadata"]
        self.kube.request(
            "PATCH",
            path_for("Pod", md["namespace"], md["name"], "status"),
            {"status": {"conditions": [cond]}},
            "application/strategic-merge-patch+json",
        )

    def _succeed(self, pod: dict[str, Any], isvc_body: dict[str, Any], message: str) -> None:
        md = pod["metadata"]
        now = time.time()
        created = parse_rfc3339(md.get("creationTimestamp"))
        timings = {
            "scheduled_s": _delta(created, parse_rfc3339((condition(pod, "PodScheduled") or {}).get("lastTransitionTime"))),
            "containers_ready_s": _delta(created, parse_rfc3339((condition(pod, "ContainersReady") or {}).get("lastTransitionTime"))),
            "warm_s": _delta(created, now),
        }
        try:
            self._set_gate(pod, "True", Reason.WARMED_UP, message)
            self.kube.request(
                "PATCH",
                path_for("Pod", md["namespace"], md["name"]),
                {
                    "metadata": {
                        "annotations": {
                            COLD_START_ANNOTATION: json.dumps(timings),
                            DELETION_COST: COST_WARM,
                            WARM_RESTARTS_ANNOTATION: str(restarts(pod)),
                        }
                    }
                },
                "application/merge-patch+json",
            )
        except ApiException as e:
            if e.status == 404:
                return
            raise
        owner = (md.get("labels") or {}).get(LABEL_ISVC, "")
        for phase, value in timings.items():
            if value is not None:
                telemetry.COLD_START.labels(md["namespace"], owner, phase.removesuffix("_s")).observe(value)
        first = WARM_RESTARTS_ANNOTATION not in (md.get("annotations") or {})  # a re-warm after a restart is no cold start
        if timings["warm_s"] is not None and first:
            self._record_cold_start(isvc_body, timings["warm_s"])

    def _record_cold_start(self, isvc_body: dict[str, Any], seconds: float) -> None:
        md = isvc_body["metadata"]

        def build(fresh: dict[str, Any]) -> dict[str, Any] | None:
            # on the object as read (from the cache, when cached): the resourceVersion precondition makes a
            # stale read retry on a fresh one, so two warm-ups finishing together both count
            cs = (fresh.get("status") or {}).get("coldStart") or {}
            recent = [*(float(x) for x in (cs.get("recentSeconds") or [])[-19:]), round(seconds, 2)]
            est = estimate_cold_start(recent)
            if est is None:
                return None
            telemetry.COLD_START_ESTIMATE.labels(md["namespace"], md["name"], "0.5").set(est.p50_seconds)
            telemetry.COLD_START_ESTIMATE.labels(md["namespace"], md["name"], "0.9").set(est.p90_seconds)
            return {"coldStart": {"p50Seconds": est.p50_seconds, "p90Seconds": est.p90_seconds, "samples": est.samples, "recentSeconds": recent}}

        self.kube.update_status("InferenceService", md["namespace"], md["name"], build)

    def _mark_failing(self, isvc: InferenceService, pod_name: str, f: WarmupFailed) -> None:
        """WarmupFailing=True on the service at once (the reconciler clears it when no replica fails)."""
        now = datetime.now(UTC)

        def build(fresh: dict[str, Any]) -> dict[str, Any]:
            conds = [Condition.model_validate(c) for c in (fresh.get("status") or {}).get("conditions") or []]
            msg = f"replica {pod_name} failed warm-up ({f.reason}): {f}"
            conds = set_condition(
                conds, ConditionType.WARMUP_FAILING, True, Reason.REPLICAS_FAILED_WARMUP, msg[:500], isvc.generation, now
            )
            return {"conditions": [c.model_dump(by_alias=True, mode="json") for c in conds]}

        with contextlib.suppress(ApiException):
            self.kube.update_status("InferenceService", isvc.namespace, isvc.name, build)

    def _fail(
        self, pod: dict[str, Any], isvc: InferenceService, isvc_body: dict[str, Any], f: WarmupFailed, max_failures: int
    ) -> None:
        md = pod["metadata"]
        failures = int((md.get("annotations") or {}).get(FAILURES_ANNOTATION, "0")) + 1
        with contextlib.suppress(ApiException):
            self._set_gate(pod, "False", f.reason, f"attempt {failures}/{max_failures}: {f}")
            self.kube.request(
                "PATCH",
                path_for("Pod", md["namespace"], md["name"]),
                {"metadata": {"annotations": {FAILURES_ANNOTATION: str(failures), DELETION_COST: COST_COLD}}},
                "application/merge-patch+json",
            )
        self.kube.event(pod, f.reason, f"warm-up attempt {failures}/{max_failures} failed: {f}", "Warning")
        self._mark_failing(isvc, md["name"], f)
        owner = (md.get("labels") or {}).get(LABEL_ISVC, "")
        telemetry.WARMUPS.labels(md["namespace"], owner, "replaced" if failures >= max_failures else "failed").inc()
        if failures >= max_failures:
            self.kube.event(
                isvc_body,
                Reason.REPLICA_REPLACED,
                f"pod {md['name']} failed warm-up {failures} times ({f.reason}); deleting it",
                "Warning",
            )
            self.kube.delete("Pod", md["namespace"], md["name"], uid=md["uid"])
        else:
            self.not_before[md["uid"]] = time.monotonic() + RETRY_SECONDS
        log.warning("%s/%s: warm-up failed (%s): %s", md["namespace"], md["name"], f.reason, f)


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(max(0.0, b - a), 2)
