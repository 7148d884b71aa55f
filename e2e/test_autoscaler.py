"""The autoscaler end to end: the Prometheus client against the real Prometheus, and scale-up and
scale-down of a real Triton service under load from the load generator."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import yaml

from e2e.helpers import Kube, wait_for
from foresail.api.objects import condition, pod_is_ready
from foresail.clients.prometheus import PromClient
from foresail.scaling.observe import ServiceSignals
from hack import netns
from hack.cluster import REPO, Cluster


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

    return netns.call_in(cluster.network.client_ns, lambda: asyncio.run(go()), timeout=30)


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


def test_scales_up_under_load_and_back_down_with_real_triton(operator: Kube, namespace: str) -> None:
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    operator.create(_isvc("auto"), namespace)
    wait_for(
        "1 ready replica",
        lambda: (p := operator.pods(namespace, "foresail.dev/inferenceservice=auto")) and all(map(pod_is_ready, p)) and len(p) == 1,
        timeout=120,
    )

    def metrics_ok() -> bool:
        c = condition(operator.get("fisvc", "-n", namespace, "auto"), "MetricsAvailable")
        return bool(c and c["status"] == "True")

    wait_for("MetricsAvailable=True (idle: p99 NaN without traffic counts as no pressure)", metrics_ok, timeout=60)
    cmd = operator.cluster.exec_cmd(
        [
            sys.executable,
            "-m",
            "hack.loadgen",
            "--service",
            f"{namespace}/auto",
            "--model",
            "emulated",
            "--profile",
            "constant:rate=60",
            "--duration",
            "40",
        ]
    )
    gen = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = wait_for(
        "a scale-up to at least 3 replicas",
        lambda: (n := operator.get("deploy", "-n", namespace, "auto")["spec"]["replicas"]) >= 3 and n,
        timeout=40,
    )
    isvc = operator.get("fisvc", "-n", namespace, "auto")
    rec = isvc["status"]["recommendation"]
    print(
        f"\n[figure] scale-up under 60 rps: {peak} replicas; reason: {rec['reason']}; observed {isvc['status'].get('observed')}"
    )
    assert rec["replicas"] >= 3
    assert rec["reason"]
    assert isvc["status"]["observed"]["arrivalRps"] > 20
    _, err = gen.communicate(timeout=120)
    assert gen.returncode == 0, err
    wait_for(
        "scaled back down to minReplicas",
        lambda: operator.get("deploy", "-n", namespace, "auto")["spec"]["replicas"] == 1,
        timeout=90,
    )
    reasons = [e["reason"] for e in operator.get("events", "-n", namespace)["items"] if e["involvedObject"].get("kind") == "InferenceService"]
    assert "ScaledUp" in reasons and "ScaledDown" in reasons, reasons
    st = operator.get("fisvc", "-n", namespace, "auto")["status"]
    assert st["desiredReplicas"] == 1
    assert condition(st and {"status": st}, "ScalingActive")["status"] == "True"  # type: ignore[index]
