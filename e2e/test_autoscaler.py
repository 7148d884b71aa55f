"""The autoscaler end to end: scale-up and scale-down of a real Triton service under load from the load
generator (the live signals against the real Prometheus: test_signals.py)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import yaml

from e2e.helpers import http_in_cluster
from foresail.api.objects import is_condition_true, pod_is_live, pod_is_ready
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.loadgen import in_cluster
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS


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
        "MetricsAvailable=True (idle: nothing completed, nothing queued)",
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


def test_a_paused_service_is_held_at_its_paused_count_then_released(operator: Kube, namespace: str) -> None:
    """KEDA-like pause: ``foresail.dev/paused-replicas`` sets the replicas and holds them (Paused=True);
    removing it hands them back to the autoscaler (the condition goes)."""
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    obj = _isvc("paused")
    obj["metadata"]["annotations"] = {"foresail.dev/paused-replicas": "2"}
    operator.create(obj, namespace)

    def paused() -> bool:
        isvc = operator.get("fisvc", "-n", namespace, "paused")
        dep = operator.kubectl("get", "deploy", "-n", namespace, "paused", "-o", "json", check=False)
        return dep.returncode == 0 and json.loads(dep.stdout)["spec"]["replicas"] == 2 and is_condition_true(isvc, "Paused")

    wait_for("replicas held at the paused count 2 with Paused=True", paused, timeout=180)
    operator.kubectl("annotate", "-n", namespace, "fisvc", "paused", "foresail.dev/paused-replicas-")

    def released() -> bool:
        isvc = operator.get("fisvc", "-n", namespace, "paused")
        conds = {c["type"] for c in isvc.get("status", {}).get("conditions") or []}
        return "Paused" not in conds and isvc["status"].get("recommendation", {}).get("reason") != "Paused"

    wait_for("the pause released: no Paused condition, the autoscaler deciding again", released, timeout=120)


def _operator_metrics(operator: Kube, cluster: Cluster) -> dict[str, float]:
    """The leader's own /metrics (health port), as {'name{labels}': value}."""
    leader = operator.get("lease", "-n", SYSTEM_NS, "foresail-operator")["spec"]["holderIdentity"]
    ip = operator.get("pod", "-n", SYSTEM_NS, leader)["status"]["podIP"]
    code, body = http_in_cluster(cluster, f"http://{ip}:8080/metrics")
    assert code == 200, body
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_the_leader_reads_from_synced_watch_caches_and_a_pass_lists_nothing(operator: Kube, cluster: Cluster) -> None:
    """Issue 14: every informer synced against the real apiserver (label and field selectors, bookmarks),
    the autoscaler's passes read no object from the apiserver, and the requests are counted by verb."""

    def synced() -> dict[str, float] | None:
        m = _operator_metrics(operator, cluster)
        caches = {k: v for k, v in m.items() if k.startswith("foresail_cache_synced{")}
        return m if len(caches) == 11 and all(v == 1.0 for v in caches.values()) else None

    wait_for("all 11 caches synced", synced, timeout=120)

    def no_reads() -> dict[str, float] | None:
        m = _operator_metrics(operator, cluster)
        return m if m.get('foresail_autoscaler_apiserver_requests_per_loop{verb="GET"}') == 0.0 else None

    m = wait_for("a pass that read nothing from the apiserver", no_reads, timeout=120)
    watches = {k: v for k, v in m.items() if k.startswith("foresail_apiserver_requests_total{") and 'verb="WATCH"' in k}
    assert any('resource="pods"' in k for k in watches) and any('resource="nodes"' in k for k in watches), watches
    print("\n[figure] operator requests by resource and verb: " + ", ".join(
        f"{k.split('{', 1)[1].rstrip('}')}={v:.0f}" for k, v in sorted(m.items()) if k.startswith("foresail_apiserver_requests_total{")))
