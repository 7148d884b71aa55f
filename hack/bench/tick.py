"""Micro-benchmark of one autoscaler pass at N services, in process, without a cluster.

``python -m hack.bench.tick [--services 200 1000 2000] [--passes 12]``: the autoscaler (the operator's code,
unchanged) against the unit tests' fake apiserver and a Prometheus stand-in over HTTP, both in a *separate
process* so that their cost is not counted; the stand-in answers each pass's counters query with the Triton
samples of every replica (one per service, 10 to 40 rps) since the bench's simulated clock last moved
(``--cached``: through the operator's watch-fed caches, ``clients.caches``). Every service has its Deployment, one
warm pod, a node share of GPUs; 50 namespaces owned by 20 Tenants. It prints, per N: pass duration p50
and max (the first pass apart: it reads a minute of samples), apiserver requests per pass by verb (a pass
where decisions are due, and one where none is), and the process's RSS after the passes (after every N
measured so far: give one N per run for a figure of that N alone).

What it does not measure: the real apiserver's and Prometheus' own time (the fake answers from memory),
the kopf handlers (reconciler, resync timers) and warm-up. It is the operator side of the tick only; the
cluster benchmark of issue 14 is still to be written. Writes ``out/bench/tick.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from kubernetes import client

from foresail.clients.caches import CachedKube, Caches
from foresail.clients.kube import Kube
from foresail.clients.prometheus import PromClient
from foresail.controllers.autoscaler import Autoscaler
from hack.bench.report import write_report

__all__ = ["main"]

NOW = 1_800_000_000.0
NAMESPACES, TENANTS, TICK = 50, 20, 5.0


def _names(n: int) -> list[tuple[str, str]]:
    return [(f"ns{i % NAMESPACES}", f"svc{i}") for i in range(n)]


def _prometheus(n: int) -> ThreadingHTTPServer:
    """Counters for every replica over [t0, t1], set by ``/clock?t0=&t1=``; range queries answer nothing."""
    from tests.fakes.http import send_json

    window = {"t0": NOW - 75, "t1": NOW - 1}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            q = {k: float(v[0]) for k, v in parse_qs(url.query).items() if k in ("t0", "t1")}
            if url.path == "/clock":
                window.update(q)
                send_json(self, 200, {})
            elif url.path.endswith("/query_range"):
                send_json(self, 200, {"status": "success", "data": {"resultType": "matrix", "result": []}})
            else:
                send_json(self, 200, _counters(n, window["t0"], window["t1"]))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve(n: int) -> None:
    """The fake apiserver holding N services and the Prometheus stand-in (run in their own process); prints
    their URLs, serves until stdin closes."""
    from tests.controllers.objects import deployment, isvc, namespace, node, pod, tenant
    from tests.fakes.apiserver import FakeApiServer

    api = FakeApiServer()
    for t in range(TENANTS):
        nss = [f"ns{i}" for i in range(NAMESPACES) if i % TENANTS == t]
        api.put(tenant(f"t{t}", nss, limit=8 * n))
    for i in range(NAMESPACES):
        api.put(namespace(f"ns{i}"))
    for k in range(n // 8 + 1):
        api.put(node(f"n{k}"))
    for i, (ns, name) in enumerate(_names(n)):
        api.put(
            isvc(name, ns, scaling__capacityPerReplicaRps=20, scaling__maxReplicas=8, scaling__overrides={"forecastEnabled": True}),
            deployment(name, ns, replicas=1),
            pod(name, ns, 0, node=f"n{i // 8}"),
        )
    prom = _prometheus(n)
    print(api.url, f"http://127.0.0.1:{prom.server_address[1]}", flush=True)
    sys.stdin.read()
    prom.shutdown()
    api.close()


def _counters(n: int, t0: float, t1: float) -> dict[str, Any]:
    """The counters query's answer: every replica's samples, one a second, over [t0, t1]."""
    from tests.fakes.counters import steady
    from tests.fakes.prometheus import matrix

    replicas = {(ns, name, f"{name}-0"): steady(t0, t1, 10.0 + i % 31, start=(10.0 + i % 31) * (t0 - NOW + 100)) for i, (ns, name) in enumerate(_names(n))}
    return {"status": "success", "data": {"resultType": "matrix", "result": matrix(replicas, model="resnet50")}}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _passes(api_url: str, prom_url: str, n: int, passes: int, cached: bool = False) -> dict[str, Any]:
    cfg = client.Configuration()
    cfg.host = api_url
    kube = Kube(client.ApiClient(cfg), timeout=120.0)
    caches = None
    if cached:  # the operator's watch-fed caches; the lists and watches that fill them are not the pass's
        caches = Caches.for_operator(Kube(client.ApiClient(cfg), timeout=120.0)).start()
        await asyncio.to_thread(caches.wait_synced, 600)
        kube = CachedKube(kube, caches)
    prom = PromClient(prom_url, timeout=120.0)
    clock = httpx.AsyncClient(base_url=prom_url, timeout=60.0)
    a = Autoscaler(kube, prom, loop_seconds=TICK)
    durations, requests = [], []
    try:
        for k in range(passes):
            now = NOW + TICK * k
            await clock.get("/clock", params={"t0": now - (75 if k == 0 else TICK + 2), "t1": now - 1})
            sent = kube.sent.copy()
            t0 = time.perf_counter()
            await a.run_once(now)
            durations.append(time.perf_counter() - t0)
            requests.append(dict(kube.sent - sent))
            if caches is not None:
                await asyncio.sleep(1.0)  # the pass's writes reach the caches (the next pass is a tick later)
        sent = kube.sent.copy()
        await clock.get("/clock", params={"t0": now - 2, "t1": now - 0.5})
        await a.run_once(now + 0.5)  # nothing due
        idle = dict(kube.sent - sent)
    finally:
        await a.close()
        await prom.close()
        await clock.aclose()
        if caches is not None:
            caches.stop()
    steady = durations[1:]
    return {
        "services": n,
        "cached": cached,
        "first_pass_s": round(durations[0], 3),
        "pass_p50_s": round(statistics.median(steady), 3),
        "pass_max_s": round(max(steady), 3),
        "requests_due_pass": requests[-1],
        "requests_idle_pass": idle,
        "rss_mb": round(_rss_mb(), 1),
    }


def measure(n: int, passes: int, cached: bool = False) -> dict[str, Any]:
    server = subprocess.Popen([sys.executable, "-m", "hack.bench.tick", "--serve", str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        api_url, prom_url = server.stdout.readline().split()
        return asyncio.run(_passes(api_url, prom_url, n, passes, cached))
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--services", type=int, nargs="+", default=[200, 1000, 2000])
    ap.add_argument("--passes", type=int, default=12)
    ap.add_argument("--cached", action="store_true", help="read through the operator's watch-fed caches, as `foresail run` does")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=Path("out/bench"))
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    rows = []
    for n in args.services:
        rows.append(measure(n, args.passes, args.cached))
        print(json.dumps(rows[-1]), flush=True)

    def verbs(d: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "0"

    md = "| services | first pass s | pass p50 s | pass max s | requests, pass with decisions | requests, idle pass | RSS MB |\n"
    md += "|---|---|---|---|---|---|---|\n"
    md += "".join(
        f"| {r['services']} | {r['first_pass_s']} | {r['pass_p50_s']} | {r['pass_max_s']} | {verbs(r['requests_due_pass'])} "
        f"| {verbs(r['requests_idle_pass'])} | {r['rss_mb']} |\n"
        for r in rows
    )
    write_report(args.out, "tick", {"runs": rows}, md)


if __name__ == "__main__":
    main()
