"""One scale benchmark run on the local cluster (see the package docstring): cluster, Prometheus' scrape of
the metrics source, the operator by the chart, Tenants, namespaces and services, then the phases, sampled."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from foresail.api.objects import LABEL_ISVC, is_condition_true
from hack.base import netns
from hack.base.kube import KubeError
from hack.base.log import logger
from hack.base.paths import REPO
from hack.base.proc import free_port, stop_pid
from hack.base.wait import wait_for
from hack.bench_scale import figures as fig
from hack.bench_scale.failover import failover
from hack.bench_scale.load import plan_service, wanted_replicas
from hack.testbed.cluster import Cluster
from hack.testbed.cluster import prometheus as prom_cfg
from hack.testbed.cluster.chart import SYSTEM_NS, helm, install_foresail, tenant_manifest
from hack.testbed.cluster.nodes import node_manifests

__all__ = ["Sampler", "run", "scrape_config", "service_manifest"]

log = logger("bench-scale")
NS_PREFIX = "bench-"
API = "/apis/foresail.dev/v1alpha1"
LEASE = f"/apis/coordination.k8s.io/v1/namespaces/{SYSTEM_NS}/leases/foresail-operator"
READ_VERBS = ("GET", "LIST", "WATCH")


def scrape_config(base: dict[str, Any], listen: str, shards: int) -> dict[str, Any]:
    """The cluster's Prometheus configuration for the benchmark: the Triton job no longer tries the simulated
    pods' addresses (nothing listens there: kwok runs them), and one job scrapes the metrics source's shards
    as static targets every second, keeping the series' own labels (``honor_labels``): namespace, pod and
    foresail_dev_inferenceservice are written by the source exactly as the Triton job's relabelling writes
    them for a real pod, so the operator's query cannot tell them apart."""
    cfg: dict[str, Any] = json.loads(json.dumps(base))
    for job in cfg["scrape_configs"]:
        if job["job_name"] == "triton":
            job["relabel_configs"] = [
                {"source_labels": ["__meta_kubernetes_namespace"], "action": "drop", "regex": f"{NS_PREFIX}.*"},
                *job["relabel_configs"],
            ]
    cfg["scrape_configs"].append({
        "job_name": "bench-scale-source",
        "honor_labels": True,
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "static_configs": [
            {"targets": [listen], "labels": {"__metrics_path__": f"/metrics/{i}", "instance": f"source-{i}"}} for i in range(shards)
        ],
    })  # fmt: skip
    return cfg


def service_manifest(name: str, replicas: int, capacity_rps: float, slo_ms: float) -> dict[str, Any]:
    """A service of pause replicas (kwok simulates them; warm-up off), one GPU each, up to 2x ``replicas``."""
    return {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "m", "repository": {"configMap": {"name": "models"}}},
            "triton": {"image": "registry.k8s.io/pause:3.10", "gpusPerReplica": 1},
            "slo": {"p99LatencyMs": slo_ms},
            "scaling": {
                "minReplicas": 1, "maxReplicas": 2 * replicas, "policyRef": "balanced", "capacityPerReplicaRps": capacity_rps,
            },
            "warmup": {"enabled": False},
        },
    }  # fmt: skip


def _get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return str(r.read().decode(errors="replace"))


