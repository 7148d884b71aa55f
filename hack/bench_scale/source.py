"""The benchmark's metrics source: ONE process serving Triton-format series for every simulated replica.

``python -m hack.bench_scale.source --cluster NAME --listen HOST:PORT --shards K --t0-file PATH --seed S ...``

It watches the pods carrying ``foresail.dev/inferenceservice`` (one list, then a watch), keeps each running
pod's counters, and on every scrape of ``/metrics/<i>`` moves the counters of the pods of shard ``i``
(crc32 of the pod's name mod K) on to now at the rate the load model (``hack.bench_scale.load``) gives the
service at that time, split evenly over its Ready pods (pods not Ready serve nothing; their series exist,
as Triton's do before warm-up). The series carry the labels Prometheus' relabelling gives real Triton
pods (``exposition``); the cluster's Prometheus scrapes the K shards as K static targets with
``honor_labels: true`` (``run.scrape_config``), so nothing about the labels is rewritten. Shards let
Prometheus scrape in parallel and keep each answer small.
"""

from __future__ import annotations

import argparse
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from foresail.api.objects import LABEL_ISVC, is_condition_true
from hack.base.log import logger
from hack.bench_scale.exposition import Replica, exposition
from hack.bench_scale.load import Counters, ServiceLoad, advance, plan_service, serve
from hack.testbed.cluster import Cluster

__all__ = ["Source", "main"]

log = logger("bench-scale-source")
Key = tuple[str, str]


class Source:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.pods: dict[Key, tuple[str, bool]] = {}  # (ns, pod) -> (service, ready)
        self.counters: dict[Key, tuple[Counters, float]] = {}  # (ns, pod) -> (counters, when moved last)
        self.loads: dict[Key, ServiceLoad] = {}
        self.scrapes = 0
        self._t0: float | None = None

    def load(self, key: Key) -> ServiceLoad:
        got = self.loads.get(key)
        if got is None:
            a = self.args
            got = plan_service(
                key, a.seed, replicas=a.replicas, capacity_rps=a.capacity_rps, steady_s=a.steady_s, duration_s=a.duration_s,
                period_s=a.period_s,
            )  # fmt: skip
            self.loads[key] = got
        return got

    def on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        svc = (meta.get("labels") or {}).get(LABEL_ISVC)
        running = (pod.get("status") or {}).get("phase") == "Running" and not meta.get("deletionTimestamp")
        with self.lock:
            if kind == "DELETED" or not running or not svc:
                self.pods.pop(key, None)
                self.counters.pop(key, None)
                return
            self.pods[key] = (svc, is_condition_true(pod, "Ready"))

    def t0(self) -> float | None:
        """The load model's time 0 (epoch s), once the benchmark wrote it: constant base rates until then."""
        if self._t0 is None:
            try:
                self._t0 = float(Path(self.args.t0_file).read_text())
            except (OSError, ValueError):
                return None
        return self._t0

    def render(self, shard: int, now: float) -> str:
        t0 = self.t0()
        t = -1.0 if t0 is None else now - t0
        with self.lock:
            ready: dict[Key, int] = {}
            for (ns, _), (svc, is_ready) in self.pods.items():
                if is_ready:
                    ready[(ns, svc)] = ready.get((ns, svc), 0) + 1
            replicas = []
            for key, (svc, is_ready) in sorted(self.pods.items()):
                if zlib.crc32(key[1].encode()) % self.args.shards != shard:
                    continue
                skey = (key[0], svc)
                rate = self.load(skey).rate(t) / ready[skey] if is_ready else 0.0
                c, last = self.counters.get(key, (Counters(), now))
                c = advance(c, now - last, serve(rate, self.args.capacity_rps))
                self.counters[key] = (c, now)
                replicas.append(Replica(key[0], key[1], svc, self.args.model, c))
            self.scrapes += 1
        return exposition(replicas)

    def watch(self, cluster: Cluster) -> None:
        path = f"/api/v1/pods?labelSelector={LABEL_ISVC}"
        while True:
            try:
                listed = cluster.kube.api("GET", path, timeout=60)
                seen = set()
                for pod in listed["items"]:
                    self.on_pod("ADDED", pod)
                    seen.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
                with self.lock:
                    for key in set(self.pods) - seen:
                        self.pods.pop(key, None)
                        self.counters.pop(key, None)
                rv = listed["metadata"]["resourceVersion"]
                while True:
                    for ev in cluster.kube.watch(path, rv, timeout_s=240):
                        obj = ev["object"]
                        rv = obj["metadata"].get("resourceVersion", rv)
                        if ev["type"] == "ERROR":
                            raise RuntimeError(f"watch error: {obj}")
                        if ev["type"] != "BOOKMARK":
                            self.on_pod(ev["type"], obj)
            except Exception as e:
                log(f"pod watch: {e!r}; listing again")
                time.sleep(1)


def _handler(source: Source) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            if parts == ["healthz"]:
                body, code = f"ok {len(source.pods)} pods {source.scrapes} scrapes\n".encode(), 200
            elif len(parts) == 2 and parts[0] == "metrics" and parts[1].isdigit() and int(parts[1]) < source.args.shards:
                body, code = source.render(int(parts[1]), time.time()).encode(), 200
            else:
                body, code = b"not found\n", 404
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="hack.bench_scale.source", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cluster", required=True)
    p.add_argument("--listen", required=True, help="HOST:PORT")
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--t0-file", required=True, help="where the benchmark writes the load model's time 0 (epoch seconds)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--replicas", type=int, default=5)
    p.add_argument("--capacity-rps", type=float, default=50.0)
    p.add_argument("--steady-s", type=float, default=120.0)
    p.add_argument("--duration-s", type=float, default=3600.0)
    p.add_argument("--period-s", type=float, default=90.0)
    p.add_argument("--model", default="m")
    args = p.parse_args(argv)
    source = Source(args)
    cluster = Cluster(args.cluster)
    threading.Thread(target=source.watch, args=(cluster,), name="pod-watch", daemon=True).start()
    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), _handler(source))
    log(f"serving {args.shards} shard(s) on http://{args.listen}/metrics/<i>")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
