"""``foresail eval-worker``: one shard of an EvalJob, in a pod of its Indexed Job.

The IO around the pure ``evaluation`` core: the dataset file (checked against its sha256), the ready
endpoints of the target's Service (EndpointSlices), Triton (async HTTP, several items per request
when the model batches), the target's production signals (Prometheus, to yield), progress reports
(a merge patch of the worker's own key in its progress ConfigMap, the only objects its Role lets it write;
the final one carries the counts of the shard's results file and must be written before the worker exits 0)
and the results directory on the job's PVC. With ``spec.traffic.prometheusAuth`` the
Prometheus queries use the files of that Secret the pod mounts (``prom_auth``): a credential that cannot
work is a bad configuration (exit 3, named in the shard's report), never a value in a log line. Exit codes: 0 done,
143 stopped by SIGTERM with the shard unfinished and everything flushed (suspend, preemption,
drain: the failure policy ignores it and a later pod resumes), 3 the dataset or configuration cannot
work (the failure policy fails the job), 1 anything else (retried up to ``backoffLimitPerIndex``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from foresail.api.evalreport import LatencyHistogram, merge_spans
from foresail.api.objects import LABEL_ISVC
from foresail.clients.kube import Kube, load_config
from foresail.clients.promauth import PromAuth, PromAuthError
from foresail.clients.prometheus import PromClient
from foresail.clients.triton import EvalClient, ModelShape
from foresail.controllers.live_signals import LiveSignals, ServiceView
from foresail.controllers.settings import SETTINGS, SettingsError
from foresail.evaluation.dataset import DatasetError, Item, load_jsonl, sha256_hex
from foresail.evaluation.limiter import AIMDLimiter, production_pressure
from foresail.evaluation.progress import ShardProgress
from foresail.evaluation.results import ResultStore, merge_if_complete
from foresail.evaluation.runner import run_shard
from foresail.evaluation.scoring import make_scorer
from foresail.evaluation.sharding import shard_items
from foresail.render.evaljob import (
    EXIT_BAD_INPUT,
    EXIT_STOPPED,
    PROM_AUTH_KEYS,
    RESULTS_MOUNT,
    SHARDS_PER_PROGRESS,
    WORKER_CONFIG_ENV,
    progress_name,
)
from foresail.render.evaljob_status import ShardReport, run_id
from foresail.scaling.observe import HEADLINE_WINDOW_S, serving_pods

__all__ = ["Reporter", "RunStats", "final_report", "main", "production_client", "prom_auth"]

log = logging.getLogger("foresail.eval-worker")
ENDPOINT_WAIT_S = 600.0
FLUSH_EVERY_S = 0.25  # one fsync per quarter second, not per answer; a kill redoes at most that much
FINAL_REPORT_ATTEMPTS = 6  # about 30 s of retries before the shard exits 1 (and is retried by the Job)


class BadInput(Exception):
    """The dataset or the configuration cannot work; retrying will not help."""


# the worker configuration's names of the credential files (render.evaljob.PROM_AUTH_KEYS) -> PromAuth's fields
_AUTH_FIELDS = {
    "bearerTokenFile": "bearer_token_file",
    "basicAuthUsernameFile": "basic_auth_username_file",
    "basicAuthPasswordFile": "basic_auth_password_file",
    "caFile": "ca_file",
    "certFile": "cert_file",
    "keyFile": "key_file",
}
_AUTH_KEYS = "token, username and password, ca.crt, tls.crt and tls.key, header.<Name>"


def prom_auth(paths: Mapping[str, str] | None) -> PromAuth | None:
    """The credentials of the job's ``prometheusAuth`` Secret: the configured paths whose files the mounted
    Secret has (its keys), its ``header.*`` keys as headers; None without a Secret. ``PromAuthError`` names
    the key or file that cannot work, never its content."""
    if not paths:
        return None
    directory = paths.get("headersDir", "")
    if not directory or not os.path.isdir(directory):
        raise PromAuthError(f"{directory or '(no path)'}: the Secret is not mounted")
    present = {f: path for name, f in _AUTH_FIELDS.items() if (path := paths.get(name, "")) and os.path.exists(path)}
    prefix = paths.get("headersPrefix", "")
    keys = sorted(e.name for e in Path(directory).iterdir() if not e.name.startswith("."))
    headers = [k for k in keys if prefix and k.startswith(prefix)]
    if not present and not headers:
        raise PromAuthError(f"the Secret has none of the keys {_AUTH_KEYS} (its keys: {', '.join(keys) or 'none'})")
    if ("basic_auth_username_file" in present) != ("basic_auth_password_file" in present):
        raise PromAuthError("basic auth needs both keys username and password")
    return PromAuth(**present, headers_dir=directory if headers else "", headers_prefix=prefix if headers else "")


def production_client(config: Mapping[str, Any], transport: Any = None) -> PromClient | None:
    """The Prometheus client of the yield signals (None when the job does not yield or no URL is set), with
    the job's credentials; ``BadInput`` when they cannot work."""
    plan = config["plan"]
    if not (config.get("yield") and plan.get("prometheusUrl") and plan.get("production")):
        return None
    paths = config.get("prometheusAuth")
    secret = f"spec.traffic.prometheusAuth (Secret {paths.get('secret', '')!r})" if paths else ""
    try:
        auth = prom_auth(paths)
        client = PromClient(plan["prometheusUrl"], auth=auth, transport=transport)
    except (PromAuthError, OSError) as e:
        raise BadInput(f"{secret}: {e}") from None
    if auth is not None:
        used = [k for name, k in PROM_AUTH_KEYS.items() if getattr(auth, _AUTH_FIELDS[name])]
        if auth.headers_dir:
            used.append(f"{auth.headers_prefix}*")
        log.info("production signals from %s with the credentials of %s: keys %s", plan["prometheusUrl"], secret, ", ".join(used))
    return client