@dataclass
class Sampler:
    """Reads, on its own thread, the operator's /metrics (the leader's) and the Lease every second, the
    apiserver's and Prometheus' /metrics every 10 s, and watches Deployments for replica writes."""

    cluster: Cluster
    op: list[dict[str, Any]] = field(default_factory=list)
    api: list[dict[str, Any]] = field(default_factory=list)
    lease: list[dict[str, Any]] = field(default_factory=list)
    writes: list[fig.Write] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._loop, name="sampler", daemon=True).start()
        threading.Thread(target=self._deployments, name="deployments", daemon=True).start()

    def _err(self, what: str, e: Exception) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1
        if self.errors[what] in (1, 10, 100):
            log(f"sampler: {what}: {e!r} (x{self.errors[what]})")

    def leader_url(self) -> tuple[str, str] | None:
        lease = self.cluster.kube.api("GET", LEASE)
        holder = (lease.get("spec") or {}).get("holderIdentity") or ""
        pods = self.cluster.kube.pods(SYSTEM_NS, "app.kubernetes.io/component=operator")
        for p in pods:
            if p["metadata"]["name"] == holder or holder.startswith(p["metadata"]["name"]):
                ip = (p.get("status") or {}).get("podIP")
                if ip:
                    return holder, f"http://{ip}:8080/metrics"
        return None

    def _loop(self) -> None:
        net = self.cluster.network
        last_slow = 0.0
        url: tuple[str, str] | None = None
        names = (
            "foresail_autoscaler_loop_seconds_count", "foresail_autoscaler_loop_seconds_sum",
            "foresail_autoscaler_apiserver_requests_per_loop", "foresail_autoscaler_queries_per_loop",
            "process_resident_memory_bytes", "process_cpu_seconds_total", "foresail_apiserver_requests_total",
        )  # fmt: skip
        while not self.stop.is_set():
            t = time.time()
            try:
                lease = self.cluster.kube.api("GET", LEASE)
                spec = lease.get("spec") or {}
                self.lease.append({"t": t, "holder": spec.get("holderIdentity"), "transitions": spec.get("leaseTransitions", 0)})
                if url is None or url[0] != spec.get("holderIdentity"):
                    url = self.leader_url()
            except Exception as e:
                self._err("lease", e)
            if url is not None:
                try:
                    text = netns.call_in(net.client_ns, partial(_get, url[1]), timeout=8)
                    s = fig.parse_metrics(text, names)
                    reqs = fig.sum_by(s, "foresail_autoscaler_apiserver_requests_per_loop", "verb")
                    self.op.append({
                        "t": t, "holder": url[0],
                        "count": fig.sum_by(s, "foresail_autoscaler_loop_seconds_count").get("", 0.0),
                        "sum": fig.sum_by(s, "foresail_autoscaler_loop_seconds_sum").get("", 0.0),
                        "requests": reqs,
                        "queries": fig.sum_by(s, "foresail_autoscaler_queries_per_loop").get(""),
                        "rss": fig.sum_by(s, "process_resident_memory_bytes").get(""),
                        "cpu": fig.sum_by(s, "process_cpu_seconds_total").get(""),
                        "by_resource": fig.by_labels(s, "foresail_apiserver_requests_total", ("verb", "resource")),
                    })  # fmt: skip
                except Exception as e:
                    self._err("operator metrics", e)
                    url = None
            if t - last_slow >= 10:
                last_slow = t
                try:
                    self.api.append({"t": t, **self.slow()})
                except Exception as e:
                    self._err("apiserver/prometheus metrics", e)
            self.stop.wait(max(0.0, 1.0 - (time.time() - t)))

    def slow(self) -> dict[str, Any]:
        text = self.cluster.kube.api("GET", "/metrics", raw=True, timeout=30)
        s = fig.parse_metrics(text, ("apiserver_request_total", "apiserver_flowcontrol_dispatched_requests_total"))
        net = self.cluster.network
        ptext = netns.call_in(net.client_ns, lambda: _get(f"{net.prometheus_url}/metrics"), timeout=10)
        p = fig.parse_metrics(ptext, ("prometheus_http_requests_total",))
        return {
            "by_verb": fig.sum_by(s, "apiserver_request_total", "verb"),
            "by_flow": fig.sum_by(s, "apiserver_flowcontrol_dispatched_requests_total", "flow_schema"),
            "prom_queries": sum(fig.sum_by(p, "prometheus_http_requests_total", "handler").get(h, 0.0)
                                for h in ("/api/v1/query", "/api/v1/query_range")),
        }  # fmt: skip

    def _deployments(self) -> None:
        path = f"/apis/apps/v1/deployments?labelSelector={LABEL_ISVC}"
        known: dict[tuple[str, str], int] = {}
        while not self.stop.is_set():
            try:
                listed = self.cluster.kube.api("GET", path, timeout=60)
                for d in listed["items"]:
                    known[(d["metadata"]["namespace"], d["metadata"]["labels"][LABEL_ISVC])] = int(d["spec"].get("replicas", 1))
                rv = listed["metadata"]["resourceVersion"]
                while not self.stop.is_set():
                    for ev in self.cluster.kube.watch(path, rv, timeout_s=120):
                        obj = ev["object"]
                        rv = obj["metadata"].get("resourceVersion", rv)
                        if ev["type"] not in ("ADDED", "MODIFIED"):
                            continue
                        key = (obj["metadata"]["namespace"], obj["metadata"]["labels"][LABEL_ISVC])
                        n = int(obj["spec"].get("replicas", 1))
                        if known.get(key) != n:
                            known[key] = n
                            self.writes.append(fig.Write(time.time(), key, n))
            except Exception as e:
                self._err("deployment watch", e)
                time.sleep(1)


