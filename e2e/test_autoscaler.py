"""The autoscaler end to end: scale-up and scale-down of a real Triton service under load from the load
generator (the live signals against the real Prometheus: test_signals.py)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import yaml

from foresail.api.objects import is_condition_true, pod_is_live, pod_is_ready
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.loadgen import in_cluster
from hack.testbed.cluster import Cluster


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