@dataclass
class Endpoints:
    """Ready addresses of a Service, from its EndpointSlices, refreshed in the background."""

    kube: Kube
    namespace: str
    service: str
    port_name: str = "grpc"
    addresses: list[str] = field(default_factory=list)
    _rr: itertools.count[int] = field(default_factory=itertools.count)

    def refresh(self) -> list[str]:
        out: list[str] = []
        for s in self.kube.list("EndpointSlice", self.namespace, f"kubernetes.io/service-name={self.service}"):
            port = next((p.get("port") for p in s.get("ports") or [] if p.get("name") == self.port_name), None)
            if port is None:
                continue
            for ep in s.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue
                out.extend(f"{a}:{port}" for a in ep.get("addresses") or [])
        self.addresses = sorted(set(out))
        return self.addresses

    def next(self) -> str:
        if not self.addresses:
            raise ConnectionError(f"no ready endpoints of Service {self.namespace}/{self.service}")
        return self.addresses[next(self._rr) % len(self.addresses)]

    async def keep_fresh(self, period: float = 2.0) -> None:
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as e:
                log.warning("endpoints of %s not refreshed: %r", self.service, e)
            await asyncio.sleep(period)


def _load(plan: dict[str, Any], seed: int, shards: int, index: int) -> tuple[list[Item], str, int]:
    path = Path(plan["datasetPath"])
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInput(f"dataset {path}: {e.strerror}") from None
    sha = sha256_hex(data)
    if plan.get("datasetSha256") and plan["datasetSha256"] != sha:
        raise BadInput(f"dataset sha256 is {sha}, spec.dataset.sha256 says {plan['datasetSha256']}")
    try:
        items = load_jsonl(data)
    except DatasetError as e:
        raise BadInput(f"dataset: {e}") from None
    return shard_items(items, index, seed, shards), sha, len(items)


class Reporter:
    """The shard's reports into its progress ConfigMap: live ones best effort (``publish``: a lost one is
    superseded by the next), the final one delivered (``deliver``: retried; False when it could not be written,
    and the worker then exits non-zero so that the Job does not count the shard complete). An older report
    never lands after a newer one (a cancelled report's thread still runs)."""

    def __init__(self, kube: Kube, namespace: str, configmap: str, index: int, sleep: Any = asyncio.sleep) -> None:
        self.kube, self.namespace, self.configmap, self.index, self.sleep = kube, namespace, configmap, index, sleep
        self._sequence = itertools.count()
        self._newest = -1
        self._order = threading.Lock()

    def _send(self, n: int, r: ShardReport) -> None:
        with self._order:
            if n < self._newest:
                return
            self._newest = n
            self.kube.merge_patch("ConfigMap", self.namespace, self.configmap, {"data": {f"shard-{self.index}": r.to_json()}})

    async def publish(self, r: ShardReport) -> None:
        try:
            await asyncio.to_thread(self._send, next(self._sequence), r)
        except Exception as e:  # live progress is best effort; the final report is not
            log.warning("progress not reported: %r", e)

    async def deliver(self, r: ShardReport, attempts: int = FINAL_REPORT_ATTEMPTS) -> bool:
        for attempt in range(attempts):
            try:
                await asyncio.to_thread(self._send, next(self._sequence), r)
                return True
            except Exception as e:
                log.warning("shard %d: final report not written (attempt %d of %d): %r", self.index, attempt + 1, attempts, e)
                if attempt + 1 < attempts:
                    await self.sleep(min(2.0**attempt, 30.0))
        return False


