"""Open-loop load generator for Triton services on the local cluster.

    hack/cluster exec -- .venv/bin/python -m hack.loadgen --service NS/NAME --model emulated \\
        (--trace FILE [--compress 10 --rate-scale 2 --start 600] | --profile step:from=5,to=50,at=30) \\
        --duration 60 [--max-requests N] [--max-inflight 512] [--out requests.csv] [--summary summary.json]

Arrivals are open loop: each request is sent at its scheduled time whether or not earlier ones have
answered. Targets are the *ready* endpoints of the Service, read from its EndpointSlices and refreshed
every ``--refresh`` seconds, used round robin (as a mesh or gateway would); ``--endpoints IP:PORT,...``
targets fixed addresses instead. Inputs are generated from the model's metadata (batch 1), as the operator's warm-up does.

Every request is recorded (scheduled and actual send time, latency, status, endpoint). A request that
finds ``--max-inflight`` requests already outstanding, or no ready endpoint, is recorded as an error,
never silently dropped. Bounded by ``--duration`` and ``--max-requests``. Runs inside the cluster's
client network namespace (``hack/cluster exec``), where pod IPs are reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.http.aio as triton_http

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from foresail.clients.triton import TritonReplica
from foresail.replay import traces


@dataclass
class Record:
    scheduled: float
    sent: float
    latency_ms: float
    status: str
    endpoint: str
    sent_unix: float = 0.0  # wall clock at send, to line requests up with Kubernetes timestamps


@dataclass
class Summary:
    requests: int
    ok: int
    errors: int
    duration_s: float
    offered_rps: float
    achieved_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    max_send_lag_ms: float
    errors_by_kind: dict[str, int]
    cpu_seconds: float
    cpu_percent: float


def summarise(records: list[Record], duration: float, cpu: float) -> Summary:
    ok = [r.latency_ms for r in records if r.status == "ok"]
    lat = np.array(ok) if ok else np.array([np.nan])
    errs: dict[str, int] = {}
    for r in records:
        if r.status != "ok":
            kind = r.status.split(":", 1)[0]
            errs[kind] = errs.get(kind, 0) + 1
    span = duration if duration > 0 else 1.0
    return Summary(
        requests=len(records),
        ok=len(ok),
        errors=len(records) - len(ok),
        duration_s=round(duration, 3),
        offered_rps=round(len(records) / span, 2),
        achieved_rps=round(len(ok) / span, 2),
        p50_ms=round(float(np.percentile(lat, 50)), 2),
        p95_ms=round(float(np.percentile(lat, 95)), 2),
        p99_ms=round(float(np.percentile(lat, 99)), 2),
        max_ms=round(float(np.max(lat)), 2),
        max_send_lag_ms=round(max((r.sent - r.scheduled for r in records), default=0.0) * 1000, 2),
        errors_by_kind=errs,
        cpu_seconds=round(cpu, 2),
        cpu_percent=round(100 * cpu / span, 1),
    )


class Endpoints:
    """Ready endpoints of a Service from its EndpointSlices, refreshed in the background."""

    def __init__(self, service: str | None, fixed: list[str], port_name: str, refresh: float) -> None:
        self.fixed = fixed
        self.service = service
        self.port_name = port_name
        self.refresh = refresh
        self.ready: list[str] = list(fixed)
        self._i = 0
        self._api: Any = None

    def _load(self) -> list[str]:
        from kubernetes import client, config

        if self._api is None:
            config.load_kube_config()  # type: ignore[no-untyped-call]
            self._api = client.DiscoveryV1Api()
        assert self.service is not None
        ns, name = self.service.split("/", 1)
        out: list[str] = []
        for s in self._api.list_namespaced_endpoint_slice(ns, label_selector=f"kubernetes.io/service-name={name}").items:
            port = next((p.port for p in s.ports or [] if p.name == self.port_name), None)
            if port is None and s.ports:
                port = s.ports[0].port
            for ep in s.endpoints or []:
                if ep.conditions and ep.conditions.ready:
                    out.extend(f"{a}:{port}" for a in ep.addresses)
        return sorted(out)

    async def run(self, stop: asyncio.Event) -> None:
        if self.service is None:
            return
        while not stop.is_set():
            try:
                self.ready = await asyncio.to_thread(self._load)
            except Exception as e:  # keep the last good set; report once per failure
                print(f"[loadgen] endpoint refresh failed: {e!r}", file=sys.stderr)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.refresh)

    def next(self) -> str | None:
        if not self.ready:
            return None
        self._i = (self._i + 1) % len(self.ready)
        return self.ready[self._i]


async def generate(args: argparse.Namespace, arrivals: traces.Arrivals) -> tuple[list[Record], float]:
    fixed = [e for e in (args.endpoints or "").split(",") if e]
    eps = Endpoints(args.service, fixed, args.port_name, args.refresh)
    stop = asyncio.Event()
    if args.service:
        eps.ready = await asyncio.to_thread(eps._load)
    refresher = asyncio.create_task(eps.run(stop))
    clients: dict[str, triton_http.InferenceServerClient] = {}

    def client_for(ep: str) -> triton_http.InferenceServerClient:
        if ep not in clients:
            clients[ep] = triton_http.InferenceServerClient(ep, conn_limit=args.max_inflight, conn_timeout=args.timeout)
        return clients[ep]

    if not eps.ready:
        raise SystemExit(f"loadgen: no ready endpoint for {args.service or fixed}")
    probe = TritonReplica(eps.ready[0])
    try:
        specs, max_batch = await probe.describe(args.model)
    finally:
        await probe.close()
    inputs = TritonReplica.generated(specs, 1, max_batch > 0, seed=0)

    records: list[Record] = []
    inflight = 0
    tasks: set[asyncio.Task[None]] = set()

    async def one(scheduled: float, ep: str) -> None:
        nonlocal inflight
        sent = time.monotonic()
        wall = time.time()
        status = "ok"
        try:
            await asyncio.wait_for(client_for(ep).infer(args.model, inputs), timeout=args.timeout)
        except TimeoutError:
            status = "timeout"
        except Exception as e:  # recorded, never dropped
            status = f"error:{type(e).__name__}:{str(e)[:120]}"
        finally:
            inflight -= 1
        records.append(Record(scheduled - t0, sent - t0, (time.monotonic() - sent) * 1000, status, ep, wall))

    t0 = time.monotonic()
    for t in arrivals.times:
        target = t0 + t
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        ep = eps.next()
        now = time.monotonic()
        if ep is None:
            records.append(Record(t, now - t0, 0.0, "no-ready-endpoint", ""))
            continue
        if inflight >= args.max_inflight:
            records.append(Record(t, now - t0, 0.0, "client-queue-full", ep))
            continue
        inflight += 1
        task = asyncio.create_task(one(target, ep))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=args.timeout + 5)
    duration = time.monotonic() - t0
    stop.set()
    await refresher
    for c in clients.values():
        await c.close()
    records.sort(key=lambda r: r.scheduled)
    return records, duration


def arrivals_from(args: argparse.Namespace) -> traces.Arrivals:
    if args.trace:
        arr = traces.reshape(
            traces.load_trace(args.trace),
            compress=args.compress,
            rate_scale=args.rate_scale,
            start=args.start,
            duration=args.duration * args.compress,
            seed=args.seed,
        )
    else:
        kind, params = traces.parse_profile(args.profile)
        arr = traces.profile_arrivals(kind, params, args.duration, seed=args.seed)
    n = min(len(arr), args.max_requests)
    return traces.Arrivals(arr.times[:n], arr.work[:n])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hack.loadgen", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--service", help="NAMESPACE/NAME of the Service whose ready endpoints get the load")
    p.add_argument("--endpoints", help="fixed HOST:PORT list instead of --service")
    p.add_argument("--port-name", default="http", help="EndpointSlice port name (default http)")
    p.add_argument("--model", required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--trace", help="CSV with a timestamp column")
    src.add_argument(
        "--profile", help="constant:rate=R | step:from=A,to=B,at=T | ramp:from=A,to=B,over=S[,at=T] | sine:mean=M,amp=A,period=P"
    )
    p.add_argument("--compress", type=float, default=1.0, help="trace time compression factor")
    p.add_argument("--rate-scale", type=float, default=1.0, help="trace rate multiplier")
    p.add_argument("--start", type=float, default=0.0, help="trace offset to start at (trace seconds)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (wall clock)")
    p.add_argument("--max-requests", type=int, default=200_000)
    p.add_argument("--max-inflight", type=int, default=512)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--refresh", type=float, default=0.5, help="EndpointSlice refresh period, seconds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", help="per-request CSV")
    p.add_argument("--summary", help="write the summary JSON here too")
    args = p.parse_args(argv)
    if not args.service and not args.endpoints:
        p.error("one of --service or --endpoints is required")
    if args.duration <= 0 or args.duration > 7200 or args.max_requests <= 0:
        p.error("--duration must be in (0, 7200] and --max-requests > 0")

    arrivals = arrivals_from(args)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    records, duration = asyncio.run(generate(args, arrivals))
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    summary = summarise(records, duration, cpu)
    if args.out:
        with open(args.out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["scheduled_s", "sent_s", "latency_ms", "status", "endpoint", "sent_unix"])
            for r in records:
                w.writerow(
                    [f"{r.scheduled:.6f}", f"{r.sent:.6f}", f"{r.latency_ms:.3f}", r.status, r.endpoint, f"{r.sent_unix:.6f}"]
                )
    text = json.dumps(asdict(summary), indent=1)
    if args.summary:
        Path(args.summary).write_text(text)
    print(text)
    print(
        f"| requests | ok | errors | offered rps | p50 ms | p95 ms | p99 ms | cpu % |\n|---|---|---|---|---|---|---|---|\n"
        f"| {summary.requests} | {summary.ok} | {summary.errors} | {summary.offered_rps} | {summary.p50_ms} | "
        f"{summary.p95_ms} | {summary.p99_ms} | {summary.cpu_percent} |",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
