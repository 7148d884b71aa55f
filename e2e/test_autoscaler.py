"""The autoscaler end to end: scale-up and scale-down of a real Triton service under load from the load
generator (the live signals against the real Prometheus: test_signals.py)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import yaml

from e2e.helpers import Kube, wait_for
from foresail.api.objects import condition, pod_is_ready
from hack.cluster import REPO


def _isvc(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["metadata"]["name"] = name
    obj["spec"]["slo"] = {"p99LatencyMs": 120}
    obj["spec"]["scaling"] = {
        "minReplicas": 1,
        "maxReplicas": 5,
        "capacityPerReplicaRps": 20,
        "overrides": {
            "tickSeconds": 2,
            "stableWindowSeconds": 10,
            "panicWindowSeconds": 4,
            "scaleDownDelaySeconds": 15,
            "forecastEnabled": False,
            "targetUtilizationPercent": 70,
            "headroomPercent": 0,
        },
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

    wait_for("MetricsAvailable=True (idle: nothing completed, nothing queued)", metrics_ok, timeout=60)
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