# ---------------------------------------------------------------------------------------------- setup


def _nodes_for(args: argparse.Namespace) -> int:
    extra: int = args.churn * 2 if args.churn_minutes > 0 else 0
    services: int = args.services
    replicas: int = args.replicas_per_service
    gpus: int = args.gpus_per_node
    return max(4, math.ceil((services + extra) * 2 * replicas / gpus) + 1)


def _cluster(args: argparse.Namespace) -> Cluster:
    nodes = _nodes_for(args)
    c = Cluster(args.cluster, nodes=nodes, gpus_per_node=args.gpus_per_node)
    if c.state is not None and c.alive():
        have = len(c.kube.api("GET", "/api/v1/nodes")["items"])
        gpus = c.state.gpus_per_node
        for node in node_manifests(nodes, gpus, c.state.gpu_products)[have:]:
            c.kube.api("POST", "/api/v1/nodes", node)
        log(f"reusing cluster {c.name!r}: {max(have, nodes)} nodes")
    else:
        log(f"starting cluster {c.name!r}: {nodes} kwok nodes x {args.gpus_per_node} GPUs")
        c.up()
    return c


def _prometheus(c: Cluster, listen: str, shards: int) -> None:
    path = c.run.path / "prometheus.yml"
    base = prom_cfg.scrape_config(c.run, c.kube.creds.server)
    path.write_text(json.dumps(scrape_config(base, listen, shards), indent=1))
    url = f"{c.network.prometheus_url}/-/reload"

    def reload() -> None:
        urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10).read()

    netns.call_in(c.network.client_ns, reload, timeout=15)
    log(f"Prometheus scrapes the metrics source at {listen} ({shards} shards, honor_labels)")


def _operator(c: Cluster, args: argparse.Namespace) -> None:
    if helm(c, "status", "foresail", "-n", SYSTEM_NS).returncode == 0:
        log("the operator is installed already (reused cluster)")
        return
    t0 = time.monotonic()
    install_foresail(c, {"autoscaler.loopSeconds": f"{args.loop_seconds:g}", "resources.limits.memory": args.operator_memory})
    log(f"helm install foresail: {time.monotonic() - t0:.0f}s")


def _tenancy(c: Cluster, args: argparse.Namespace) -> list[str]:
    kube = c.kube
    nss = [f"{NS_PREFIX}{i}" for i in range(args.namespaces)]
    for ns in nss:
        try:
            kube.api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        except KubeError as e:
            if e.code != 409:
                raise
    total = _nodes_for(args) * args.gpus_per_node
    for t in range(args.tenants):
        owned = nss[t :: args.tenants]
        limit = total // args.tenants
        kube.apply(tenant_manifest(f"bench-t{t}", owned, limit=limit, guaranteed=limit // 2))
    for ns in nss:
        c.wait_default_service_account(ns)
        kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "models", "namespace": ns}, "data": {}})

    def owned_all() -> bool:
        items = kube.api("GET", "/api/v1/namespaces?labelSelector=foresail.dev/tenant")["items"]
        return sum(1 for n in items if n["metadata"]["name"] in nss) == len(nss)

    wait_for("the operator owning every benchmark namespace", owned_all, timeout=180, interval=1)
    return nss


