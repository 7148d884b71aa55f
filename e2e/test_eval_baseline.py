"""EvalJob baselines end to end: two InferenceServices of the emulated model, one answering 10% of the items
wrong (FORESAIL_EMULATED_WRONG_PERCENT), three EvalJobs: a baseline on the good one, a candidate on the bad one
(Regressed=True, the flipped items exactly those the model gets wrong) and a candidate on the good one
(Regressed=False). The candidates are created with the baseline, so they wait for it (BaselineIncomplete)."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from foresail.api.objects import condition
from hack.base.kube import Kube
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import own_namespace, tenant_manifest
from hack.testbed.manifests import MODELS, configmap_items, model_configmap

N_ITEMS = 200
WRONG_PERCENT = 10


def _wrong() -> Any:
    """The emulated model's own choice of wrong items (its module imports Triton's backend utils: stub them)."""
    sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
    spec = importlib.util.spec_from_file_location("emulated_model", MODELS / "emulated/1/model.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod._wrong


def _rows() -> npt.NDArray[np.float32]:
    # small integers: x * 2 is exact in float32, so the good model matches every expected output
    return np.random.default_rng(7).integers(0, 1000, size=(N_ITEMS, 16)).astype(np.float32)


def dataset() -> str:
    x = _rows()
    return "".join(
        json.dumps({"id": f"item-{i:04d}", "inputs": {"INPUT0": x[i].tolist()}, "expected": {"OUTPUT0": (x[i] * 2).tolist()}}) + "\n"
        for i in range(N_ITEMS)
    )


def _isvc(name: str, cm: dict[str, Any], wrong_percent: int = 0) -> dict[str, Any]:
    triton: dict[str, Any] = {"image": "nvcr.io/nvidia/tritonserver:24.08-py3"}
    if wrong_percent:
        triton["env"] = [{"name": "FORESAIL_EMULATED_WRONG_PERCENT", "value": str(wrong_percent)}]
    return {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "emulated", "repository": {"configMap": {"name": "models", "items": configmap_items(cm)}}},
            "triton": triton,
            "slo": {"p99LatencyMs": 1000},
            "scaling": {"minReplicas": 1, "maxReplicas": 1},
        },
    }


def _evaljob(name: str, target: str, baseline: str | None = None, suspend: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "target": {"inferenceService": target},
        "dataset": {"configMap": {"name": "vectors"}},
        "scorer": {"kind": "exactMatch", "output": "OUTPUT0"},
        "shards": 2,
        "parallelism": 2,
        "traffic": {"maxConcurrency": 8, "batchSize": 8, "yieldToProduction": False},
        "suspend": suspend,
    }
    if baseline:
        spec["baseline"] = {"evalJob": baseline}
    return {"apiVersion": "foresail.dev/v1alpha1", "kind": "EvalJob", "metadata": {"name": name}, "spec": spec}


@pytest.fixture(scope="module")
def basens(operator: Kube, cluster: Cluster) -> Iterator[str]:
    ns = f"t-{uuid.uuid4().hex[:8]}"
    operator.kubectl("create", "namespace", ns)
    cluster.wait_default_service_account(ns)
    own_namespace(cluster, tenant_manifest(ns, [ns], limit=cluster.nodes * cluster.gpus_per_node))
    cm = model_configmap("models", ["emulated"])
    operator.create(cm, ns)
    operator.create(_isvc("good", cm), ns)
    operator.create(_isvc("bad", cm, WRONG_PERCENT), ns)
    operator.kubectl("create", "configmap", "vectors", "-n", ns, f"--from-literal=dataset.jsonl={dataset()}")
    for name in ("good", "bad"):
        wait_for(
            f"{name} Ready",
            lambda name=name: (c := condition(operator.get("fisvc", "-n", ns, name), "Ready")) and c["status"] == "True",  # type: ignore[misc]
            timeout=360,
            interval=1,
        )
    yield ns
    operator.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    operator.kubectl("delete", "tenant", ns, "--wait=false", "--ignore-not-found", check=False)


def _regressed(kube: Kube, ns: str, name: str, timeout: float = 480) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the Regressed condition once it is decided, the status)."""

    def decided() -> tuple[dict[str, Any], dict[str, Any]] | None:
        obj = kube.get("evj", "-n", ns, name)
        c = condition(obj, "Regressed")
        if c and c.get("reason") not in ("AwaitingResults", "BaselineIncomplete", "Comparing"):
            return c, obj.get("status") or {}
        return None

    return wait_for(f"EvalJob {name} compared with its baseline", decided, timeout=timeout, interval=1)


