"""EvalJobs end to end: eval workers (run by the local runtime from the Foresail image) against a real
Triton serving the classifier model, through the operator installed by the chart; the model repository's
content digest in provenance (a ConfigMap's, and a PVC's as its replicas' init container reports it).

One classifier service for the module. The dataset is 400 items whose labels are the model's own
argmax, except every 10th, which is wrong on purpose: a correct evaluation scores exactly 0.9.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
import time
import types
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from e2e.helpers import prom_query
from foresail.api.objects import LABEL_ISVC, condition, parse_rfc3339, pod_is_live
from foresail.clients.storage import tree_digest
from hack.base.kube import Kube
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import own_namespace, tenant_manifest
from hack.testbed.manifests import MODELS, configmap_items, model_configmap

N_ITEMS = 400


def _predict() -> Any:
    """The classifier's own ``predict`` (its module imports Triton's backend utils: stub them)."""
    sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
    spec = importlib.util.spec_from_file_location("classifier_model", MODELS / "classifier/1/model.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.predict


def dataset() -> str:
    rng = np.random.default_rng(7)
    x = rng.normal([5.8, 3.0, 3.8, 1.2], [0.8, 0.4, 1.7, 0.7], size=(4 * N_ITEMS, 4)).astype(np.float32).round(2)
    probs, cls = _predict()(x)
    # no near ties: float results differ in the last bits with the batch a request lands in, and a
    # near tie could flip the argmax (the label must not depend on batching)
    top2 = np.sort(probs, axis=1)[:, -2:]
    x, cls = x[top2[:, 1] - top2[:, 0] > 1e-3][:N_ITEMS], cls[top2[:, 1] - top2[:, 0] > 1e-3][:N_ITEMS]
    assert len(x) == N_ITEMS
    lines = []
    for i in range(N_ITEMS):
        label = int(cls[i, 0]) if i % 10 else (int(cls[i, 0]) + 1) % 3  # every 10th label is wrong
        lines.append(json.dumps({"id": f"item-{i:04d}", "inputs": {"FEATURES": x[i].tolist()}, "label": label}))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def evalns(operator: Kube, cluster: Cluster) -> Iterator[str]:
    """A namespace with a Ready classifier InferenceService and the dataset ConfigMap."""
    ns = f"t-{uuid.uuid4().hex[:8]}"
    operator.kubectl("create", "namespace", ns)
    cluster.wait_default_service_account(ns)
    own_namespace(cluster, tenant_manifest(ns, [ns], limit=cluster.nodes * cluster.gpus_per_node))
    cm = model_configmap("models", ["classifier"])
    operator.create(cm, ns)
    operator.create(
        {
            "apiVersion": "foresail.dev/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": "classifier"},
            "spec": {
                "model": {"name": "classifier", "repository": {"configMap": {"name": "models", "items": configmap_items(cm)}}},
                "triton": {"image": "nvcr.io/nvidia/tritonserver:24.08-py3"},
                "slo": {"p99LatencyMs": 200},
                "scaling": {"minReplicas": 1, "maxReplicas": 1},
            },
        },
        ns,
    )
    operator.kubectl("create", "configmap", "iris", "-n", ns, f"--from-literal=dataset.jsonl={dataset()}")
    wait_for(
        "the classifier Ready",
        lambda: (c := condition(operator.get("fisvc", "-n", ns, "classifier"), "Ready")) and c["status"] == "True",
        timeout=360,
        interval=1,
    )
    yield ns
    operator.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    operator.kubectl("delete", "tenant", ns, "--wait=false", "--ignore-not-found", check=False)


def _evaljob(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "target": {"inferenceService": "classifier"},
        "dataset": {"configMap": {"name": "iris"}},
        "scorer": {"kind": "top1", "output": "PROBS"},
        "seed": 1,
        "shards": 4,
        "parallelism": 2,
        "traffic": {"maxConcurrency": 8, "batchSize": 4},
    }
    for k, v in spec.items():
        base[k] = {**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return {"apiVersion": "foresail.dev/v1alpha1", "kind": "EvalJob", "metadata": {"name": name}, "spec": base}


def _status(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    st: dict[str, Any] = kube.get("evj", "-n", ns, name).get("status") or {}
    return st


def _finished(kube: Kube, ns: str, name: str, timeout: float = 480) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        st = _status(kube, ns, name)
        return st if st.get("phase") in ("Succeeded", "Failed") else None

    return wait_for(f"EvalJob {name} finished", done, timeout=timeout, interval=1)


def _results(cluster: Cluster, ns: str, name: str) -> bytes:
    (path,) = (cluster.run.pvcs / ns / f"{name}-results").glob(f"results/{name}-*/results.jsonl")
    return path.read_bytes()


def _check_results(data: bytes) -> None:
    rows = [json.loads(line) for line in data.splitlines()]
    ids = [r["id"] for r in rows]
    assert len(ids) == N_ITEMS and len(set(ids)) == N_ITEMS, "every item exactly once"
    assert sum(1 for r in rows if r.get("correct")) == N_ITEMS * 9 // 10


def test_evaljob_scores_correctly_with_live_progress(operator: Kube, cluster: Cluster, evalns: str) -> None:
    ns = evalns
    operator.apply(_evaljob("base", traffic={"maxRequestsPerSecond": 3}), ns)  # ~17 s: long enough to watch
    live = wait_for(
        "live progress and throughput in status",
        lambda: (
            (st := _status(operator, ns, "base")).get("phase") == "Running"
            and st.get("throughput", {}).get("eps", 0) > 0
            and 0 < st.get("progress", {}).get("done", 0) < N_ITEMS
            and st
        ),
        timeout=300,
        interval=0.5,
    )
    assert live["throughput"]["p99Ms"] is not None and live["progress"]["total"] == N_ITEMS
    st = _finished(operator, ns, "base")
    assert st["phase"] == "Succeeded", st.get("conditions")
    assert st["results"]["score"] == pytest.approx(0.9)
    assert (st["progress"]["done"], st["results"]["scored"], st["results"]["errors"]) == (N_ITEMS, N_ITEMS, 0)
    assert st["shards"]["completed"] == "0-3"
    sha = hashlib.sha256(dataset().encode()).hexdigest()
    prov = st["provenance"]
    assert prov["datasetSha256"] == sha and prov["seed"] == 1 and prov["model"] == "classifier"
    assert prov["repositoryDigest"].startswith("sha256:") and len(prov["specHash"]) == 64
    _check_results(_results(cluster, ns, "base"))
    cols = operator.kubectl("get", "evj", "-n", ns, "base").stdout
    assert "EPS" in cols and "SCORE" in cols and "0.9" in cols, cols

    # a finished job ignores spec edits, and says so
    operator.kubectl("patch", "evj", "-n", ns, "base", "--type=merge", "-p", '{"spec":{"seed":2}}')
    wait_for(
        "SpecIgnored on the finished job",
        lambda: (c := condition(operator.get("evj", "-n", ns, "base"), "SpecIgnored")) and c["status"] == "True",
        timeout=90,
    )
    assert _status(operator, ns, "base")["phase"] == "Succeeded"


def test_killed_worker_resumes_without_loss_or_duplicates(operator: Kube, cluster: Cluster, evalns: str) -> None:
    ns = evalns
    # slow enough to kill a worker half way: 100 items per shard at 10 requests/s of one item
    operator.apply(_evaljob("killed", traffic={"maxRequestsPerSecond": 10, "batchSize": 1}), ns)

    def half_done_shard() -> tuple[int, dict[str, Any]] | None:
        cm = operator.get("configmap", "-n", ns, "killed-progress").get("data") or {}
        for text in cm.values():
            r = json.loads(text)
            if 0.3 <= r["done"] / max(r["total"], 1) < 0.9 and not r["finished"]:
                pods = [p for p in operator.pods(ns, "foresail.dev/evaljob=killed")
                        if p["metadata"].get("annotations", {}).get("batch.kubernetes.io/job-completion-index") == str(r["index"])
                        and p["status"].get("phase") == "Running"]  # fmt: skip
                if pods:
                    return r["index"], pods[0]
        return None

    _, pod = wait_for("a shard about half done", half_done_shard, timeout=300, interval=0.5)
    operator.kubectl("delete", "pod", "-n", ns, pod["metadata"]["name"], "--grace-period=0", "--force")
    st = _finished(operator, ns, "killed")
    assert st["phase"] == "Succeeded", st.get("conditions")
    assert st["results"]["score"] == pytest.approx(0.9)
    data = _results(cluster, ns, "killed")
    _check_results(data)
    wait_for("the baseline job's results", lambda: _results(cluster, ns, "base"), timeout=5)
    assert data == _results(cluster, ns, "base"), "the same items and seed give byte-identical results"


def test_suspend_resume_and_delete(operator: Kube, cluster: Cluster, evalns: str) -> None:
    ns = evalns
    operator.apply(_evaljob("paused", traffic={"maxRequestsPerSecond": 10, "batchSize": 1}), ns)
    wait_for(
        "some progress",
        lambda: _status(operator, ns, "paused").get("progress", {}).get("done", 0) >= 40,
        timeout=300,
        interval=0.5,
    )
    operator.kubectl("patch", "evj", "-n", ns, "paused", "--type=merge", "-p", '{"spec":{"suspend":true}}')
    wait_for(
        "Suspended with no worker running",
        lambda: (
            _status(operator, ns, "paused").get("phase") == "Suspended"
            and not [
                p for p in operator.pods(ns, "foresail.dev/evaljob=paused") if p["status"].get("phase") in ("Pending", "Running")
            ]
        ),
        timeout=180,
        interval=0.5,
    )
    kept = _status(operator, ns, "paused")["progress"]["done"]
    assert kept >= 40
    operator.kubectl("patch", "evj", "-n", ns, "paused", "--type=merge", "-p", '{"spec":{"suspend":false}}')

    def running_again() -> dict[str, Any] | None:
        st = _status(operator, ns, "paused")
        return st if st.get("phase") in ("Running", "Succeeded") else None

    resumed = wait_for("running again (or already done)", running_again, timeout=120)
    assert resumed["progress"]["done"] >= kept, "progress survives a suspension"
    st = _finished(operator, ns, "paused")
    assert st["phase"] == "Succeeded" and st["results"]["score"] == pytest.approx(0.9)
    _check_results(_results(cluster, ns, "paused"))

    operator.apply(_evaljob("doomed", traffic={"maxRequestsPerSecond": 5, "batchSize": 1}), ns)
    wait_for("doomed running", lambda: operator.pods(ns, "foresail.dev/evaljob=doomed"), timeout=180)
    operator.kubectl("delete", "evj", "-n", ns, "doomed")
    wait_for("its Job and pods gone", lambda: not operator.pods(ns, "foresail.dev/evaljob=doomed")
             and operator.kubectl("get", "job", "-n", ns, "doomed", check=False).returncode != 0, timeout=180)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "spec", "condition_type", "reason"),
    [
        ("no-target", {"target": {"inferenceService": "nope"}}, "Admitted", "TargetNotFound"),
        ("no-dataset", {"dataset": {"configMap": {"name": "nope"}}}, "Admitted", "DatasetNotFound"),
        ("bad-hash", {"dataset": {"configMap": {"name": "iris"}, "sha256": "0" * 64}}, "Failed", "DatasetHashMismatch"),
    ],
)
def test_problems_are_conditions(
    operator: Kube, evalns: str, name: str, spec: dict[str, Any], condition_type: str, reason: str
) -> None:
    ns = evalns
    operator.apply(_evaljob(name, **spec), ns)
    c = wait_for(
        f"{condition_type}={reason}",
        lambda: (c := condition(operator.get("evj", "-n", ns, name), condition_type)) and c["reason"] == reason and c,
        timeout=120,
    )
    assert c["status"] == ("True" if condition_type == "Failed" else "False")
    assert "spec." in c["message"], c["message"]
    assert not operator.pods(ns, f"foresail.dev/evaljob={name}"), "no worker for a job that cannot run"
    operator.kubectl("delete", "evj", "-n", ns, name)


def test_invalid_evaljob_is_rejected_at_admission(operator: Kube, evalns: str) -> None:
    bad = _evaljob("invalid", dataset={"configMap": {"name": "iris"}, "pvc": {"claimName": "x", "path": "d.jsonl"}})
    out = operator.kubectl("create", "-n", evalns, "-f", "-", input=json.dumps(bad), check=False)
    assert out.returncode != 0 and "exactly one of configMap or pvc" in out.stderr, out.stderr


def _scraped_at(cluster: Cluster, ns: str, service: str) -> float:
    """When Prometheus last scraped the service's replicas (0 when never)."""
    rows = prom_query(cluster, f'max(timestamp(up{{namespace="{ns}", foresail_dev_inferenceservice="{service}"}}))')
    return float(rows[0]["value"][1]) if rows else 0.0