def _create(c: Cluster, keys: list[tuple[str, str]], args: argparse.Namespace) -> None:
    def one(key: tuple[str, str]) -> None:
        body = service_manifest(key[1], args.replicas_per_service, args.capacity_rps, args.slo_ms)
        try:
            c.kube.api("POST", f"{API}/namespaces/{key[0]}/inferenceservices", body, timeout=60)
        except KubeError as e:
            if e.code != 409:
                raise

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, keys))


def _delete(c: Cluster, keys: list[tuple[str, str]]) -> None:
    def one(key: tuple[str, str]) -> None:
        try:
            c.kube.api("DELETE", f"{API}/namespaces/{key[0]}/inferenceservices/{key[1]}", timeout=60)
        except KubeError as e:
            if e.code != 404:
                raise

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, keys))


def _ready_pods(c: Cluster, prefix: str = "") -> tuple[int, int, set[str]]:
    """(pods, ready pods, services with a ready pod) of the benchmark's services (names starting with ``prefix``)."""
    items = c.kube.api("GET", f"/api/v1/pods?labelSelector={LABEL_ISVC}", timeout=120)["items"]
    pods = [p for p in items if p["metadata"]["labels"][LABEL_ISVC].startswith(prefix)]
    ready = [p for p in pods if is_condition_true(p, "Ready")]
    return len(pods), len(ready), {f"{p['metadata']['namespace']}/{p['metadata']['labels'][LABEL_ISVC]}" for p in ready}


def _settle(c: Cluster, n_services: int, deadline: float) -> dict[str, Any]:
    """Wait until every service has a ready replica and the ready count held for 20 s (or ``deadline``)."""
    t0, last, stable_since = time.monotonic(), -1, time.monotonic()
    pods = ready = 0
    served: set[str] = set()
    while time.monotonic() < deadline:
        try:
            pods, ready, served = _ready_pods(c, "svc-")
        except Exception as e:
            log(f"settle: {e!r}")
        if ready != last:
            last, stable_since = ready, time.monotonic()
        if len(served) >= n_services and time.monotonic() - stable_since >= 20:
            break
        time.sleep(3)
    out = {"settle_s": round(time.monotonic() - t0, 1), "pods": pods, "ready_pods": ready, "services_serving": len(served)}
    log(f"settled: {out}")
    return out


# ---------------------------------------------------------------------------------------------- figures


def _window(rows: list[dict[str, Any]], a: float, b: float) -> list[dict[str, Any]]:
    return [r for r in rows if a <= r["t"] <= b]


