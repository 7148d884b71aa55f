"""The apiserver restarted, and a TCP black-hole between the operator and the apiserver (issue 15, defect 11).

Restart: kube-apiserver (a process of the testbed) is stopped for 10 s and started again. Every client's
connections end, kopf's watches included. Afterwards kopf's watch must deliver again (a spec change reaches
the Deployment: only the kopf handler renders it) and the autoscaler must keep scaling (a minReplicas change
followed), with no replica lost on any read meanwhile.

Black-hole: a DROP rule in both operator pods' network namespaces (made by the testbed's runtime) for the
apiserver's address and port: requests and watches hang, nothing is refused. The operator runs as pods of
the chart (the runtime restarts a container whose liveness probe fails, counting restartCount): while the
link is dead the leader must not stay up on it (it can renew neither its Lease nor anything else, so it
exits or fails liveness and is restarted; with the chart's defaults the Lease's 10 s renew deadline comes first,
and ``test_liveness_black_hole.py`` sets the timings so that the liveness probe does); once the rule is gone a
leader acts again and the service follows a change."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from e2e.chaos.sampler import sampling
from e2e.helpers import pause_isvc
from foresail.api.objects import pod_is_ready
from hack.base.kube import Kube, KubeError
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS

LEASE = f"/apis/coordination.k8s.io/v1/namespaces/{SYSTEM_NS}/leases/foresail-operator"


def _replicas(kube: Kube, ns: str, name: str) -> int:
    return int(kube.api("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")["spec"]["replicas"])


def _desired(kube: Kube, ns: str, name: str, n: int) -> bool:
    isvc = kube.get("fisvc", "-n", ns, name)
    return _replicas(kube, ns, name) == n and (isvc.get("status") or {}).get("desiredReplicas") == n


def _min_replicas(kube: Kube, ns: str, name: str, n: int) -> None:
    kube.kubectl("patch", "fisvc", "-n", ns, name, "--type=merge", "-p", json.dumps({"spec": {"scaling": {"minReplicas": n}}}))


def _args(kube: Kube, ns: str, name: str) -> list[str]:
    dep = kube.api("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    return next(c.get("args", []) for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "triton")


def _operator_pods(kube: Kube) -> list[dict[str, Any]]:
    return [p for p in kube.pods(SYSTEM_NS, "app.kubernetes.io/name=foresail") if not p["metadata"].get("deletionTimestamp")]


def _restarts(pod: dict[str, Any]) -> int:
    return sum(int(c.get("restartCount", 0)) for c in (pod.get("status") or {}).get("containerStatuses") or [])


def _holder(kube: Kube) -> str:
    return str((kube.api_get(LEASE) or {}).get("spec", {}).get("holderIdentity") or "")


def _settled(kube: Kube) -> str | None:
    pods = _operator_pods(kube)
    ready = {p["metadata"]["name"] for p in pods if pod_is_ready(p)}
    holder = _holder(kube)
    return holder if len(pods) == 2 and len(ready) == 2 and holder in ready else None


def _leader(kube: Kube) -> str | None:
    """The Lease holder, when it is one of the operator pods (running, its containers ready)."""
    holder = _holder(kube)
    for p in _operator_pods(kube):
        statuses = (p.get("status") or {}).get("containerStatuses") or []
        if p["metadata"]["name"] == holder and statuses and all(c.get("ready") for c in statuses):
            return holder
    return None


def _describe(kube: Kube) -> str:
    """The operator pods as the test sees them: conditions, readiness, restarts; and the Lease holder."""
    out = []
    for p in _operator_pods(kube):
        conds = {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}
        out.append(f"{p['metadata']['name']} ready={pod_is_ready(p)} restarts={_restarts(p)} {conds}")
    return f"holder {_holder(kube)!r}; " + "; ".join(out)


def _patch_admitted(kube: Kube, path: str, patch: list[dict[str, Any]]) -> str | None:
    """Apply ``patch``; None while a restarted apiserver's ValidatingAdmissionPolicy cannot resolve its paramKind yet
    (its REST mapper learns the CRD kinds from discovery again, a few seconds after /readyz: the policy fails closed,
    HTTP 422 "failed to configure policy"); any other refusal is raised."""
    try:
        kube.api("PATCH", path, patch, content_type="application/json-patch+json")
    except KubeError as e:
        if e.code == 422 and "failed to configure policy" in e.message:
            return None
        raise
    return "admitted"


def _after_the_black_hole(kube: Kube, ns: str) -> float:
    """Once the DROP rules are gone: a leader again, and the service ``kept`` follows minReplicas 2; the seconds it took."""
    t1 = time.monotonic()
    try:
        wait_for("a leader again after the black-hole", lambda: _leader(kube), timeout=300)
    finally:
        print(f"[figure] operator pods after the black-hole: {_describe(kube)}")
    _min_replicas(kube, ns, "kept", 2)
    wait_for("the service scaled to 2 after the black-hole", lambda: _desired(kube, ns, "kept", 2), timeout=240, interval=0.5)
    return time.monotonic() - t1


def test_after_an_apiserver_restart_watches_recover_and_services_keep_scaling(operator: Kube, cluster: Cluster, namespace: str) -> None:
    ns = namespace
    operator.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
    operator.create(pause_isvc("kept", min_replicas=2, max_replicas=8), ns)
    wait_for("the service at 2 replicas", lambda: _desired(operator, ns, "kept", 2), timeout=120)
    wait_for("2 ready operator pods and a leader", lambda: _settled(operator), timeout=240)
    print(f"\n[figure] operator pods before the restart: {_describe(operator)}")
    restarts = {p["metadata"]["name"]: _restarts(p) for p in _operator_pods(operator)}
    with sampling(lambda: _replicas(operator, ns, "kept")) as seen:
        down = cluster.restart_apiserver(down_s=10.0)
        t0 = time.monotonic()
        print(f"\n[figure] kube-apiserver unanswering for {down:.1f}s")
        # kopf's watch: a spec change rendered by the change handler (the autoscaler does not render args)
        patch = [{"op": "add", "path": "/spec/triton/args", "value": ["--log-verbose=1"]}]
        path = f"/apis/foresail.dev/v1alpha1/namespaces/{ns}/inferenceservices/kept"
        admitted = wait_for("the patch admitted (the admission policy finds its Tenant paramKind again)",
                            lambda: _patch_admitted(operator, path, patch), timeout=120, interval=1.0)  # fmt: skip
        print(f"[figure] first InferenceService write admitted {time.monotonic() - t0:.1f}s after the restart ({admitted})")
        wait_for("the spec change in the Deployment (kopf's watch delivers)", lambda: "--log-verbose=1" in _args(operator, ns, "kept"),
                 timeout=120, interval=0.5)  # fmt: skip
        handled = time.monotonic() - t0
        # the autoscaler: a minReplicas change decided and written
        _min_replicas(operator, ns, "kept", 3)
        wait_for("the service scaled to 3", lambda: _desired(operator, ns, "kept", 3), timeout=120, interval=0.5)
        scaled = time.monotonic() - t0
    print(f"[figure] after the restart: spec change handled in {handled:.1f}s, scaled to 3 in {scaled:.1f}s")
    reads = [v for _, v in seen.samples]
    assert reads and all(b >= a for a, b in itertools.pairwise(reads)), f"replicas dropped: {reads}"
    after = {p["metadata"]["name"]: _restarts(p) for p in _operator_pods(operator)}
    print(f"[figure] operator container restarts: before {restarts}, after {after}; {_describe(operator)}")


def test_a_black_holed_operator_restarts_and_recovers_after(operator: Kube, cluster: Cluster, namespace: str) -> None:
    ns = namespace
    operator.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
    operator.create(pause_isvc("kept", min_replicas=1, max_replicas=8), ns)
    wait_for("the service at 1 replica", lambda: _desired(operator, ns, "kept", 1), timeout=120)
    leader = wait_for("a leader among the operator pods", lambda: _leader(operator), timeout=240)
    print(f"\n[figure] operator pods before the black-hole: {_describe(operator)}")
    pods = _operator_pods(operator)
    before = {p["metadata"]["name"]: _restarts(p) for p in pods}
    t0 = time.monotonic()
    for p in pods:
        cluster.black_hole_apiserver(p)
    try:

        def leader_restarted() -> int | None:
            p = next((p for p in _operator_pods(operator) if p["metadata"]["name"] == leader), None)
            return _restarts(p) if p is not None and _restarts(p) > before[leader] else None

        wait_for(f"the black-holed leader {leader} restarted", leader_restarted, timeout=300, interval=1.0)
        restarted = time.monotonic() - t0
        print(f"\n[figure] black-holed leader {leader} restarted after {restarted:.1f}s")
    finally:
        for p in _operator_pods(operator):
            cluster.black_hole_apiserver(p, on=False)
    recovered = _after_the_black_hole(operator, ns)
    print(f"[figure] after the black-hole: a leader and the service scaled in {recovered:.1f}s; restarts {before} -> "
          f"{ {p['metadata']['name']: _restarts(p) for p in _operator_pods(operator)} }")  # fmt: skip
