"""Two tenants share the cluster's 32 fake GPUs (4 kwok nodes x 8) through the operator's arbiter.

The services run pause containers (kwok simulates them; warm-up off): what is under test is who gets
GPUs, not Triton. Demand comes from each service's minReplicas (the autoscaler holds replicas without
metrics and never goes under min unless the quota says so). The scenario and what it checks:

1. A (guaranteed 16, limit 28) runs critical 4 + standard 16 + batch 6; B (guaranteed 16) runs 2.
   A borrows B's idle guarantee: 26 GPUs.
2. B's demand rises to 8: the 2 GPUs that no longer fit come out of A's batch work first.
3. B's demand rises to 16: A shrinks back to its guarantee (batch 0, standard 12); critical never moves.
Figures (time from B's rise to B holding its guarantee, idle GPUs while demand was pending) go to
``out/e2e/tenants.json`` and the test log.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import pause_deployment, pause_isvc
from foresail.api.objects import condition, pod_is_live, pod_is_ready
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import own_namespace, tenant_manifest

TOTAL_GPUS = 32


def _isvc(name: str, priority: str, min_replicas: int, max_replicas: int = 30) -> dict[str, Any]:
    return pause_isvc(name, min_replicas=min_replicas, max_replicas=max_replicas, priority=priority)


def _gpu_pods(kube: Kube) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = kube.get("pods", "-A")["items"]
    return [
        p
        for p in pods
        if pod_is_live(p)
        and any((c.get("resources") or {}).get("limits", {}).get("nvidia.com/gpu") for c in p["spec"]["containers"])
    ]


def _bound(pods: list[dict[str, Any]]) -> int:
    return sum(1 for p in pods if p["spec"].get("nodeName"))


@pytest.fixture
def teams(operator: Kube, cluster: Cluster) -> Iterator[tuple[str, str]]:
    """Two namespaces, each owned by a tenant of the same name; removed afterwards."""
    # other tests' GPU pods must be gone first: this test counts every GPU of the cluster
    wait_for("no GPU pods of earlier tests", lambda: not _gpu_pods(operator), timeout=300, interval=1)
    prefix = f"t-{uuid.uuid4().hex[:6]}"
    names = (f"{prefix}-a", f"{prefix}-b")
    for ns in names:
        operator.kubectl("create", "namespace", ns)
        cluster.wait_default_service_account(ns)
        operator.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
        own_namespace(cluster, tenant_manifest(ns, [ns], limit=28, guaranteed=16))
    yield names
    for ns in names:
        operator.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        operator.kubectl("delete", "tenant", ns, "--wait=false", check=False)
    wait_for("the teams' GPU pods gone", lambda: not _gpu_pods(operator), timeout=300, interval=1)


def _replicas(kube: Kube, ns: str) -> dict[str, int]:
    deps = kube.get("deployments", "-n", ns)["items"]
    return {d["metadata"]["name"]: int(d["spec"].get("replicas", 0)) for d in deps}


def _ready_pods(kube: Kube, ns: str, name: str) -> int:
    return sum(1 for p in kube.pods(ns, f"foresail.dev/inferenceservice={name}") if pod_is_ready(p) and pod_is_live(p))


class IdleMeter:
    """Samples the cluster: GPUs no pod holds while some GPU pod waits to be scheduled."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.idle_gpu_seconds = 0.0
        self.max_idle = 0
        self.pending_seconds = 0.0
        self.last: float | None = None

    def sample(self) -> None:
        now = time.monotonic()
        pending, held = False, 0
        for p in self.kube.get("pods", "-A")["items"]:
            if p["status"].get("phase") in ("Succeeded", "Failed"):
                continue
            gpus = sum(
                int((c.get("resources") or {}).get("limits", {}).get("nvidia.com/gpu", 0)) for c in p["spec"]["containers"]
            )
            if p["spec"].get("nodeName"):
                held += gpus  # terminating pods still hold their GPUs
            elif gpus and not p["metadata"].get("deletionTimestamp"):
                pending = True
        idle = max(0, TOTAL_GPUS - held)
        if self.last is not None and pending:
            dt = now - self.last
            self.pending_seconds += dt
            self.idle_gpu_seconds += idle * dt
        if pending:
            self.max_idle = max(self.max_idle, idle)
        self.last = now


def _refused_by_quota(kube: Kube, ns: str, app: str) -> bool:
    """Whether the Deployment ``app``'s ReplicaSet was refused a pod by a ResourceQuota. The ReplicaSet controller
    keeps the *first* failure's message in its ReplicaFailure condition (a quota update conflict, say), so the
    FailedCreate events, one per refused create, are read too. Raises with what it saw, for the time-out message."""
    messages = [
        c.get("message") or ""
        for rs in kube.get("replicaset", "-n", ns, "-l", f"app={app}")["items"]
        for c in rs.get("status", {}).get("conditions", [])
    ]
    messages += [
        e.get("message") or ""
        for e in kube.get("events", "-n", ns, "--field-selector", "reason=FailedCreate")["items"]
        if e.get("involvedObject", {}).get("name", "").startswith(f"{app}-")
    ]
    if any("exceeded quota" in m for m in messages):
        return True
    raise AssertionError(f"no quota refusal yet; saw {messages!r}")