def _phase(s: Sampler, a: float, b: float, loop_s: float) -> dict[str, Any]:
    ops, apis = _window(s.op, a, b), _window(s.api, a, b)
    out: dict[str, Any] = {"seconds": round(b - a, 1)}
    if len(ops) >= 2:
        durs = fig.tick_durations([(r["count"], r["sum"]) for r in ops])
        ticks = fig.growth([r["count"] for r in ops])  # across a restart of the operator (its counters reset)
        out.update(
            ticks=ticks,
            operator_restarts=fig.restarts([r["count"] for r in ops]),
            tick_p50_s=fig.percentile(durs, 0.5),
            tick_p99_s=fig.percentile(durs, 0.99),
            tick_max_s=max(durs) if durs else None,
            ticks_over_loop_period=sum(1 for d in durs if d > loop_s),
            operator_cpu_cores=fig.growth([r["cpu"] for r in ops]) / (ops[-1]["t"] - ops[0]["t"]),
            operator_rss_mb_end=ops[-1]["rss"] / 2**20,
            operator_rss_mb_max=max(r["rss"] for r in ops) / 2**20,
            autoscaler_requests_per_tick_gauge={
                v: round(sum(r["requests"].get(v, 0.0) for r in ops) / len(ops), 2)
                for v in ("GET", "PATCH", "PUT", "POST", "DELETE")
            },
            prometheus_queries_per_tick_gauge=fig.percentile([r["queries"] for r in ops if r["queries"] is not None], 0.5),
            operator_requests_per_tick_by_resource=fig.per_tick({}, fig.growth_by_key([r["by_resource"] for r in ops]), max(ticks, 1.0)),
        )
        if len(apis) >= 2:
            first, last = apis[0], apis[-1]
            c0 = next((r["count"] for r in ops if r["t"] >= first["t"]), ops[0]["count"])
            c1 = next((r["count"] for r in reversed(ops) if r["t"] <= last["t"]), ops[-1]["count"])
            ticks_api = max(c1 - c0, 1.0)
            dv = {v: last["by_verb"].get(v, 0.0) - first["by_verb"].get(v, 0.0) for v in last["by_verb"]}
            out.update(
                apiserver_all_clients_by_verb_per_tick={v: round(x / ticks_api, 1) for v, x in sorted(dv.items()) if x},
                apiserver_all_reads_per_tick=sum(x for v, x in dv.items() if v in READ_VERBS) / ticks_api,
                apiserver_all_writes_per_tick=sum(x for v, x in dv.items() if v not in READ_VERBS) / ticks_api,
                apiserver_operator_flow_per_tick=(
                    last["by_flow"].get("service-accounts", 0.0) - first["by_flow"].get("service-accounts", 0.0)
                ) / ticks_api,
                prometheus_queries_per_tick=(last["prom_queries"] - first["prom_queries"]) / ticks_api,
            )  # fmt: skip
    return out


def _series_left(s: Sampler, prefix: str) -> int | None:
    url = s.leader_url()
    if url is None:
        return None
    text = netns.call_in(s.cluster.network.client_ns, partial(_get, url[1]), timeout=10)
    return sum(1 for line in text.splitlines() if f'inferenceservice="{prefix}' in line)


