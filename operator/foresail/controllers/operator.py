"""``foresail run``: the operator process (kopf handlers under a leader lease, health endpoint)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable, Hashable
from typing import Any, cast

import kopf

from foresail.clients.kube import Kube, load_config
from foresail.clients.promauth import PromAuth, PromAuthError, client_args
from foresail.clients.prometheus import PromClient
from foresail.controllers import coalesce, evaljob, handlers, inferenceservice, logs, telemetry
from foresail.controllers.autoscaler import Autoscaler
from foresail.controllers.diffbase import DigestDiffBaseStorage
from foresail.controllers.leader import LeaseElector
from foresail.controllers.live_signals import LiveSignals, SourceMode
from foresail.controllers.liveness import HEARTBEAT, Heartbeat
from foresail.controllers.resync import Periodic, Resync
from foresail.controllers.settings import OperatorSettings, SettingsError
from foresail.controllers.warmup import WarmupManager
from foresail.scaling.status_throttle import Throttle

__all__ = ["run"]

log = logging.getLogger("foresail")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="foresail.dev")
    # digests, not a copy of the spec: all annotations together are limited to 256 KiB (controllers/diffbase.py)
    settings.persistence.diffbase_storage = DigestDiffBaseStorage(prefix="foresail.dev", key="last-handled-configuration")
    settings.posting.level = logging.WARNING  # our reconcilers post their own, meaningful events
    settings.execution.max_workers = 16
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.networking.error_backoffs = [1, 2, 5, 10, 30]


@kopf.on.startup()
async def start_warmup(memo: kopf.Memo, **_: Any) -> None:
    s = handlers.settings()
    warmup = WarmupManager(
        handlers.cached_kube(), watch=s.watch_namespaces, memory_bytes=int(s.warmup_memory_mb * 1e6), request_bytes=int(s.warmup_request_mb * 1e6)
    )
    memo["warmup"] = asyncio.get_running_loop().create_task(warmup.run(), name="warmup")


@kopf.on.startup()
async def start_autoscaler(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    s = handlers.settings()
    prom = None
    if s.prometheus_url:
        try:
            prom = PromClient(s.prometheus_url, rate_window=s.rate_window, auth=PromAuth.from_settings(s))
        except PromAuthError as e:  # a wrong Secret: stop with its name rather than query without credentials
            raise kopf.PermanentError(f"Prometheus credentials (prometheus.auth): {e}") from None
    else:
        logger.warning("FORESAIL_PROMETHEUS_URL is not set: services hold their replicas; tenant quotas still apply")
    live = LiveSignals(prom, mode=SourceMode(s.metrics_source), stale_after=s.metrics_stale_seconds)
    loop = Autoscaler(
        handlers.cached_kube(),  # reads from the watch-fed caches: a pass that changes nothing asks the apiserver nothing
        prom,
        loop_seconds=s.loop_seconds,
        throttle=Throttle(refresh_s=s.status_refresh_seconds),
        batch_min_runtime_s=s.batch_min_runtime_seconds,
        live=live,
        default_tenant=s.default_tenant if s.tenancy_mode == "open" else None,
        watch=s.watch_namespaces,
        require_tenant=True,
        heartbeat=HEARTBEAT,
    )
    tasks = asyncio.get_running_loop()
    memo["autoscaler"] = tasks.create_task(loop.run(), name="autoscaler")
    memo["direct-metrics"] = tasks.create_task(live.run_direct(), name="direct-metrics")


@kopf.on.startup()
async def start_resync(memo: kopf.Memo, **_: Any) -> None:
    periodics = [
        # drift is repaired at once by the children's events: this is a backstop, so a fleet of more than 300
        # services is resynced at 10 a second (1,000 every 100 s), not all of them every 30 s (33 a second)
        Periodic("InferenceService", 30.0, inferenceservice.reconcile, max_per_second=10.0),
        Periodic("EvalJob", 3.0, evaljob.reconcile_evaljob, evaljob.in_progress),
        Periodic("EvalJob", evaljob.FINISHED_RESYNC_S, evaljob.reconcile_evaljob, evaljob.finished_job, name="finished EvalJobs"),
    ]
    loop = Resync(handlers.cached_kube(), periodics, watch=handlers.settings().watch_namespaces)
    memo["resync"] = asyncio.get_running_loop().create_task(loop.run(), name="resync")


@kopf.on.startup()
def start_coalescing(memo: kopf.Memo, **_: Any) -> None:
    """Child events mark their owner; one reconcile per burst, on the cached client."""
    client = handlers.cached_kube()

    def reconcile(key: Hashable) -> None:
        ns, name = cast(tuple[str, str], key)
        inferenceservice.reconcile_owner(client, ns, name)

    coalescer = coalesce.Coalescer(reconcile, delay_s=1.0).start()
    coalesce.configure(coalescer)
    memo["coalescer"] = coalescer
    # a replica's model fetch ending or failing: its owner's status at once (the pod cache's events)
    client.caches.on("Pod", inferenceservice.FetchWatch(coalescer.mark))


@kopf.on.cleanup()
async def stop_loops(memo: kopf.Memo, **_: Any) -> None:
    for name in ("warmup", "autoscaler", "direct-metrics", "resync"):
        task = memo.get(name)
        if task is not None:
            task.cancel()
    coalescer = memo.get("coalescer")
    if coalescer is not None:
        coalesce.configure(None)
        await asyncio.to_thread(coalescer.stop)
    await asyncio.to_thread(handlers.stop_caches)


class Health:
    """``/healthz`` and ``/readyz`` on the health port, for leader and standby alike.

    A standby replica waiting for the lease is healthy; the leader is healthy while kopf runs, its
    autoscaler loop completes passes and kopf's InferenceService watch shows the loop's writes (``liveness``).
    """

    def __init__(self, heartbeat: Heartbeat | None = None, period_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.operator: asyncio.Task[None] | None = None
        self.heartbeat = heartbeat or Heartbeat()
        self.period_s = period_s
        self.clock = clock
        self._said: str | None = None

    def problem(self) -> str | None:
        """Why the operator is unhealthy, or None (the 503's body on ``/healthz`` and ``/readyz``)."""
        if self.operator is not None and self.operator.done():
            return "the kopf operator task has stopped"
        stalled = self.heartbeat.stalled(self.clock(), self.period_s)
        if stalled and stalled != self._said:
            log.error("unhealthy: %s", stalled)
        self._said = stalled
        return stalled

    def ok(self) -> bool:
        return self.problem() is None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            path = line.decode(errors="replace").split(" ")[1] if line.count(b" ") >= 2 else "/"
            if path == "/metrics":
                # Prometheus 3 refuses a scrape without a Content-Type it knows; the classic text format
                ok, body, kind = True, telemetry.render(), b"text/plain; version=0.0.4; charset=utf-8"
            else:
                problem = self.problem() if path in ("/healthz", "/readyz") else f"no such path: {path}"
                ok = problem is None
                body, kind = (b"ok\n" if ok else f"unhealthy: {problem}\n".encode()), b"text/plain; charset=utf-8"
            status = b"200 OK" if ok else b"503 Service Unavailable"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: "
                + kind
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


async def _main(namespace: str, lease_name: str, identity: str, health_port: int, elect: bool, watch: tuple[str, ...]) -> None:
    s = handlers.settings()
    HEARTBEAT.limit(s.liveness_stall_periods, s.liveness_stall_min_seconds, s.liveness_watch_stall_min_seconds)
    health = Health(HEARTBEAT, s.loop_seconds)
    server = await asyncio.start_server(health.handle, "0.0.0.0", health_port)
    stop = asyncio.Event()
    terminated = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        terminated.set()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):  # a graceful stop for leader and standby alike
        loop.add_signal_handler(sig, on_signal)
    holder: asyncio.Task[None] | None = None
    elector: LeaseElector | None = None
    try:
        if elect:
            elector = LeaseElector(  # unfenced: it writes the lease
                Kube(), namespace, lease_name, identity, s.lease_duration_seconds, s.lease_renew_deadline_seconds, s.lease_retry_seconds
            )
            handlers.lead_by(elector.leading)  # every other client writes only while the lease is renewed in time
            acquiring = asyncio.create_task(elector.acquire())
            await asyncio.wait([acquiring, asyncio.create_task(terminated.wait())], return_when=asyncio.FIRST_COMPLETED)
            if terminated.is_set():
                acquiring.cancel()
                return
            holder = asyncio.create_task(elector.hold(stop))
        # watchNamespaces: kopf watches only those (the chart grants writes there only)
        run = kopf.operator(clusterwide=not watch, namespaces=list(watch), standalone=True, stop_flag=stop)
        health.operator = asyncio.create_task(run)
        await health.operator
    finally:
        server.close()
        if holder is not None:
            holder.cancel()
            # kopf ended without the lease lost: a signal (kopf takes SIGTERM over once it runs) or a crash.
            # Give the lease up so a standby leads at once; on the elector's thread, after any renewal in flight.
            if elector is not None and (terminated.is_set() or not stop.is_set()):
                await loop.run_in_executor(elector.pool, elector.release)
    if stop.is_set() and not terminated.is_set():
        raise SystemExit("foresail: lost the leader lease; exiting so a fresh replica can stand by")


def run(namespace: str | None, health_port: int, elect: bool) -> int:
    try:
        s = OperatorSettings.from_env(os.environ)
    except SettingsError as e:
        print(f"foresail run: {e}", file=sys.stderr)
        return 2
    try:
        client_args(PromAuth.from_settings(s))  # the credential files, checked before anything starts
    except PromAuthError as e:
        print(f"foresail run: Prometheus credentials (prometheus.auth): {e}", file=sys.stderr)
        return 2
    handlers.configure(s)
    logs.configure(s.log_level, s.log_format)
    load_config()
    ns = namespace or s.namespace
    identity = s.pod_name or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    log.info("foresail operator %s starting (lease %s/foresail-operator, election %s)", identity, ns, "on" if elect else "off")
    asyncio.run(_main(ns, "foresail-operator", identity, health_port, elect, s.watch_namespaces))
    return 0