@dataclass
class RunStats:
    """The shard's run statistics across its attempts (wall-clock spans, latency histogram), carried in the results
    directory (``ResultStore.save_stats``): a resumed shard's final report covers its earlier attempts too."""

    store: ResultStore
    start: float  # this attempt's start (unix seconds)
    spans: list[tuple[float, float]] = field(default_factory=list)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    @classmethod
    def load(cls, store: ResultStore, start: float) -> RunStats:
        old = store.load_stats()
        try:
            spans = [(float(a), float(b)) for a, b in old.get("spans") or []]
            latency = LatencyHistogram.decode([int(c) for c in old.get("latency") or []])
        except (TypeError, ValueError):
            spans, latency = [], LatencyHistogram()
        return cls(store, start, spans, latency)

    def now(self, attempt: LatencyHistogram, wall: float) -> tuple[tuple[tuple[float, float], ...], tuple[int, ...]]:
        """(spans, encoded histogram) of the run so far: the earlier attempts' and this one's."""
        spans = merge_spans([*self.spans, (self.start, wall)])
        return tuple(spans), tuple(self.latency.merge(attempt).encode())

    def save(self, attempt: LatencyHistogram, wall: float) -> None:
        spans, latency = self.now(attempt, wall)
        try:
            self.store.save_stats({"spans": [list(s) for s in spans], "latency": list(latency)})
        except OSError as e:  # statistics only
            log.warning("shard %d: run statistics not saved: %r", self.store.shard, e)


def final_report(store: ResultStore, last: ShardReport) -> ShardReport:
    """The shard's final report: ``last`` (its latest live one) with the counts of its final results file, which
    hold every item of the shard once, those of earlier attempts included (what the score is made of)."""
    t = store.totals()
    return replace(last, done=t.done, errors=t.errors, correct=t.correct, scored=t.scored, finished=True, final=True, time=time.time())


async def run(config: dict[str, Any], index: int, kube: Kube, stop: asyncio.Event) -> int:
    plan, traffic = config["plan"], config["traffic"]
    ns = config["namespace"]
    progress_cm = progress_name(config["progressConfigMap"], index, int(config.get("shardsPerProgress", SHARDS_PER_PROGRESS)))
    seed, shards = int(config["seed"]), int(config["shards"])
    run_name = run_id(str(plan.get("specHash", "")))
    sha, n_items, total = "", 0, 0
    reporter = Reporter(kube, ns, progress_cm, index)
    publish = reporter.publish

    try:
        mine, sha, n_items = _load(plan, seed, shards, index)
        sc = config["scorer"]
        scorer = make_scorer(sc["kind"], sc.get("output"), sc.get("atol", 1e-6), sc.get("rtol", 1e-5), sc.get("plugin"))
        scorer.check(mine)
        prom = production_client(config)
    except (BadInput, ValueError) as e:
        log.error("shard %d: %s", index, e)
        await publish(ShardReport(index=index, error=str(e)[:500], dataset_sha256=sha, time=time.time(), run=run_name))
        return EXIT_BAD_INPUT
    total = len(mine)
    store = ResultStore(Path(RESULTS_MOUNT) / plan["resultsDir"], index)
    endpoints = Endpoints(kube, ns, plan["service"])
    refresher = asyncio.create_task(endpoints.keep_fresh())
    client = EvalClient(plan["model"], plan.get("version", ""), float(traffic["requestTimeoutSeconds"]))
    tasks: list[asyncio.Task[None]] = [refresher]
    try:
        shape = await _describe(client, endpoints, stop)
        if shape is None:
            return EXIT_STOPPED if stop.is_set() else 1
        batch = min(int(traffic["batchSize"]), shape.max_batch_size or 1)
        target = traffic.get("targetLatencyMs") or (plan["sloMs"] if config.get("yield") else None)
        limiter = AIMDLimiter(
            int(traffic["minConcurrency"]), int(traffic["maxConcurrency"]), latency_target_ms=float(target) if target else None
        )
        if prom is not None:
            slo = float(plan["sloMs"])
            tasks.append(asyncio.create_task(_yield(prom, kube, ns, plan["production"], plan["model"], slo, limiter)))

        async def infer(items: list[Item]) -> list[dict[str, npt.NDArray[Any]]]:
            return await client.infer(endpoints.next(), shape, [it.inputs for it in items])

        stats = RunStats.load(store, time.time())
        last = ShardReport(index=index, total=total, run=run_name, dataset_sha256=sha, dataset_items=n_items)

        async def report(p: ShardProgress) -> None:
            nonlocal last
            wall = time.time()
            await asyncio.to_thread(stats.save, p.latency, wall)
            spans, latency = stats.now(p.latency, wall)
            last = replace(_report(p, sha, n_items), run=run_name, spans=spans, latency=latency)
            await publish(last)

        summary = await run_shard(
            mine,
            store,
            infer,
            scorer,
            limiter,
            time.monotonic,
            report,
            batch_size=batch,
            max_rps=traffic.get("maxRequestsPerSecond"),
            retries=int(traffic["retries"]),
            backoff_s=float(traffic["backoffSeconds"]),
            timeout_s=float(traffic["requestTimeoutSeconds"]),
            stop=stop,
            record_outputs=bool(config.get("recordOutputs", False)),
            flush_every_s=FLUSH_EVERY_S,
        )
        if summary.stopped:
            # not 0: a Succeeded pod would mark the index complete; the Job's failure policy ignores this code
            log.info("shard %d: stopped at %d/%d; the next pod resumes", index, summary.done, total)
            return EXIT_STOPPED
        final = final_report(store, last)
        if not await reporter.deliver(final):
            # exit 0 would mark the index complete without the counts the score is made of: retried instead,
            # the next pod finds every item done and writes the final report again
            log.error("shard %d: the final report could not be written; exiting so that the shard is retried", index)
            return 1
        merged = merge_if_complete(store.directory, shards)
        log.info("shard %d: %d items, %d errors%s", index, final.done, final.errors, f"; merged {merged}" if merged else "")
        return 0
    finally:
        for t in tasks:
            t.cancel()
        await client.close()
        if prom is not None:
            await prom.close()


