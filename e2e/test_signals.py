"""The live signals end to end: real Triton replicas (the emulated model, its slow first requests on),
the real Prometheus, the operator's status against what the load generator measured, and Triton's
bounded queue (spec.triton.queuePolicy) rejecting, counted, and drained."""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from e2e.helpers import http_in_cluster, observed, prom_query, serving, triton_isvc
from foresail.api.objects import parse_rfc3339
from foresail.clients.prometheus import CounterRead, MetricsError, PromClient
from foresail.clients.replica_metrics import ReplicaMetrics
from foresail.scaling.counters import PodSample
from hack.base import netns
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.loadgen import in_cluster
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import upgrade_foresail

COLD_EXTRA_MS = 200.0  # the emulated model's first 20 executions are this much slower (config.pbtxt)


def _window(obs: dict[str, Any], seconds: float) -> dict[str, Any]:
    return next(w for w in obs.get("windows", []) if w["seconds"] == seconds)


def _load(cluster: Cluster, service: str, rate: float, seconds: float, out: Path) -> subprocess.Popen[str]:
    cmd = in_cluster(
        cluster, "--service", service, "--model", "emulated", "--profile", f"constant:rate={rate:g}",
        "--duration", f"{seconds:g}", "--out", str(out), "--max-inflight", "2048",
    )  # fmt: skip
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@dataclass(frozen=True)
class Requests:
    """The load generator's per-request record: when each was sent and answered, and how."""

    sent: np.ndarray[Any, np.dtype[np.float64]]
    done: np.ndarray[Any, np.dtype[np.float64]]
    latency_ms: np.ndarray[Any, np.dtype[np.float64]]
    status: list[str]

    @classmethod
    def read(cls, path: Path) -> Requests:
        with path.open() as f:
            rows = list(csv.DictReader(f))
        sent = np.array([float(r["sent_unix"]) for r in rows])
        lat = np.array([float(r["latency_ms"]) for r in rows])
        return cls(sent, sent + lat / 1000.0, lat, [r["status"] for r in rows])

    def sent_in(self, a: float, b: float) -> int:
        return int(((self.sent > a) & (self.sent <= b)).sum())

    def ok_latencies(self, a: float, b: float) -> np.ndarray[Any, np.dtype[np.float64]]:
        ok = np.array([s == "ok" for s in self.status])
        return self.latency_ms[ok & (self.done > a) & (self.done <= b)]

    def rejected(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        return np.array(["Request timeout expired" in s for s in self.status])


def _in_client_ns(cluster: Cluster, coro: Any) -> Any:
    return netns.call_in(cluster.network.client_ns, lambda: asyncio.run(coro()), timeout=30)


def test_counter_reads_from_the_real_prometheus_and_triton_agree(operator: Kube, cluster: Cluster, namespace: str) -> None:
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    operator.create(triton_isvc("reads", 2), namespace)
    pods = serving(operator, namespace, "reads", 2)
    names = sorted(p["metadata"]["name"] for p in pods)
    key = (namespace, "reads")
    url = cluster.network.prometheus_url

    async def prometheus(model: str, base: str = url) -> CounterRead:
        client = PromClient(base)
        try:
            return await client.counter_samples(75, {key: model})
        finally:
            await client.close()

    def both_scraped() -> dict[str, list[PodSample]] | None:
        got: CounterRead = _in_client_ns(cluster, lambda: prometheus("emulated"))
        s = got.samples.get(key, {})
        return s if sorted(s) == names and all(len(v) >= 3 for v in s.values()) else None

    samples = wait_for("both replicas' raw samples in Prometheus", both_scraped, timeout=60)
    for pod, series in samples.items():
        gaps = np.diff([s.t for s in series])
        assert 0.5 < float(np.median(gaps)) < 2.0, (pod, gaps)  # every 1 s scrape, once
        assert series[-1].success >= 20, "the warm-up's requests are counted by Triton"
        assert all(s.bad_value() is None for s in series)
    other: CounterRead = _in_client_ns(cluster, lambda: prometheus("other-model"))
    assert all(v == [] for v in other.samples.get(key, {}).values()), "another model's series are not this service's"
    with pytest.raises(MetricsError):
        _in_client_ns(cluster, lambda: prometheus("emulated", url + "/no-such-prefix"))

    async def direct() -> dict[str, PodSample | str]:
        r = ReplicaMetrics(timeout=2.0)
        try:
            return await r.read({p["metadata"]["name"]: (f"http://{p['status']['podIP']}:8002/metrics", "emulated") for p in pods})
        finally:
            await r.close()

    def agree() -> dict[str, list[PodSample]] | None:
        got = _in_client_ns(cluster, direct)
        prom = both_scraped() or {}
        for pod in names:
            d, p = got[pod], prom.get(pod, [None])[-1]
            assert isinstance(d, PodSample), (pod, d)
            if p is None or (d.success, d.failure, d.request_us) != (p.success, p.failure, p.request_us):
                return None
        return prom

    # idle replicas: their own endpoints and Prometheus' newest scrape read the same counters (once the
    # scrape after the warm-up's last request is in)
    wait_for("the replicas' own counters and Prometheus' to agree", agree, timeout=30, interval=1.0)


def test_observed_signals_match_the_load_generator_and_leave_the_warm_up_out(operator: Kube, cluster: Cluster, namespace: str) -> None:
    """Two replicas whose warm-up left 20 slow (+200 ms) requests in their latency summaries; 40 rps for
    100 s. While a replica's summary still holds its warm-up, the operator's p99 must not show it; once
    both have been warm a minute, arrivals, mean latency and p99 must match what the load generator saw."""
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    operator.create(triton_isvc("sig", 2), namespace)
    pods = serving(operator, namespace, "sig", 2)
    warm_at = max(parse_rfc3339(c["lastTransitionTime"]) for p in pods for c in p["status"]["conditions"] if c["type"] == "foresail.dev/warm")
    out = Path(tempfile.mkdtemp(prefix="signals-")) / "requests.csv"
    rate = 40.0
    started = time.time()
    gen = _load(cluster, f"{namespace}/sig", rate, 100, out)
    seen: list[dict[str, Any]] = []

    def both_replicas_in_p99() -> dict[str, Any] | None:
        obs = observed(operator, namespace, "sig")
        if obs.get("windows"):
            seen.append(obs)
        fresh = obs.get("time") and parse_rfc3339(obs["time"]) >= started + 65
        return obs if fresh and obs.get("p99Replicas") == 2 else None

    final = wait_for("signals from both replicas warm for a minute, after 65 s of load", both_replicas_in_p99, timeout=150, interval=1.0)
    _, err = gen.communicate(timeout=120)
    assert gen.returncode == 0, err
    req = Requests.read(out)

    early = [o for o in seen if o.get("p99Replicas", 0) == 0]
    print(f"\n[figure] warm at {warm_at - started:+.0f}s from load start; {len(early)} status updates before any replica's summary was clear of the warm-up")
    for o in seen:
        if o.get("p99Replicas", 0) == 0:
            assert o.get("p99Ms") is None, o  # not measured yet (no replica's summary is clear of its warm-up): absent, not 0
        else:
            assert o.get("p99Ms") is not None and o["p99Ms"] < COLD_EXTRA_MS, f"the warm-up's slow requests leaked into the observed p99: {o}"
    assert final["source"] == "Prometheus" and 0.5 <= final["sampleIntervalSeconds"] <= 2.0, final

    t = parse_rfc3339(final["time"])
    w10, w60 = _window(final, 10), _window(final, 60)
    sent10, sent60 = req.sent_in(t - 11, t - 1) / 10, req.sent_in(t - 61, t - 1) / 60
    lat60 = req.ok_latencies(t - 61, t - 1)
    gen_p99, gen_mean10 = float(np.percentile(lat60, 99)), float(req.ok_latencies(t - 11, t - 1).mean())
    print(
        f"[figure] arrivals 10 s {w10['arrivalRps']:.1f} vs sent {sent10:.1f} rps; 60 s {w60['arrivalRps']:.1f} vs {sent60:.1f}; "
        f"mean latency 10 s {w10['meanLatencyMs']:.1f} vs {gen_mean10:.1f} ms; p99 60 s {w60['p99Ms']:.1f} vs {gen_p99:.1f} ms; "
        f"queue wait {w10['meanQueueWaitMs']:.1f} ms"
    )
    # the windows end at the newest scrape (up to 1 s before the status time): compared with what was sent
    # in the second before, with Poisson noise and a scrape's offset
    assert w10["arrivalRps"] == pytest.approx(sent10, rel=0.15), (w10, sent10)
    assert w60["arrivalRps"] == pytest.approx(sent60, rel=0.05), (w60, sent60)
    assert w60["rejectionRps"] == 0.0
    # Triton measures inside the server; the load generator adds its client and the network (~1-3 ms here)
    assert w10["meanLatencyMs"] == pytest.approx(gen_mean10, rel=0.25, abs=5.0), (w10, gen_mean10)
    assert w60["p99Ms"] == pytest.approx(gen_p99, rel=0.25, abs=8.0), (w60, gen_p99)
    assert 0.0 < w10["meanQueueWaitMs"] < w10["meanLatencyMs"]


def test_the_bounded_queue_rejects_counts_and_drains(operator: Kube, cluster: Cluster, namespace: str) -> None:
    """One replica that serves ~90 rps (batch of 32 in 360 ms) offered 150 rps, with queuePolicy timeoutMs
    500: what waits longer is rejected by Triton, counted as REJECTED and by the operator as rejections
    and arrivals, the queue stays bounded, and it is empty soon after the overload ends."""
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    env = [{"name": "FORESAIL_EMULATED_BASE_MS", "value": "40"}, {"name": "FORESAIL_EMULATED_PER_ITEM_MS", "value": "10"}]
    operator.create(triton_isvc("bq", 1, env=env, queuePolicy={"timeoutMs": 500}), namespace)
    (pod,) = serving(operator, namespace, "bq", 1)
    code, body = http_in_cluster(cluster, f"http://{pod['status']['podIP']}:8000/v2/models/emulated/config")
    assert code == 200, body
    policy = json.loads(body)["dynamic_batching"]["default_queue_policy"]
    assert policy["timeout_action"] == "REJECT" and int(policy["default_timeout_microseconds"]) == 500_000, policy

    out = Path(tempfile.mkdtemp(prefix="queue-")) / "requests.csv"
    started = time.time()
    gen = _load(cluster, f"{namespace}/bq", 150, 40, out)
    seen: list[dict[str, Any]] = []

    def rejecting() -> dict[str, Any] | None:
        obs = observed(operator, namespace, "bq")
        if obs.get("windows"):
            seen.append(obs)
            # the whole 10 s window inside the overload (the load generator starts in a few seconds)
            if _window(obs, 10)["rejectionRps"] > 20 and parse_rfc3339(obs["time"]) >= started + 16:
                return obs
        return None

    hot = wait_for("rejections over the operator's 10 s window", rejecting, timeout=60, interval=1.0)
    _, err = gen.communicate(timeout=120)
    assert gen.returncode == 0, err
    req = Requests.read(out)
    rejected = req.rejected()
    others = {s for s, r in zip(req.status, rejected, strict=True) if s != "ok" and not r}
    assert rejected.sum() > 0 and not others, others

    triton: dict[str, float] = {}
    n = int(rejected.sum())

    def counted() -> bool:
        for r in prom_query(cluster, f'sum by (reason) (nv_inference_request_failure{{namespace="{namespace}"}})'):
            triton[r["metric"]["reason"]] = float(r["value"][1])
        return n <= triton.get("REJECTED", 0.0) <= n * 1.005 + 1

    # every time-out the load generator got is one in Triton's REJECTED counter (measured: equal in three
    # runs against a local tritonserver; one more in Triton's count, of ~2,500, in some cluster runs: cause
    # not found, hence the tolerance of one in 200)
    try:
        wait_for(f"Triton's REJECTED counter at the load generator's {n} time-outs", counted, timeout=30)
    except AssertionError as e:
        raise AssertionError(f"{e}; Triton's failures by reason: {triton}; requests {len(req.status)}") from None
    assert sum(triton.values()) == triton["REJECTED"], triton
    t = parse_rfc3339(hot["time"])
    w = _window(hot, 10)
    sent = req.sent_in(t - 11, t - 1) / 10
    print(
        f"\n[figure] overload: arrivals {w['arrivalRps']:.1f} vs sent {sent:.1f} rps, completions {w['completionRps']:.1f}, "
        f"rejections {w['rejectionRps']:.1f} rps; largest queue seen {max(o['queueDepth'] for o in seen):.0f}; "
        f"{int(rejected.sum())} of {len(req.status)} requests rejected"
    )
    assert w["arrivalRps"] == pytest.approx(sent, rel=0.25), (w, sent)
    # bounded: what can wait at most 500 ms at ~90 rps served, plus the batch forming
    assert max(o["queueDepth"] for o in seen) <= 150 * 0.5 + 32, seen
    wait_for(
        "the backlog gone after the overload",
        lambda: (o := observed(operator, namespace, "bq")).get("queueDepth") == 0 and _window(o, 2)["arrivalRps"] == 0,
        timeout=60,
    )


def test_direct_reads_of_the_replicas_when_the_operator_is_set_to(operator: Kube, cluster: Cluster, namespace: str) -> None:
    """metrics.source=direct: the operator reads the serving replicas' own endpoints every second, and
    status says so; back to Prometheus afterwards (the session's operator is shared)."""
    def source(value: str) -> None:
        upgrade_foresail(cluster, {"metrics.source": value}, timeout_s=180)

    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    operator.create(triton_isvc("direct", 1), namespace)
    serving(operator, namespace, "direct", 1)
    wait_for("signals from Prometheus first", lambda: observed(operator, namespace, "direct").get("source") == "Prometheus", timeout=60)
    source("direct")
    try:
        # the new operator replicas take over once the old leader's lease lapses
        wait_for("signals from the replica's own endpoint", lambda: observed(operator, namespace, "direct").get("source") == "Direct", timeout=90)
        out = Path(tempfile.mkdtemp(prefix="direct-")) / "requests.csv"
        gen = _load(cluster, f"{namespace}/direct", 20, 60, out)
        seen: list[dict[str, Any]] = []

        def direct_with_traffic() -> dict[str, Any] | None:
            seen.append(obs := observed(operator, namespace, "direct"))
            ok = obs.get("source") == "Direct" and not obs.get("note") and obs.get("windows") and _window(obs, 10)["completionRps"] > 10
            return obs if ok else None

        try:
            obs = wait_for("the load in the direct signals", direct_with_traffic, timeout=60, interval=1.0)
        except AssertionError as e:
            gen.kill()
            raise AssertionError(f"{e}; observed: {seen[-3:]}; load generator: {gen.communicate()}") from None
        print(f"\n[figure] direct: samples every {obs['sampleIntervalSeconds']} s, 10 s window {_window(obs, 10)}")
        assert obs["sampleIntervalSeconds"] <= 2.0
        _, err = gen.communicate(timeout=120)
        assert gen.returncode == 0, err
    finally:
        source("prometheus")
