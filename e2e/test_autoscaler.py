"""The autoscaler end to end: the Prometheus client against the real Prometheus, and scale-up and
scale-down of a real Triton service under load from the load generator."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import yaml

from foresail.api.objects import is_condition_true, pod_is_live, pod_is_ready
from foresail.clients.prometheus import PromClient
from foresail.scaling.observe import ServiceSignals
from hack.base import netns
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.loadgen import in_cluster
from hack.testbed.cluster import Cluster


def _snapshot(
    cluster: Cluster, queries: dict[str, str] | None = None, stale_after: float = 30.0
) -> dict[tuple[str, str], ServiceSignals]:
    async def go() -> dict[tuple[str, str], ServiceSignals]:
        client = PromClient(cluster.network.prometheus_url, queries=queries, rate_window="10s", stale_after=stale_after)
        try:
            out, _ = await client.snapshot(time.time())
            return out
        finally:
            await client.close()

    return netns.call_in(cluster.network.client_ns, lambda: asyncio.run(go()), timeout=60)


def _vec(value: str, svc: str = "crafted") -> str:
    """A one-series vector carrying the grouping labels, built by PromQL itself."""
    return f'label_replace(label_replace(vector({value}), "namespace", "ns", "", ""), "foresail_dev_inferenceservice", "{svc}", "", "")'


def test_prometheus_client_policy_against_real_prometheus(cluster: Cluster) -> None:
    good = {"arrival": _vec("5"), "queue": _vec("1"), "p99": _vec("20"), "freshness": _vec("time()")}
    cases: list[tuple[str, dict[str, str], str | None]] = [
        ("all good", {}, None),
        ("NaN p99 with traffic", {"p99": _vec("NaN")}, "p99: not a finite number"),
        ("+Inf queue", {"queue": _vec("+Inf")}, "queue: not a finite number"),
        ("empty result", {"p99": 'vector(1) and on() absent(up{job="no-such-job"}) == 0'}, "p99: no series"),
        (
            "two series for one service",
            {"arrival": f'{_vec("1")} or label_replace({_vec("2")}, "x", "y", "", "")'},
            "arrival: multiple series",
        ),
        ("stale samples", {"freshness": _vec("time() - 600")}, "stale"),
    ]
    for name, override, error in cases:
        out = _snapshot(cluster, {**good, **override})
        m = out.get(("ns", "crafted"))
        if error is None:
            assert m is not None and m.ok, (name, m)
        else:
            assert m is not None, name
            assert not m.ok, name
            assert any(error in e for e in m.errors), (name, m.errors)
    idle = _snapshot(cluster, {**good, "arrival": _vec("0"), "p99": _vec("NaN")})[("ns", "crafted")]
    assert idle.ok and idle.p99_ms == 0.0, "NaN p99 without traffic means no latency pressure"


def _isvc(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["metadata"]["name"] = name
    obj["spec"]["slo"] = {"p99LatencyMs": 120}
    obj["spec"]["scaling"] = {
        "minReplicas": 1,
        "maxReplicas": 5,
        "capacityPerReplicaRps": 20,
        # the idle hold capped so that the scale-down comes within the test's patience
        "overrides": {"tickSeconds": 2, "maxIdleHoldSeconds": 20, "maxScaleDownRate": 5},
    }
    obj["spec"]["warmup"] = {"requests": 5, "timeoutSeconds": 120}
    return obj


def test_scales_up_under_load_and_back_down_with_real_triton(operator: Kube, cluster: Cluster, namespace: str) -> None:
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    operator.create(_isvc("auto"), namespace)

    def one_ready() -> bool:
        pods = [p for p in operator.pods(namespace, "foresail.dev/inferenceservice=auto") if pod_is_live(p)]
        return len(pods) == 1 and pod_is_ready(pods[0])

    wait_for("1 ready replica", one_ready, timeout=300)
    wait_for(
        "MetricsAvailable=True (idle: p99 NaN without traffic counts as no pressure)",
        lambda: is_condition_true(operator.get("fisvc", "-n", namespace, "auto"), "MetricsAvailable"),
        timeout=120,
    )
    # the load runs until the scale-up has been seen (SIGTERM ends it early), however long that takes on a busy machine
    cmd = in_cluster(
        cluster, "--service", f"{namespace}/auto", "--model", "emulated", "--profile", "constant:rate=60", "--duration", "240"
    )
    gen = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        peak = wait_for(
            "a scale-up to at least 3 replicas",
            lambda: (n := operator.get("deploy", "-n", namespace, "auto")["spec"]["replicas"]) >= 3 and n,
            timeout=180,
        )
        isvc = wait_for(
            "the recommendation and observed rate in status",
            lambda: (
                (obj := operator.get("fisvc", "-n", namespace, "auto"))["status"].get("recommendation", {}).get("replicas", 0)
                >= 3
                and obj["status"].get("observed", {}).get("arrivalRps", 0) > 20
                and obj
            ),
            timeout=60,
        )
    finally:
        gen.terminate()
        _, err = gen.communicate(timeout=120)
    rec = isvc["status"]["recommendation"]
    print(
        f"\n[figure] scale-up under 60 rps: {peak} replicas; reason: {rec['reason']}; observed {isvc['status'].get('observed')}"
    )
    assert rec["reason"]
    assert gen.returncode == 0, err
    wait_for(
        "scaled back down to minReplicas",
        lambda: operator.get("deploy", "-n", namespace, "auto")["spec"]["replicas"] == 1,
        timeout=240,
    )

    def events() -> list[str]:
        items = operator.get("events", "-n", namespace)["items"]
        return [e["reason"] for e in items if e["involvedObject"].get("kind") == "InferenceService"]

    wait_for("ScaledUp and ScaledDown events", lambda: {"ScaledUp", "ScaledDown"} <= set(events()), timeout=60)
    wait_for(
        "status: desired 1, ScalingActive",
        lambda: (
            (st := operator.get("fisvc", "-n", namespace, "auto"))["status"].get("desiredReplicas") == 1
            and is_condition_true(st, "ScalingActive")
        ),
        timeout=60,
    )