async def _describe(client: EvalClient, endpoints: Endpoints, stop: asyncio.Event) -> ModelShape | None:
    """The model's inputs and batching, from the first endpoint that answers (waiting for one)."""
    deadline = time.monotonic() + ENDPOINT_WAIT_S
    last: Exception | None = None
    while time.monotonic() < deadline and not stop.is_set():
        for addr in list(endpoints.addresses):
            try:
                return await client.describe(addr)
            except Exception as e:
                last = e
        await asyncio.sleep(1.0)
    log.error("no endpoint of %s answered within %.0fs: %r", endpoints.service, ENDPOINT_WAIT_S, last)
    return None


async def _yield(
    prom: PromClient, kube: Kube, ns: str, service: str, model: str, slo_ms: float, limiter: AIMDLimiter, period: float = 2.0
) -> None:
    """Production signals -> pressure on the limiter, every ``period`` seconds: the autoscaler's live signals of the
    service (queue per serving replica, the 10 s window's p99). No signal counts as full pressure. A failed
    read (HTTP 401, a lost credential file) is logged when it starts or changes, and the recovery."""
    key = (ns, service)
    live = LiveSignals(prom)
    last: str | None = None  # the problem logged last; "" = reads work
    while True:
        now = time.time()
        try:
            pods = await asyncio.to_thread(kube.list, "Pod", ns, f"{LABEL_ISVC}={service}")
            got, errors = await live.read(now, {key: ServiceView(model, serving_pods(pods, now))})
            problem = "; ".join(e.strip() for e in errors)
            m = got.get(key)
            if errors or m is None or m.fleet is None:
                pressure = 1.0
            else:
                p99 = m.fleet.window(HEADLINE_WINDOW_S).p99_ms
                # no p99 (no replica warm for a minute completed any): no latency evidence, the queue alone decides
                pressure = production_pressure(m.fleet.queued / max(m.serving, 1), 0.0 if p99 is None else p99, slo_ms)
        except Exception as e:
            problem = repr(e)
            pressure = 1.0
        if problem != last:
            if problem:
                log.warning("production signals unavailable (yielding fully): %s", problem)
            else:
                log.info("production signals of %s/%s read from Prometheus", ns, service)
            last = problem
        limiter.set_pressure(pressure, time.monotonic())
        await asyncio.sleep(period)


def _report(p: ShardProgress, sha: str, n_items: int) -> ShardReport:
    return ShardReport(
        index=p.shard,
        done=p.done,
        total=p.total,
        errors=p.errors,
        correct=p.correct,
        scored=p.scored,
        eps=p.eps,
        p50_ms=p.p50_ms,
        p95_ms=p.p95_ms,
        p99_ms=p.p99_ms,
        limit=p.limit,
        throttled_seconds=p.throttled_s,
        finished=p.finished,
        dataset_sha256=sha,
        dataset_items=n_items,
        time=time.time(),
    )


def main() -> int:
    try:
        level = SETTINGS["log_level"].read(os.environ)
    except SettingsError as e:
        print(f"foresail eval-worker: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prometheus query is noise
    raw = os.environ.get(WORKER_CONFIG_ENV)
    index = os.environ.get("JOB_COMPLETION_INDEX")
    if not raw or index is None:
        log.error("%s and JOB_COMPLETION_INDEX must be set (the operator's Indexed Job sets both)", WORKER_CONFIG_ENV)
        return EXIT_BAD_INPUT
    config = json.loads(raw)

    async def go() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        load_config()
        return await run(config, int(index), Kube(), stop)

    np.seterr(all="ignore")
    return asyncio.run(go())