def _served(cluster: Cluster, ns: str, service: str) -> float:
    q = f'sum(nv_inference_request_success{{namespace="{ns}", foresail_dev_inferenceservice="{service}"}})'
    rows = prom_query(cluster, q)
    return float(rows[0]["value"][1]) if rows else 0.0


def test_dedicated_mode_runs_on_its_own_batch_replicas(operator: Kube, cluster: Cluster, evalns: str) -> None:
    ns = evalns
    before = _served(cluster, ns, "classifier")
    operator.apply(_evaljob("dedi", mode="dedicated", dedicated={"replicas": 1}), ns)
    waiting = wait_for(
        "the job waiting for its eval replicas",
        lambda: (
            (c := condition(operator.get("evj", "-n", ns, "dedi"), "Suspended")) and c["reason"] == "WaitingForEvalReplicas" and c
        ),
        timeout=120,
    )
    assert waiting["status"] == "True"
    child = operator.get("fisvc", "-n", ns, "dedi-eval")
    assert child["spec"]["priority"] == "batch" and child["metadata"]["ownerReferences"][0]["name"] == "dedi"
    st = _finished(operator, ns, "dedi", timeout=600)
    assert st["phase"] == "Succeeded" and st["results"]["score"] == pytest.approx(0.9)
    wait_for(
        "the eval replicas removed after the job",
        lambda: operator.kubectl("get", "fisvc", "-n", ns, "dedi-eval", check=False).returncode != 0,
        timeout=180,
    )
    done_at = time.time()
    wait_for(
        "a scrape of the production replicas after the job",
        lambda: _scraped_at(cluster, ns, "classifier") > done_at + 1,
        timeout=60,
    )
    assert _served(cluster, ns, "classifier") == before, "evaluation traffic reached the production replicas"