# ---------------------------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    budget_end = started + args.budget_seconds
    notes: list[str] = []
    c = _cluster(args)
    t0_file = c.run.path / "bench-scale-t0"
    t0_file.unlink(missing_ok=True)
    port = free_port()
    listen = f"{c.network.bridge_ip}:{port}"
    pods_max = args.services * 2 * args.replicas_per_service
    shards = args.shards or max(1, math.ceil(pods_max / 1500))
    steady_s = args.steady_seconds
    measure_s = args.minutes * 60.0
    src_cmd = [
        sys.executable, "-m", "hack.bench_scale.source", "--cluster", c.name, "--listen", listen, "--shards", str(shards),
        "--t0-file", str(t0_file), "--seed", str(args.seed), "--replicas", str(args.replicas_per_service),
        "--capacity-rps", str(args.capacity_rps), "--steady-s", str(steady_s), "--duration-s", str(measure_s),
        "--period-s", str(args.period_seconds),
    ]  # fmt: skip
    logf = open(c.run.logs / "bench-scale-source.log", "ab")  # noqa: SIM115 - closed at the end
    source = subprocess.Popen(src_cmd, cwd=REPO, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    log(f"metrics source pid {source.pid} on {listen}")
    sampler = Sampler(c)
    result: dict[str, Any] = {}
    try:
        _prometheus(c, listen, shards)
        _operator(c, args)
        sampler.start()
        nss = _tenancy(c, args)
        keys = [(nss[i % len(nss)], f"svc-{i:04d}") for i in range(args.services)]
        t_create = time.monotonic()
        _create(c, keys, args)
        created_s = time.monotonic() - t_create
        log(f"created {len(keys)} services in {created_s:.0f}s")
        reserve = args.churn_minutes * 60.0 + 45.0 + (90.0 if args.failover else 0.0)
        settle = _settle(c, len(keys), min(time.monotonic() + args.settle_seconds, budget_end - reserve - 60))
        measure_s = min(measure_s, budget_end - time.monotonic() - reserve)
        if measure_s < steady_s + 30:
            notes.append(f"the budget left {measure_s:.0f}s to measure (wanted {args.minutes * 60:.0f}s)")
        t0 = time.time()
        t0_file.write_text(f"{t0}\n")
        steady_end = t0 + min(steady_s, measure_s)
        log(f"measuring: {min(steady_s, measure_s):.0f}s constant load, then {max(0.0, measure_s - steady_s):.0f}s of rate steps")
        time.sleep(max(0.0, measure_s))
        t_end = time.time()
        phases = {
            "steady": _phase(sampler, t0 + 10, steady_end, args.loop_seconds),
            "changes": _phase(sampler, steady_end, t_end, args.loop_seconds),
            "all": _phase(sampler, t0, t_end, args.loop_seconds),
        }
        changes = []
        for key in keys:
            load = plan_service(
                key, args.seed, replicas=args.replicas_per_service, capacity_rps=args.capacity_rps, steady_s=steady_s,
                duration_s=measure_s, period_s=args.period_seconds,
            )  # fmt: skip
            for at, before, after in load.changes():
                w0 = wanted_replicas(before, args.capacity_rps, args.slo_ms, 2 * args.replicas_per_service)
                w1 = wanted_replicas(after, args.capacity_rps, args.slo_ms, 2 * args.replicas_per_service)
                changes.append(fig.Change(t0 + at, key, w0, w1))
        delays, missed = fig.reaction_delays(changes, list(sampler.writes), until=t_end - 5)
        holders = {r["holder"] for r in _window(sampler.lease, t0, t_end)}
        transitions = [r["transitions"] for r in _window(sampler.lease, t0, t_end)]
        killed = failover(c, sampler, _get, min(240.0, budget_end - time.monotonic() - 40)) if args.failover else {}
        churn: dict[str, Any] = {}
        if args.churn_minutes > 0 and args.churn > 0:
            churn = _churn(c, sampler, nss, args, min(args.churn_minutes * 60.0, budget_end - time.monotonic() - 40))
            phases["churn"] = _phase(sampler, churn["t_start"], churn["t_end"], args.loop_seconds)
        st, ch = phases["steady"], phases["changes"]
        figures = {
            "tick_p50_s": phases["all"].get("tick_p50_s"),
            "tick_p99_s": phases["all"].get("tick_p99_s"),
            "ticks_over_loop_period": phases["all"].get("ticks_over_loop_period"),
            "apiserver_reads_per_tick_steady": (st.get("autoscaler_requests_per_tick_gauge") or {}).get("GET"),
            "apiserver_writes_per_tick_steady": sum(v for k, v in (st.get("autoscaler_requests_per_tick_gauge") or {}).items() if k != "GET") or 0,
            "apiserver_reads_per_tick_churn": (phases.get("churn", ch).get("autoscaler_requests_per_tick_gauge") or {}).get("GET"),
            "apiserver_writes_per_tick_churn": sum(v for k, v in (phases.get("churn", ch).get("autoscaler_requests_per_tick_gauge") or {}).items() if k != "GET"),
            "apiserver_operator_requests_per_tick_steady": st.get("apiserver_operator_flow_per_tick"),
            "apiserver_operator_requests_per_tick_changes": ch.get("apiserver_operator_flow_per_tick"),
            "apiserver_operator_requests_per_tick_churn": phases["churn"].get("apiserver_operator_flow_per_tick") if "churn" in phases else None,
            "apiserver_all_clients_per_tick_steady": _sum2(st.get("apiserver_all_reads_per_tick"), st.get("apiserver_all_writes_per_tick")),
            "prometheus_queries_per_tick": phases["all"].get("prometheus_queries_per_tick"),
            "operator_rss_mb_end": phases["all"].get("operator_rss_mb_end"),
            "operator_cpu_cores": phases["all"].get("operator_cpu_cores"),
            "rate_change_to_write_p50_s": fig.percentile(delays, 0.5),
            "rate_change_to_write_p90_s": fig.percentile(delays, 0.9),
            "rate_changes_without_write": missed,
            "lease_lost": len(holders) > 1 or (len(set(transitions)) > 1),
            **({"failover_lease_s": killed.get("lease_s"), "failover_first_pass_s": killed.get("first_pass_s")} if killed else {}),
            **({"churn_rss_growth_percent": churn.get("rss_growth_percent"), "churn_series_left": churn.get("series_left")} if churn else {}),
        }  # fmt: skip
        if sampler.errors:
            notes.append(f"sampler errors: {sampler.errors}")
        result = {
            "benchmark": "scale",
            "setting": {
                "services": args.services,
                "namespaces": args.namespaces,
                "tenants": args.tenants,
                "replicas_per_service": args.replicas_per_service,
                "minutes": round(measure_s / 60, 2),
                "seed": args.seed,
                "nodes": _nodes_for(args),
                "gpus_per_node": args.gpus_per_node,
                "loop_seconds": args.loop_seconds,
                "operator_memory_limit": args.operator_memory,
                "source_shards": shards,
                "operator": _git_rev(),
            },
            "figures": figures,
            "phases": phases,
            "setup": {"create_s": round(created_s, 1), **settle},
            "rate_changes": {
                "steps": len(changes),
                "steps_changing_replicas": len(delays) + missed,
                "delays_s": [round(d, 1) for d in delays],
            },
            "churn": {k: v for k, v in churn.items() if not k.startswith("t_")},
            "failover": killed,
            "lease": {"holders": sorted(h for h in holders if h), "transitions": sorted(set(transitions))},
            "notes": notes,
        }
        return result
    finally:
        sampler.stop.set()
        stop_pid(source.pid, 5.0)
        logf.close()
        if not args.keep:
            c.down()


def _churn(c: Cluster, s: Sampler, nss: list[str], args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    """Create and delete ``args.churn`` services repeatedly for ``seconds``; the leader's RSS before and after."""

    def rss() -> float | None:
        return s.op[-1]["rss"] / 2**20 if s.op else None

    before, t_start, rounds = rss(), time.time(), 0
    end = time.monotonic() + max(0.0, seconds - 20)
    log(f"churn: {args.churn} services created and deleted for {seconds:.0f}s (RSS before {before} MB)")
    while time.monotonic() < end:
        keys = [(nss[i % len(nss)], f"churn-{rounds % 100:02d}-{i:03d}") for i in range(args.churn)]
        _create(c, keys, args)
        ready_by = time.monotonic() + 60
        while time.monotonic() < min(ready_by, end) and len(_ready_pods(c, f"churn-{rounds % 100:02d}-")[2]) < len(keys):
            time.sleep(3)
        _delete(c, keys)
        gone_by = time.monotonic() + 60
        while time.monotonic() < gone_by and _ready_pods(c, "churn-")[0]:
            time.sleep(3)
        rounds += 1
    time.sleep(15)
    after = rss()
    left = _series_left(s, "churn-")
    t_end = time.time()
    growth = (after - before) / before * 100 if before and after else None
    log(f"churn: {rounds} rounds, RSS {before} -> {after} MB, {left} series of deleted services left")
    return {"t_start": t_start, "t_end": t_end, "rounds": rounds, "rss_mb_before": before, "rss_mb_after": after,
            "rss_growth_percent": growth, "series_left": left}  # fmt: skip


def _sum2(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _git_rev() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "operator"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def write(result: dict[str, Any], out: Path) -> Path:
    """``scale-<services>.json`` and ``.md`` in ``out``; the table printed."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"scale-{result['setting']['services']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    md = fig.markdown(result)
    stem.with_suffix(".md").write_text(md)
    print(md, flush=True)
    return stem