def test_two_tenants_borrow_reclaim_and_preempt_batch_first(operator: Kube, teams: tuple[str, str]) -> None:
    a, b = teams
    crit_uids: set[str] = set()
    operator.apply(_isvc("crit", "critical", 4), a)
    operator.apply(_isvc("web", "standard", 16), a)
    operator.apply(_isvc("eval", "batch", 6, max_replicas=10), a)
    operator.apply(_isvc("web", "standard", 2), b)

    # 1. A borrows what B does not use
    wait_for(
        "A holding 26 GPUs (4 critical + 16 standard + 6 batch), B 2",
        lambda: (
            _replicas(operator, a) == {"crit": 4, "web": 16, "eval": 6}
            and _replicas(operator, b) == {"web": 2}
            and all(_ready_pods(operator, a, n) == k for n, k in (("crit", 4), ("web", 16), ("eval", 6)))
            and _ready_pods(operator, b, "web") == 2
        ),
        timeout=240,
        interval=1,
    )
    crit_uids = {p["metadata"]["uid"] for p in operator.pods(a, "foresail.dev/inferenceservice=crit")}
    tenant_a = wait_for(
        "tenant A's status shows its borrowing",
        lambda: (t := operator.get("tenant", a)).get("status", {}).get("used") == 26 and t,
        timeout=90,
    )
    assert tenant_a["status"]["borrowed"] == 10 and tenant_a["status"]["guaranteed"] == 16
    assert wait_for("tenant B lends", lambda: operator.get("tenant", b).get("status", {}).get("lent") == 10, timeout=90)
    wait_for(
        "the ResourceQuota backstop at A's limit",
        lambda: operator.get("resourcequota", "-n", a, "foresail-tenant-gpus")["spec"]["hard"]["requests.nvidia.com/gpu"] == "28",
        timeout=90,
    )

    # the ResourceQuota backstop stops GPU pods the arbiter does not govern at the tenant's limit
    over = operator.kubectl("create", "-n", a, "-f", "-", input=json.dumps(pause_deployment("raw", 1, gpus=3)), check=False)
    assert over.returncode == 0
    wait_for(
        "the backstop refusing a pod over the tenant's limit",
        lambda: _refused_by_quota(operator, a, "raw"),
        timeout=90,
    )
    assert not operator.pods(a, "app=raw"), "a pod over the tenant's limit was admitted"
    operator.kubectl("delete", "deployment", "-n", a, "raw")

    # 2. B's demand rises a little: batch work gives way first
    operator.kubectl("patch", "fisvc", "-n", b, "web", "--type=merge", "-p", '{"spec":{"scaling":{"minReplicas":8}}}')
    wait_for(
        "A's batch shrinking to 4, its serving untouched, B at 8",
        lambda: _replicas(operator, a) == {"crit": 4, "web": 16, "eval": 4} and _replicas(operator, b) == {"web": 8},
        timeout=90,
        interval=0.5,
    )
    wait_for("B's 8 replicas ready", lambda: _ready_pods(operator, b, "web") == 8, timeout=180, interval=0.5)

    # 3. B reclaims its whole guarantee: A shrinks back to its own
    meter = IdleMeter(operator)
    t0 = time.monotonic()
    operator.kubectl("patch", "fisvc", "-n", b, "web", "--type=merge", "-p", '{"spec":{"scaling":{"minReplicas":16}}}')
    held_at = None
    deadline = t0 + 240
    while time.monotonic() < deadline:
        meter.sample()
        if held_at is None and _ready_pods(operator, b, "web") == 16:
            held_at = time.monotonic() - t0
            break
        time.sleep(0.25)
    assert held_at is not None, f"B never held its guarantee; replicas A {_replicas(operator, a)} B {_replicas(operator, b)}"
    assert _replicas(operator, a) == {"crit": 4, "web": 12, "eval": 0}
    assert {p["metadata"]["uid"] for p in operator.pods(a, "foresail.dev/inferenceservice=crit")} == crit_uids, (
        "critical pods moved"
    )

    def limited() -> dict[str, Any] | None:
        web_a = operator.get("fisvc", "-n", a, "web")
        cond = condition(web_a, "QuotaLimited")
        ok = cond and cond["status"] == "True" and "grants 12 of 16" in cond["message"]
        return web_a if ok and web_a["status"]["quota"]["grantedReplicas"] == 12 else None

    wait_for("A's web service QuotaLimited: the tenant grants 12 of 16", limited, timeout=60)
    st_b = wait_for(
        "tenant B holding its guarantee in status",
        lambda: (s := operator.get("tenant", b)["status"]).get("used") == 16 and s,
        timeout=90,
    )
    assert st_b["borrowed"] == 0 and st_b["pending"] == 0
    cols = operator.kubectl("get", "tenants", a, b).stdout
    assert "GUARANTEED" in cols and "BORROWED" in cols, cols

    figures = {
        "b_rise_to_guarantee_held_s": round(held_at, 2),
        "pending_seconds": round(meter.pending_seconds, 2),
        "idle_gpu_seconds_while_pending": round(meter.idle_gpu_seconds, 2),
        "max_idle_gpus_while_pending": meter.max_idle,
        "autoscaler_tick_s": 2,
    }
    out = REPO / "out/e2e"
    out.mkdir(parents=True, exist_ok=True)
    Path(out / "tenants.json").write_text(json.dumps(figures, indent=2) + "\n")
    print("tenants:", json.dumps(figures))