def _model_of(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    model: dict[str, Any] = (kube.get("fisvc", "-n", ns, name).get("status") or {}).get("model") or {}
    return model


def _hash_seconds(kube: Kube, ns: str, pod: dict[str, Any]) -> float:
    """How long the pod's storage-init (--hash) ran, from its status (second resolution)."""
    fresh = kube.get("pod", "-n", ns, pod["metadata"]["name"])
    (st,) = [s for s in fresh["status"]["initContainerStatuses"] if s["name"] == "storage-init"]
    term = st["state"]["terminated"]
    return float(parse_rfc3339(term["finishedAt"]) - parse_rfc3339(term["startedAt"]))


def test_pvc_repository_digest_in_status_and_provenance(operator: Kube, cluster: Cluster, evalns: str) -> None:
    """A classifier served from a PVC (subPath): its replicas' init container digests the repository in place,
    the digest is in status.model and in the EvalJob's provenance; changed model files give a new digest once
    a replica restarts, and the next EvalJob records it."""
    ns, svc, claim = evalns, "classifier-pvc", "models-pvc"
    operator.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }
        ],
        ns,
    )
    wait_for(f"{claim} bound", lambda: operator.get("pvc", "-n", ns, claim).get("status", {}).get("phase") == "Bound", timeout=120)
    repo = cluster.run.pvcs / ns / claim / "repo"
    shutil.copytree(MODELS / "classifier", repo / "classifier", ignore=shutil.ignore_patterns("__pycache__"))
    t0 = time.monotonic()
    first = tree_digest(repo)
    print(f"\n[figure] classifier repository: {first.files} files, {first.bytes} bytes, hashed here in {time.monotonic() - t0:.3f}s")
    operator.create(
        {
            "apiVersion": "foresail.dev/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": svc},
            "spec": {
                "model": {"name": "classifier", "repository": {"pvc": {"claimName": claim, "subPath": "repo"}}},
                "triton": {"image": "nvcr.io/nvidia/tritonserver:24.08-py3"},
                "slo": {"p99LatencyMs": 200},
                "scaling": {"minReplicas": 1, "maxReplicas": 1},
            },
        },
        ns,
    )

    def ready_with(digest: str) -> bool:
        ready = (c := condition(operator.get("fisvc", "-n", ns, svc), "Ready")) is not None and c["status"] == "True"
        return ready and _model_of(operator, ns, svc).get("digest") == digest

    t0 = time.monotonic()
    wait_for(f"{svc} Ready with the repository's digest in status.model", lambda: ready_with(first.digest), timeout=360, interval=1)
    print(f"[figure] pvc service Ready with its digest: {time.monotonic() - t0:.1f}s")
    model = _model_of(operator, ns, svc)
    assert (model["pvc"], model["files"], model["bytes"]) == (f"{claim}/repo", first.files, first.bytes)
    assert model.get("storageUri", "") == ""  # the CRD defaults it
    (pod,) = [p for p in operator.pods(ns, f"{LABEL_ISVC}={svc}") if pod_is_live(p)]
    print(f"[figure] storage-init --hash in the pod: {_hash_seconds(operator, ns, pod):.0f}s (second resolution)")
    operator.apply(_evaljob("pvc-a", target={"inferenceService": svc}), ns)
    st = _finished(operator, ns, "pvc-a")
    assert st["phase"] == "Succeeded" and st["results"]["score"] == pytest.approx(0.9), st.get("conditions")
    assert st["provenance"]["repositoryDigest"] == first.digest

    # the model's files change on the claim: the running replica keeps what it loaded (and status says so) until
    # a replica starts again
    with open(repo / "classifier/1/model.py", "a") as f:
        f.write("\n# revision 2: same predictions, new bytes\n")
    second = tree_digest(repo)
    assert second.digest != first.digest
    assert _model_of(operator, ns, svc)["digest"] == first.digest
    operator.kubectl("delete", "pod", "-n", ns, pod["metadata"]["name"], "--wait=false")
    t0 = time.monotonic()
    wait_for(f"{svc} Ready again with the new digest", lambda: ready_with(second.digest), timeout=360, interval=1)
    print(f"[figure] restarted replica Ready with the new digest: {time.monotonic() - t0:.1f}s")
    operator.apply(_evaljob("pvc-b", target={"inferenceService": svc}), ns)
    st = _finished(operator, ns, "pvc-b")
    assert st["phase"] == "Succeeded" and st["results"]["score"] == pytest.approx(0.9), st.get("conditions")
    assert st["provenance"]["repositoryDigest"] == second.digest
    # the earlier job's provenance still names what it evaluated
    assert _status(operator, ns, "pvc-a")["provenance"]["repositoryDigest"] == first.digest
