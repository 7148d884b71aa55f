"""A converged service costs the apiserver nothing: the reconciler skips a child's apply when the live object
already holds every field it renders (``clients.caches.holds``). That only works if what the real apiserver
stores holds what the operator renders: the apiserver drops empty lists and maps, defaults fields and turns
numbers into quantities. Before this test, every Triton Deployment rendered ``env: []``, which the apiserver
stores as no ``env``, so every reconcile re-applied every Deployment (44 applies per pass at 200 services).

Here the operator creates each service's children on the real kube-apiserver; the test renders them again
with the operator's own renderer and asks ``holds`` of each, naming the fields that differ."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from foresail.api.inferenceservice import InferenceService
from foresail.api.rollout import Slot
from foresail.clients.caches import holds
from foresail.render.slots import plan_slots
from foresail.render.triton import render_pdb, render_service, slot_name
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster.chart import SYSTEM_NS

PLURAL = {"Deployment": "deployment", "Service": "service", "PodDisruptionBudget": "pdb"}


def _differences(live: Any, rendered: Any, path: str = "") -> list[str]:
    """The paths where ``live`` does not hold ``rendered``, for the failure message."""
    if holds(live, rendered):
        return []
    if isinstance(rendered, dict) and isinstance(live, dict):
        return [d for k, v in rendered.items() if v is not None
                for d in (_differences(live[k], v, f"{path}.{k}") if k in live else [f"{path}.{k} missing (rendered {json.dumps(v)[:120]})"])]  # fmt: skip
    if isinstance(rendered, list) and isinstance(live, list) and len(live) == len(rendered):
        return [d for i, (a, b) in enumerate(zip(live, rendered, strict=True)) for d in _differences(a, b, f"{path}[{i}]")]
    return [f"{path}: live {json.dumps(live)[:160]} rendered {json.dumps(rendered)[:160]}"]


def _overlay(spec: dict[str, Any]) -> None:
    spec["triton"].update(
        shmSize="256Mi",
        podTemplate={
            "metadata": {"labels": {"team": "vision"}, "annotations": {"example.com/owner": "vision"}},
            "spec": {
                "serviceAccountName": "triton",
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
                "containers": [{"name": "triton", "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
            },
        },
    )  # fmt: skip


def _archive(spec: dict[str, Any]) -> None:
    spec["model"]["repository"] = {"storageUri": "http://models.invalid/emulated.tar.gz", "sha256": "0" * 64}


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda spec: None, id="the example service"),
        pytest.param(_overlay, id="a pod template overlay and shared memory"),
        pytest.param(_archive, id="a storageUri archive (storage-init)"),
    ],
)
def test_the_apiservers_children_hold_what_the_operator_renders(operator: Kube, namespace: str, shape: Any) -> None:
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    obj: dict[str, Any] = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["spec"]["scaling"]["maxReplicas"] = 1
    shape(obj["spec"])
    operator.create(obj, namespace)

    def children() -> list[dict[str, Any]] | None:
        got = [operator.kubectl("get", PLURAL[k], "-n", namespace, "emulated", "-o", "json", check=False) for k in PLURAL]
        return [json.loads(g.stdout) for g in got] if all(g.returncode == 0 for g in got) else None

    live = wait_for("the service's Deployment, Service and PDB", children, timeout=120)
    isvc = InferenceService.model_validate(operator.get("fisvc", "-n", namespace, "emulated"))
    op = operator.get("deployment", "-n", SYSTEM_NS, "foresail")["spec"]["template"]["spec"]
    env = op["containers"][0].get("env", [])
    worker = next((e["value"] for e in env if e["name"] == "FORESAIL_IMAGE"), "ghcr.io/foresail/foresail:0.1.0")
    slots = {s: live[0] if slot_name("emulated", s) == "emulated" else None for s in Slot}
    plan = plan_slots(isvc, slots, worker)
    rendered = [*plan.deployments, render_service(isvc), render_pdb(isvc)]
    for child in rendered:
        found = next(o for o in live if o["kind"] == child["kind"])
        assert holds(found, child), f"{child['kind']} differs from its rendering at: {_differences(found, child)}"