def test_baseline_flags_the_wrong_model_and_passes_the_good_one(operator: Kube, cluster: Cluster, basens: str) -> None:
    ns = basens
    wrong = _wrong()
    x = _rows()
    expect = sorted(f"item-{i:04d}" for i in range(N_ITEMS) if wrong(x[i], WRONG_PERCENT))
    assert 0.05 * N_ITEMS <= len(expect) <= 0.15 * N_ITEMS, len(expect)
    operator.apply(_evaljob("nightly", "good"), ns)
    operator.apply(_evaljob("worse", "bad", baseline="nightly"), ns)
    operator.apply(_evaljob("same", "good", baseline="nightly"), ns)
    # bad baselines are conditions, whatever the job's state (suspended: they need not run)
    operator.apply(_evaljob("selfish", "good", baseline="selfish", suspend=True), ns)
    operator.apply(_evaljob("orphan", "good", baseline="missing", suspend=True), ns)

    # the candidates are not compared before the baseline has succeeded
    waiting = wait_for(
        "a candidate waiting for its baseline or results",
        lambda: (c := condition(operator.get("evj", "-n", ns, "worse"), "Regressed")) and c["status"] == "Unknown" and c,
        timeout=120,
        interval=0.5,
    )
    assert waiting["reason"] in ("AwaitingResults", "BaselineIncomplete", "Comparing"), waiting

    c, st = _regressed(operator, ns, "worse")
    assert (c["status"], c["reason"]) == ("True", "Regressed"), c
    b = st["baseline"]
    assert b["evalJob"] == "nightly" and b["test"] == "mcnemar-exact"
    assert (b["paired"], b["flippedWorse"], b["flippedBetter"]) == (N_ITEMS, len(expect), 0), b
    assert b["flippedSample"] == expect[:20]
    assert b["pValue"] < 0.05 and b["delta"] == pytest.approx(-len(expect) / N_ITEMS)
    assert f"{len(expect)} item(s) flipped worse" in c["message"]
    (flipped,) = (cluster.run.pvcs / ns / "worse-results").glob("results/worse-*/flipped.jsonl")
    assert [json.loads(line)["id"] for line in flipped.read_text().splitlines()] == expect
    events = operator.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=worse,reason=Regressed").stdout
    assert "Regressed" in events, events

    c, st = _regressed(operator, ns, "same")
    assert (c["status"], c["reason"]) == ("False", "NoRegression"), c
    assert (st["baseline"]["flippedWorse"], st["baseline"]["flippedBetter"], st["baseline"]["delta"]) == (0, 0, 0.0)

    for name, reason in (("selfish", "BaselineInvalid"), ("orphan", "BaselineNotFound")):
        c, _ = _regressed(operator, ns, name)
        assert (c["status"], c["reason"]) == ("Unknown", reason), c


def test_target_revision_evaluates_only_that_revisions_pods(operator: Kube, basens: str) -> None:
    """spec.target.revision: the workers call the job's Service <job>-target, whose endpoints are the pods of that
    revision (labelled here by hand where the pod template does not label them yet)."""
    ns = basens
    (pod,) = operator.pods(ns, "foresail.dev/inferenceservice=bad")
    rev = (pod["metadata"].get("labels") or {}).get("foresail.dev/revision")
    if rev is None:
        rev = "e2e0000001"
        operator.kubectl("label", "pod", "-n", ns, pod["metadata"]["name"], f"foresail.dev/revision={rev}")
    job = _evaljob("onerev", "bad")
    job["spec"]["target"]["revision"] = rev
    operator.apply(job, ns)
    wait_for(
        "the job's target Service", lambda: operator.kubectl("get", "svc", "-n", ns, "onerev-target", check=False).returncode == 0, timeout=60
    )
    svc = operator.get("svc", "-n", ns, "onerev-target")
    assert svc["spec"]["selector"] == {"foresail.dev/inferenceservice": "bad", "foresail.dev/revision": rev}

    def finished() -> dict[str, Any] | None:
        st = operator.get("evj", "-n", ns, "onerev").get("status") or {}
        return st if st.get("phase") in ("Succeeded", "Failed") else None

    st = wait_for("EvalJob onerev finished", finished, timeout=300, interval=1)
    assert st["phase"] == "Succeeded", st.get("conditions")
    x, wrong = _rows(), _wrong()
    assert st["results"]["correct"] == sum(1 for i in range(N_ITEMS) if not wrong(x[i], WRONG_PERCENT)), "the bad revision answered"
    slices = operator.get("endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=onerev-target")["items"]
    addresses = {a for s in slices for e in s.get("endpoints") or [] for a in e.get("addresses") or []}
    assert addresses == {pod["status"]["podIP"]}
