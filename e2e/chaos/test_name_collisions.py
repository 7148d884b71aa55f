"""Name collisions end to end: an object that holds a child's name and is not controlled by the owner is left
alone (never changed, adopted nor deleted) and the owner says so (NameTaken)."""

from __future__ import annotations

import json
from typing import Any

from e2e.helpers import pause_deployment, pause_isvc
from foresail.api.objects import condition
from hack.base.kube import Kube
from hack.base.wait import wait_for


def _fingerprint(obj: dict[str, Any]) -> dict[str, Any]:
    """What must not change: identity, generation, spec, owners and labels."""
    md = obj["metadata"]
    return {
        "uid": md["uid"],
        "generation": md.get("generation"),
        "spec": obj["spec"],
        "ownerReferences": md.get("ownerReferences"),
        "labels": md.get("labels"),
        "deletionTimestamp": md.get("deletionTimestamp"),
    }


def test_a_users_deployment_holding_the_name_is_left_alone(operator: Kube, namespace: str) -> None:
    ns = namespace
    operator.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
    operator.create(pause_deployment("web", 2), ns)
    before = _fingerprint(operator.get("deploy", "-n", ns, "web"))
    operator.create(pause_isvc("web", min_replicas=1, max_replicas=4), ns)

    def name_taken() -> dict[str, Any] | None:
        c = condition(operator.get("fisvc", "-n", ns, "web"), "Ready")
        return c if c and c["reason"] == "NameTaken" else None

    c = wait_for("Ready=False NameTaken", name_taken, timeout=120)
    assert c["status"] == "False" and f"Deployment {ns}/web" in c["message"], c
    # a spec change the service would act on (its replicas) is observed, and still nothing is written
    operator.kubectl(
        "patch", "fisvc", "-n", ns, "web", "--type=merge", "-p", json.dumps({"spec": {"scaling": {"minReplicas": 3}}})
    )
    gen = operator.get("fisvc", "-n", ns, "web")["metadata"]["generation"]

    def observed_still_taken() -> bool:
        obj = operator.get("fisvc", "-n", ns, "web")
        c = condition(obj, "Ready") or {}
        return c.get("reason") == "NameTaken" and c.get("observedGeneration") == gen

    wait_for("the new generation observed, still NameTaken", observed_still_taken, timeout=120)
    after = operator.get("deploy", "-n", ns, "web")
    assert _fingerprint(after) == before, "the user's Deployment was changed"
    assert after["spec"]["replicas"] == 2
    operator.kubectl("delete", "fisvc", "-n", ns, "web")
    wait_for(
        "the InferenceService deleted",
        lambda: operator.kubectl("get", "fisvc", "-n", ns, "web", check=False).returncode != 0,
        timeout=120,
    )
    assert _fingerprint(operator.get("deploy", "-n", ns, "web")) == before, "deleting the service touched the user's Deployment"


def test_a_dedicated_evaljob_never_takes_an_existing_eval_named_service(operator: Kube, namespace: str) -> None:
    ns = namespace
    operator.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
    line = json.dumps({"id": "item-0", "inputs": {"FEATURES": [1.0, 2.0, 3.0, 4.0]}, "label": 0})
    operator.kubectl("create", "configmap", "ds", "-n", ns, f"--from-literal=dataset.jsonl={line}\n")
    operator.create(pause_isvc("prod", min_replicas=1, max_replicas=2), ns)
    operator.create(pause_isvc("judge-eval", min_replicas=1, max_replicas=2), ns)  # production, named like the job's child
    wait_for(
        "judge-eval reconciled (its Deployment)",
        lambda: operator.kubectl("get", "deploy", "-n", ns, "judge-eval", check=False).returncode == 0,
        timeout=120,
    )
    before = _fingerprint(operator.get("fisvc", "-n", ns, "judge-eval"))
    job = {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "EvalJob",
        "metadata": {"name": "judge"},
        "spec": {
            "target": {"inferenceService": "prod"},
            "dataset": {"configMap": {"name": "ds"}},
            "scorer": {"kind": "top1", "output": "PROBS"},
            "mode": "dedicated",
            "dedicated": {"replicas": 1},
        },
    }
    operator.create(job, ns)

    def taken() -> dict[str, Any] | None:
        c = condition(operator.get("evj", "-n", ns, "judge"), "Admitted")
        return c if c and c["reason"] == "NameTaken" else None

    c = wait_for("EvalJob Admitted=False NameTaken", taken, timeout=120)
    assert c["status"] == "False" and f"InferenceService {ns}/judge-eval" in c["message"], c
    assert _fingerprint(operator.get("fisvc", "-n", ns, "judge-eval")) == before, "the production service was changed"
    assert not operator.pods(ns, "foresail.dev/evaljob=judge"), "no worker for a job that cannot run"
    operator.kubectl("delete", "evj", "-n", ns, "judge")
    wait_for(
        "the EvalJob deleted",
        lambda: operator.kubectl("get", "evj", "-n", ns, "judge", check=False).returncode != 0,
        timeout=120,
    )
    # the job is gone (garbage collection follows owner references only): the service of that name is still the user's
    assert _fingerprint(operator.get("fisvc", "-n", ns, "judge-eval")) == before, "the production service was changed or deleted"
