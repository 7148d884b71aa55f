"""Safe model rollouts end to end (issue 19) with real Triton serving the emulated model, the real
Prometheus and the operator installed by the chart, under load from the load generator.

One service of 3 replicas with ``spec.rollout`` (steps 10% and 50%, short: 10 s and 50 requests each):

1. a good new version (an env change that changes neither outputs nor latency) goes through both steps and
   is promoted: the canary ran in slot b, which is now stable, slot a is at zero; the operator's leader is
   killed during the first step and the new leader resumes the same step (same ``stepStarted``);
2. a slow version (emulated batch time 3x) starts in slot a and is rolled back at its first step by the
   latency gate, whose message carries both p99s; slot a goes back to zero.

A second service with ``spec.rollout.evaluation`` (200 items, exact match): a version whose outputs are wrong on
10% of the items (``FORESAIL_EMULATED_WRONG_PERCENT``) is rolled back by the evaluation gate, the flipped-worse
count in the reason exactly the items the model gets wrong; its EvalJobs evaluated each revision's pods only.
Then a good version (outputs unchanged) passes the evaluation gate (its verdict kept in the promoted status's
gates) and every step, and is promoted.

Production (the load generator, through the Service's ready endpoints) never gets an error. The figures
(apply -> promoted, apply -> rollback complete) are printed as one JSON line. Tests wait for states, never
for times (a canary's p99 counts only after its replicas served a minute: Triton's summary still holds the
warm-up's requests before that).
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from e2e.helpers import prom_query, triton_isvc
from e2e.test_eval_baseline import N_ITEMS, _rows, _wrong, dataset
from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import is_condition_true, pod_is_live, pod_is_ready
from foresail.render.triton import revision
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.loadgen import in_cluster
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS
from hack.testbed.manifests import configmap_items, model_configmap

NAME = "roll"
LEASE = f"/apis/coordination.k8s.io/v1/namespaces/{SYSTEM_NS}/leases/foresail-operator"


def _service() -> dict[str, Any]:
    obj = triton_isvc(NAME, 3)
    # an SLO well above the emulated model's latency: the slow version fails the comparison with the stable
    # revision (both p99s in the reason), not the SLO alone
    obj["spec"]["slo"] = {"p99LatencyMs": 400}
    obj["spec"]["rollout"] = {
        "steps": [{"percent": 10, "minSeconds": 10, "minRequests": 50}, {"percent": 50, "minSeconds": 10, "minRequests": 50}],
        # the machine is shared and busy: p99 wobbles by tens of percent between replicas; 3x does not
        "gates": {"p99MarginPercent": 60},
    }
    return obj


def _get(kube: Kube, ns: str) -> dict[str, Any]:
    obj: dict[str, Any] = kube.get("fisvc", "-n", ns, NAME)
    return obj


def _rollout(kube: Kube, ns: str) -> dict[str, Any]:
    st: dict[str, Any] = (_get(kube, ns).get("status") or {}).get("rollout") or {}
    return st


def _revision(kube: Kube, ns: str) -> str:
    return revision(InferenceService.model_validate(_get(kube, ns)))


def _replicas(kube: Kube, ns: str, dep: str) -> int:
    return int(kube.api("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/{dep}")["spec"].get("replicas", 0))


def _live_pods(kube: Kube, ns: str, revision_label: str) -> list[dict[str, Any]]:
    return [p for p in kube.pods(ns, f"foresail.dev/revision={revision_label}") if pod_is_live(p)]


def _set_env(kube: Kube, ns: str, env: list[dict[str, str]]) -> None:
    patch = json.dumps({"spec": {"triton": {"env": env}}})
    kube.kubectl("patch", "fisvc", "-n", ns, NAME, "--type=merge", "-p", patch)


def _events(kube: Kube, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube.get("events", "-n", ns)["items"]
    return [e for e in items if e["involvedObject"].get("kind") == "InferenceService"]


def _holder(kube: Kube) -> str:
    return str((kube.api_get(LEASE) or {}).get("spec", {}).get("holderIdentity") or "")


def test_a_good_version_is_promoted_and_a_slow_one_rolled_back(operator: Kube, cluster: Cluster, namespace: str) -> None:
    ns = namespace
    operator.kubectl("apply", "-n", ns, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    operator.create(_service(), ns)
    rev0 = _revision(operator, ns)

    def ready(n: int) -> bool:
        pods = [p for p in operator.pods(ns, f"foresail.dev/inferenceservice={NAME}") if pod_is_live(p)]
        return len(pods) == n and all(map(pod_is_ready, pods))

    wait_for("3 ready replicas", lambda: ready(3), timeout=300)
    wait_for(
        "status.rollout: the first revision stable in slot a",
        lambda: _rollout(operator, ns).get("stableRevision") == rev0,
        timeout=120,
    )
    wait_for("MetricsAvailable", lambda: is_condition_true(_get(operator, ns), "MetricsAvailable"), timeout=120)
    assert {s["metric"].get("foresail_dev_revision") for s in _prom_series(cluster, ns)} == {rev0}, "Prometheus sees the revision"

    cmd = in_cluster(
        cluster, "--service", f"{ns}/{NAME}", "--model", "emulated", "--profile", "constant:rate=40", "--duration", "1500"
    )
    gen = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    figures: dict[str, Any] = {}
    try:
        # 1. a good version: same outputs, same latency
        t0 = time.monotonic()
        _set_env(operator, ns, [{"name": "FORESAIL_EMULATED_COLD_REQUESTS", "value": "2"}])
        rev1 = _revision(operator, ns)
        assert rev1 != rev0
        first = wait_for(
            "the canary in its first step",
            lambda: (
                (st := _rollout(operator, ns)).get("canaryRevision") == rev1
                and st.get("phase") == "Progressing"
                and st.get("step") == 0
                and st
            ),
            timeout=120,
        )
        wait_for("a canary replica in slot b", lambda: _replicas(operator, ns, f"{NAME}-b") >= 1, timeout=120)

        # the leader killed mid-step: the new leader resumes the same step (its start is kept in status): every
        # read while the canary is at step 0 shows the first read's stepStarted, and the rollout goes on
        leader = wait_for("a leader", lambda: _holder(operator) or None, timeout=60)
        operator.kubectl("delete", "pod", "-n", SYSTEM_NS, leader, "--grace-period=0", "--force")
        wait_for("a new leader", lambda: (h := _holder(operator)) and h != leader, timeout=180, interval=0.5)
        starts: set[str] = set()

        def moved_on() -> dict[str, Any] | None:
            st = _rollout(operator, ns)
            if st.get("phase") == "Progressing" and st.get("step") == 0:
                starts.add(str(st.get("stepStarted")))
                return None
            return st

        wait_for("the rollout past its first step under the new leader", moved_on, timeout=600, interval=0.5)
        assert starts <= {first["stepStarted"]}, f"the first step restarted after the kill: {starts} vs {first['stepStarted']}"

        promoted = wait_for(
            "the canary promoted",
            lambda: (st := _rollout(operator, ns)).get("phase") == "Promoted" and st.get("stableRevision") == rev1 and st,
            timeout=900,
            interval=1,
        )
        figures["apply_to_promoted_s"] = round(time.monotonic() - t0, 1)
        assert promoted["stableSlot"] == "b"
        wait_for(
            "slot a at zero, slot b serving 3",
            lambda: _replicas(operator, ns, NAME) == 0 and _replicas(operator, ns, f"{NAME}-b") == 3,
            timeout=300,
        )
        figures["apply_to_promoted_and_old_slot_gone_s"] = round(time.monotonic() - t0, 1)
        # slot a's selector also matches slot b's pods: neither Deployment adopts the other's (ReplicaSets select
        # their own pod-template-hash, pods carry their ReplicaSet's controller reference)
        wait_for(
            "slot a's Deployment counts no pod, slot b's pods all owned by slot b's ReplicaSets",
            lambda: _status_replicas(operator, ns, NAME) == 0 and _slot_b_pods_owned(operator, ns),
            timeout=120,
        )
        reasons = [e["reason"] for e in _events(operator, ns)]
        assert {"RolloutStarted", "RolloutStep", "Promoted"} <= set(reasons), reasons
        wait_for(
            "Argo CD's view: RolloutProgressing=False (Promoted)",
            lambda: _condition(operator, ns) == ("False", "Promoted"),
            timeout=60,
        )

        # 2. a slow version: 3x the batch time
        t1 = time.monotonic()
        _set_env(
            operator,
            ns,
            [{"name": "FORESAIL_EMULATED_COLD_REQUESTS", "value": "2"}, {"name": "FORESAIL_EMULATED_BASE_MS", "value": "60"}],
        )
        rev2 = _revision(operator, ns)
        back = wait_for(
            "the slow canary rolled back",
            lambda: (st := _rollout(operator, ns)).get("phase") == "RolledBack" and st.get("failedRevision") == rev2 and st,
            timeout=900,
            interval=1,
        )
        figures["apply_to_rolled_back_s"] = round(time.monotonic() - t1, 1)
        wait_for(
            "the slow canary's replicas gone",
            lambda: _replicas(operator, ns, NAME) == 0 and not _live_pods(operator, ns, rev2),
            timeout=300,
        )
        figures["apply_to_rollback_complete_s"] = round(time.monotonic() - t1, 1)
        assert back["stableRevision"] == rev1 and back["stableSlot"] == "b"
        cond = _get(operator, ns)["status"]["conditions"]
        rolled = next(c for c in cond if c["type"] == "RolloutProgressing")
        assert (rolled["status"], rolled["reason"]) == ("False", "RolledBack")
        assert "latency gate failed" in rolled["message"] and "step 1 of 2" in rolled["message"], rolled["message"]
        assert "canary p99" in rolled["message"] and "stable" in rolled["message"], (
            f"both p99s in the reason: {rolled['message']}"
        )
        figures["rollback_reason"] = rolled["message"]
        assert any(e["reason"] == "RolledBack" and e["type"] == "Warning" for e in _events(operator, ns))
        assert _replicas(operator, ns, f"{NAME}-b") == 3, "the stable revision keeps serving"
    finally:
        gen.terminate()
        out, _ = gen.communicate(timeout=120)
    summary = json.loads(out)
    figures["load"] = {k: summary.get(k) for k in ("requests", "ok", "errors", "errors_by_kind", "p99_ms")}
    print("\n[figure] rollout " + json.dumps(figures))
    assert summary["errors"] == 0, f"production served errors during the rollouts: {summary.get('errors_by_kind')} {summary.get('error_samples')}"


def _status_replicas(kube: Kube, ns: str, dep: str) -> int:
    return int((kube.api("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/{dep}").get("status") or {}).get("replicas") or 0)


def _slot_b_pods_owned(kube: Kube, ns: str) -> bool:
    pods = [p for p in kube.pods(ns, "foresail.dev/slot=b") if pod_is_live(p)]
    owners = {r["name"] for p in pods for r in p["metadata"].get("ownerReferences", []) if r.get("controller")}
    return len(pods) == 3 and all(o.startswith(f"{NAME}-b-") for o in owners)


def _condition(kube: Kube, ns: str) -> tuple[str, str] | None:
    for c in (_get(kube, ns).get("status") or {}).get("conditions") or []:
        if c["type"] == "RolloutProgressing":
            return c["status"], c["reason"]
    return None


def _prom_series(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    return wait_for(
        "Triton's series with the revision label",
        lambda: (
            prom_query(cluster, f'nv_inference_request_success{{namespace="{ns}", foresail_dev_inferenceservice="{NAME}"}}')
            or None
        ),
        timeout=120,
    )


WRONG_PERCENT = 10


def test_a_wrong_version_is_rolled_back_by_the_evaluation_gate_and_a_good_one_promoted(operator: Kube, cluster: Cluster, namespace: str) -> None:
    ns = namespace
    cm = model_configmap("models", ["emulated"])  # the testbed's emulated model (it knows WRONG_PERCENT)
    operator.create(cm, ns)
    operator.kubectl("create", "configmap", "vectors", "-n", ns, f"--from-literal=dataset.jsonl={dataset()}")
    obj = _service()
    obj["spec"]["model"]["repository"] = {"configMap": {"name": "models", "items": configmap_items(cm)}}
    obj["spec"]["scaling"]["minReplicas"] = obj["spec"]["scaling"]["maxReplicas"] = 2
    obj["spec"]["rollout"]["evaluation"] = {
        "dataset": {"configMap": {"name": "vectors"}},
        "scorer": {"kind": "exactMatch", "output": "OUTPUT0"},
        "alpha": 0.05,
        "shards": 2,
    }
    operator.create(obj, ns)
    rev0 = _revision(operator, ns)

    def ready(n: int) -> bool:
        pods = [p for p in operator.pods(ns, f"foresail.dev/inferenceservice={NAME}") if pod_is_live(p)]
        return len(pods) == n and all(map(pod_is_ready, pods))

    wait_for("2 ready replicas", lambda: ready(2), timeout=300)
    wait_for("the first revision stable", lambda: _rollout(operator, ns).get("stableRevision") == rev0, timeout=120)
    wait_for("MetricsAvailable", lambda: is_condition_true(_get(operator, ns), "MetricsAvailable"), timeout=120)
    wrong = _wrong()
    x = _rows()
    expect = sum(1 for i in range(N_ITEMS) if wrong(x[i], WRONG_PERCENT))

    cmd = in_cluster(cluster, "--service", f"{ns}/{NAME}", "--model", "emulated", "--profile", "constant:rate=20", "--duration", "1200")
    gen = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    figures: dict[str, Any] = {}
    try:
        t0 = time.monotonic()
        _set_env(operator, ns, [{"name": "FORESAIL_EMULATED_WRONG_PERCENT", "value": str(WRONG_PERCENT)}])
        rev1 = _revision(operator, ns)
        assert rev1 != rev0
        jobs = wait_for(
            "the evaluation's two EvalJobs recorded",
            lambda: len(ev := _rollout(operator, ns).get("evaluations") or []) == 2 and ev,
            timeout=300,
            interval=1,
        )
        figures["apply_to_evaljobs_s"] = round(time.monotonic() - t0, 1)
        stable_job, canary_job = (operator.get("evj", "-n", ns, j) for j in jobs)
        assert stable_job["spec"]["target"]["revision"] == rev0 and canary_job["spec"]["target"]["revision"] == rev1
        assert canary_job["spec"]["baseline"]["evalJob"] == jobs[0]
        back = wait_for(
            "the wrong canary rolled back",
            lambda: (st := _rollout(operator, ns)).get("phase") == "RolledBack" and st.get("failedRevision") == rev1 and st,
            timeout=900,
            interval=1,
        )
        figures["apply_to_rolled_back_s"] = round(time.monotonic() - t0, 1)
        wait_for(
            "the wrong canary's replicas gone",
            lambda: _replicas(operator, ns, f"{NAME}-b") == 0 and not _live_pods(operator, ns, rev1),
            timeout=300,
        )
        figures["apply_to_rollback_complete_s"] = round(time.monotonic() - t0, 1)
        assert back["stableRevision"] == rev0
        rolled = next(c for c in _get(operator, ns)["status"]["conditions"] if c["type"] == "RolloutProgressing")
        assert (rolled["status"], rolled["reason"]) == ("False", "RolledBack")
        msg = rolled["message"]
        assert "evaluation gate failed" in msg and f"{expect} of {N_ITEMS} items flipped worse" in msg and "p=" in msg, msg
        figures["rollback_reason"] = msg
        figures["flipped_expected"] = expect
        assert any(e["reason"] == "RolledBack" and e["type"] == "Warning" for e in _events(operator, ns))
        assert _replicas(operator, ns, NAME) == 2, "the stable revision keeps serving"

        # a good version (outputs and latency unchanged) passes the evaluation gate and every step
        t1 = time.monotonic()
        _set_env(operator, ns, [{"name": "FORESAIL_EMULATED_WRONG_PERCENT", "value": "0"}])
        rev2 = _revision(operator, ns)
        assert rev2 not in (rev0, rev1)
        promoted = wait_for(
            "the good canary promoted",
            lambda: (st := _rollout(operator, ns)).get("phase") == "Promoted" and st.get("stableRevision") == rev2 and st,
            timeout=900,
            interval=1,
        )
        figures["good_apply_to_promoted_s"] = round(time.monotonic() - t1, 1)
        assert promoted["evaluations"] != jobs, "the good version's own EvalJobs, not the wrong one's"
        evaluated = [g for g in promoted["gates"] if g["gate"] == "evaluation"]
        assert len(evaluated) == 1 and evaluated[0]["passed"] is True, promoted["gates"]
        figures["good_evaluation"] = evaluated[0]["message"]
        assert f"0 of {N_ITEMS} items flipped worse" in evaluated[0]["message"], evaluated[0]
        assert all(g.get("passed") is True for g in promoted["gates"]), promoted["gates"]
    finally:
        gen.terminate()
        out, _ = gen.communicate(timeout=120)
    summary = json.loads(out)
    figures["load"] = {k: summary.get(k) for k in ("requests", "ok", "errors", "errors_by_kind", "p99_ms")}
    print("\n[figure] rollout evaluation gate " + json.dumps(figures))
    assert summary["errors"] == 0, f"production served errors during the rollout: {summary.get('errors_by_kind')} {summary.get('error_samples')}"
