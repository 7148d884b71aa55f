"""Prometheus outage: with a service held at 2 replicas whose scale-down is pending (minReplicas lowered to 1
while Prometheus is down), the replicas are never lowered during the outage, for longer than the scale-down
hold, MetricsAvailable is False during it and True again after, and the pending scale-down then happens."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest

from e2e.chaos.sampler import sampling
from e2e.helpers import triton_isvc
from foresail.api.objects import condition, parse_rfc3339, pod_is_live, pod_is_ready
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster

HOLD_S = 10  # spec.scaling.overrides.maxIdleHoldSeconds: the scale-down hold


@dataclass(frozen=True)
class Seen:
    replicas: int  # the Deployment's spec.replicas
    metrics: str  # MetricsAvailable's status
    reason: str  # the recommendation's reason
    decided_at: float  # the recommendation's time (the operator's clock), epoch seconds
    generation: int  # the generation MetricsAvailable was decided for


def _read(kube: Kube, ns: str, name: str) -> Seen:
    isvc = kube.api("GET", f"/apis/foresail.dev/v1alpha1/namespaces/{ns}/inferenceservices/{name}")
    dep = kube.api("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    rec: dict[str, Any] = (isvc.get("status") or {}).get("recommendation") or {}
    metrics = condition(isvc, "MetricsAvailable") or {}
    return Seen(
        dep["spec"]["replicas"],
        metrics.get("status", ""),
        rec.get("reason", ""),
        parse_rfc3339(rec["time"]) if rec.get("time") else 0.0,
        metrics.get("observedGeneration", 0),
    )


@pytest.mark.parametrize("holds", [pytest.param(3, id="3-holds"), pytest.param(15, id="15-holds", marks=pytest.mark.long)])
def test_no_scale_down_while_prometheus_is_down(operator: Kube, cluster: Cluster, namespace: str, holds: int) -> None:
    ns, name = namespace, "steady"
    operator.kubectl("apply", "-n", ns, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    obj = triton_isvc(name, 2)
    obj["spec"]["scaling"]["overrides"].update({"maxIdleHoldSeconds": HOLD_S, "maxScaleDownRate": 5})
    operator.create(obj, ns)

    def two_ready() -> bool:
        pods = [p for p in operator.pods(ns, f"foresail.dev/inferenceservice={name}") if pod_is_live(p)]
        return len(pods) == 2 and all(map(pod_is_ready, pods))

    wait_for("2 ready (warm) replicas", two_ready, timeout=300)
    wait_for("MetricsAvailable=True", lambda: _read(operator, ns, name).metrics == "True", timeout=120)

    with sampling(lambda: _read(operator, ns, name)) as seen:
        t_stop = time.monotonic()
        cluster.stop_prometheus()
        try:
            wait_for("MetricsAvailable=False", lambda: _read(operator, ns, name).metrics == "False", timeout=120)
            t_false = time.monotonic()
            # a scale-down is now due as soon as signals read idle (or zero) for the hold
            patch = {"spec": {"scaling": {"minReplicas": 1}}}
            operator.kubectl("patch", "fisvc", "-n", ns, name, "--type=merge", "-p", json.dumps(patch))
            gen = operator.get("fisvc", "-n", ns, name)["metadata"]["generation"]

            def decisions_span() -> float:
                """Seconds between the first and the last decision after the patch, on the operator's clock."""
                times = [s.decided_at for s in seen.between(t_false, time.monotonic()) if s.generation >= gen]
                return max(times) - min(times) if times else 0.0

            wait_for(
                f"decisions over {holds} x the {HOLD_S}s hold during the outage",
                lambda: decisions_span() >= holds * HOLD_S,
                timeout=holds * HOLD_S * 4 + 120,
                interval=1,
            )
            during = seen.between(t_stop, time.monotonic())
            held = [s for s in seen.between(t_false, time.monotonic()) if s.generation >= gen]
        finally:
            t_start = time.monotonic()
            cluster.start_prometheus()
        wait_for("MetricsAvailable=True after the outage", lambda: _read(operator, ns, name).metrics == "True", timeout=180)
        wait_for("the pending scale-down to 1 after the outage", lambda: _read(operator, ns, name).replicas == 1, timeout=240)
    outage = seen.between(t_stop, t_start)
    assert min(s.replicas for s in during) == 2, [s.replicas for s in during]
    assert min(s.replicas for s in outage) == 2, "replicas lowered while Prometheus was down"
    assert all(s.metrics == "False" for s in seen.between(t_false, t_start)), "MetricsAvailable=True while Prometheus was down"
    assert {s.reason for s in held} <= {"MetricsUnavailable", "MetricsFallback"}, {s.reason for s in held}
    print(
        f"\n[figure] Prometheus down {t_start - t_stop:.0f}s ({len(outage)} reads, {seen.errors} failed): replicas held at 2, "
        f"decisions over {holds} x the {HOLD_S}s hold"
    )
