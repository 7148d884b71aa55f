"""The operator installed with Helm into the local cluster: InferenceServices reconciled for real.

The operator runs in-cluster (the local runtime runs the Foresail image) under the chart's own
service account, in a namespace enforcing Pod Security Standards `restricted`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import condition, is_condition_true, pod_is_live, pod_is_ready
from foresail.render.triton import render_children
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS, helm
from hack.testbed.runtime.images import FORESAIL_IMAGE

SA = f"system:serviceaccount:{SYSTEM_NS}:foresail"


def _isvc_ready(kube: Kube, ns: str, name: str) -> dict[str, Any] | None:
    obj = kube.get("fisvc", "-n", ns, name)
    c = condition(obj, "Ready")
    return obj if c and c["status"] == "True" else None


def test_helm_lint() -> None:
    out = helm(None, "lint", "--strict", str(REPO / "charts/foresail"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_operator_runs_restricted_with_one_leader(operator: Kube) -> None:
    def two_ready() -> list[dict[str, Any]] | None:
        pods = operator.pods(SYSTEM_NS, "app.kubernetes.io/name=foresail")
        return pods if len(pods) == 2 and all(map(pod_is_ready, pods)) else None

    pods = wait_for("2 Ready operator pods", two_ready, timeout=180)
    for p in pods:
        assert p["spec"]["serviceAccountName"] == "foresail"
        sc = p["spec"]["containers"][0]["securityContext"]
        assert sc["readOnlyRootFilesystem"] and sc["capabilities"]["drop"] == ["ALL"]
    lease = wait_for(
        "the leader lease", lambda: operator.get("lease", "-n", SYSTEM_NS, "foresail-operator")["spec"].get("holderIdentity")
    )
    assert lease in [p["metadata"]["name"] for p in pods]


def test_example_becomes_ready_and_serves(operator: Kube, cluster: Cluster, namespace: str) -> None:
    t0 = time.monotonic()
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples"))
    # the autoscaler may add replicas meanwhile (the warm-up's slow first requests look like pressure on a busy
    # machine): every check below holds for any number of replicas
    isvc = wait_for("the example InferenceService Ready", lambda: _isvc_ready(operator, namespace, "emulated"), timeout=300)
    took = time.monotonic() - t0
    print(f"\n[figure] kubectl apply -> InferenceService Ready: {took:.1f}s")
    assert isvc["status"]["readyReplicas"] >= 1
    assert isvc["status"]["observedGeneration"] == isvc["metadata"]["generation"]

    def a_warm_ready_pod() -> dict[str, Any] | None:
        pods = operator.pods(namespace, "foresail.dev/inferenceservice=emulated")
        return next((p for p in pods if pod_is_live(p) and pod_is_ready(p) and is_condition_true(p, "foresail.dev/warm")), None)

    pod = wait_for("a warm, Ready pod", a_warm_ready_pod, timeout=60)
    warm = condition(pod, "foresail.dev/warm")
    assert warm and "warm after" in warm["message"], warm
    # Ready came only after the warm gate
    assert condition(pod, "Ready")["lastTransitionTime"] >= warm["lastTransitionTime"]  # type: ignore[index]
    ip = pod["status"]["podIP"]
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": [1.0] * 16}]})
    out = subprocess.run(
        cluster.exec_cmd(["curl", "-sf", "-m", "30", "-X", "POST", f"http://{ip}:8000/v2/models/emulated/infer", "-d", body]),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["outputs"][0]["data"] == [2.0] * 16
    cs = wait_for(
        "a cold-start estimate", lambda: operator.get("fisvc", "-n", namespace, "emulated")["status"].get("coldStart"), timeout=60
    )
    assert cs["samples"] >= 1 and cs["p50Seconds"] > 0


def test_drift_is_repaired_and_delete_removes_children(operator: Kube, namespace: str) -> None:
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples"))
    wait_for(
        "Deployment created",
        lambda: operator.kubectl("get", "deploy", "-n", namespace, "emulated", check=False).returncode == 0,
        timeout=120,
    )
    operator.kubectl("delete", "service", "-n", namespace, "emulated")
    wait_for(
        "the Service recreated",
        lambda: operator.kubectl("get", "svc", "-n", namespace, "emulated", check=False).returncode == 0,
        timeout=120,
    )
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nvcr.io/nvidia/tritonserver:edited"}]
    operator.kubectl("patch", "deploy", "-n", namespace, "emulated", "--type=json", "-p", json.dumps(patch))
    wait_for(
        "the Deployment restored",
        lambda: (
            operator.get("deploy", "-n", namespace, "emulated")["spec"]["template"]["spec"]["containers"][0]["image"]
            != "nvcr.io/nvidia/tritonserver:edited"
        ),
        timeout=120,
    )
    # a spec update rolls the Deployment
    operator.kubectl(
        "patch",
        "fisvc",
        "-n",
        namespace,
        "emulated",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"triton": {"args": ["--allow-gpu-metrics=false", "--log-verbose=0"]}}}),
    )
    wait_for(
        "the new arg rolled out",
        lambda: (
            "--log-verbose=0"
            in operator.get("deploy", "-n", namespace, "emulated")["spec"]["template"]["spec"]["containers"][0]["args"]
        ),
        timeout=120,
    )
    operator.kubectl("delete", "fisvc", "-n", namespace, "emulated")
    for kind in ("deployment", "service", "poddisruptionbudget"):

        def gone(kind: str = kind) -> bool:
            return bool(operator.kubectl("get", kind, "-n", namespace, "emulated", check=False).returncode != 0)

        wait_for(f"{kind} garbage-collected", gone, timeout=120)


def test_missing_repository_is_a_condition_not_a_crash(operator: Kube, namespace: str) -> None:
    isvc = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    isvc["metadata"]["name"] = "orphan"
    isvc["spec"]["model"]["repository"] = {"configMap": {"name": "no-such-models"}}
    operator.create(isvc, namespace)

    def reason() -> str | None:
        c = condition(operator.get("fisvc", "-n", namespace, "orphan"), "Ready")
        return c["reason"] if c and c["status"] == "False" and c["reason"] == "RepositoryNotFound" else None

    wait_for("Ready=False RepositoryNotFound", reason, timeout=120)
    assert operator.kubectl("get", "deploy", "-n", namespace, "orphan", check=False).returncode != 0
    wait_for(
        "a RepositoryNotFound event naming the ConfigMap",
        lambda: any(
            e["reason"] == "RepositoryNotFound" and "no-such-models" in e["message"]
            for e in operator.get("events", "-n", namespace)["items"]
        ),
        timeout=60,
    )


INVALID = [
    ("min > max", {"scaling": {"minReplicas": 5, "maxReplicas": 2}}, "minReplicas must be <= scaling.maxReplicas"),
    ("negative GPUs", {"triton": {"gpusPerReplica": -1}}, "spec.triton.gpusPerReplica"),
    ("unknown priority", {"priority": "urgent"}, "spec.priority"),
    ("bad quantity", {"triton": {"resources": {"limits": {"memory": "lots"}}}}, "spec.triton.resources.limits.memory"),
    (
        "two repository sources",
        {"model": {"name": "m", "repository": {"configMap": {"name": "a"}, "pvc": {"claimName": "b"}}}},
        "exactly one of pvc, configMap or storageUri",
    ),
    ("missing model", {"model": None}, "spec.model: Required value"),
    ("zero SLO", {"slo": {"p99LatencyMs": 0}}, "spec.slo.p99LatencyMs"),
    ("malformed storage URI", {"model": {"name": "m", "repository": {"storageUri": "s3://b/m"}}}, "spec.model.repository.storageUri"),
    ("storage URI not an archive", {"model": {"name": "m", "repository": {"storageUri": "https://h/m.onnx"}}}, "storageUri must be"),
    ("minReplicas 0", {"scaling": {"minReplicas": 0, "maxReplicas": 2}}, "spec.scaling.minReplicas"),
    ("gpuProduct of 64 characters", {"triton": {"gpuProduct": "A" * 64}}, "spec.triton.gpuProduct"),
    ("gpuProduct ending in '-'", {"triton": {"gpuProduct": "NVIDIA-H100-"}}, "spec.triton.gpuProduct"),
    ("image with surrounding spaces", {"triton": {"image": " busybox:1 "}}, "spec.triton.image"),
]


@pytest.mark.parametrize(("name", "patch", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_specs_rejected_at_admission(
    operator: Kube, namespace: str, name: str, patch: dict[str, Any], message: str
) -> None:
    obj = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["spec"].update(patch)
    obj["spec"] = {k: v for k, v in obj["spec"].items() if v is not None}
    out = operator.create(obj, namespace, check=False)
    assert out.returncode != 0
    assert "is invalid" in out.stderr and message in out.stderr, out.stderr


def test_name_too_long_for_derived_objects(operator: Kube, namespace: str) -> None:
    obj = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["metadata"]["name"] = "x" * 50
    out = operator.create(obj, namespace, check=False)
    assert out.returncode != 0
    assert "metadata.name must be at most 45 characters" in out.stderr, out.stderr


def test_a_rename_of_the_model_under_a_rollout_is_refused(operator: Kube, namespace: str) -> None:
    """A transition rule (CEL oldSelf): both revisions of a rollout answer to one model name."""
    obj = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["metadata"]["name"] = "renamed"
    obj["spec"]["rollout"] = {"steps": [{"percent": 50}]}
    operator.create(obj, namespace)
    rename = json.dumps({"spec": {"model": {"name": "other"}}})
    out = operator.kubectl("patch", "fisvc", "-n", namespace, "renamed", "--type=merge", "-p", rename, check=False)
    assert out.returncode != 0 and "spec.model.name cannot change while spec.rollout is set" in out.stderr, out.stderr
    assert "spec.model.name" in out.stderr.split("cannot change")[0], f"the field is named: {out.stderr}"
    # without spec.rollout the rename rolls in place: allowed in the same patch
    both = json.dumps({"spec": {"model": {"name": "other"}, "rollout": None}})
    operator.kubectl("patch", "fisvc", "-n", namespace, "renamed", "--type=merge", "-p", both)
    assert operator.get("fisvc", "-n", namespace, "renamed")["spec"]["model"]["name"] == "other"


@pytest.mark.parametrize("name", ["v1.2", "1resnet"])
def test_a_name_that_cannot_name_a_service_is_refused(operator: Kube, namespace: str, name: str) -> None:
    obj = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["metadata"]["name"] = name
    out = operator.create(obj, namespace, check=False)
    assert out.returncode != 0
    assert "metadata.name must be a DNS-1035 label" in out.stderr, out.stderr


def test_rbac_snapshot(operator: Kube) -> None:
    out = operator.kubectl("auth", "can-i", "--list", f"--as={SA}", "-n", SYSTEM_NS).stdout
    rules = sorted(" ".join(line.split()) for line in out.splitlines()[1:] if line.strip())
    snapshot = REPO / "e2e/snapshots/operator-rbac.txt"
    if os.environ.get("FORESAIL_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text("\n".join(rules) + "\n")
    assert "*" not in " ".join(r.split("[")[0] for r in rules if not r.startswith("selfsubject")), rules
    assert not [r for r in rules if r.startswith("secrets")], "the operator never reads secrets"
    assert rules == snapshot.read_text().splitlines(), (
        "RBAC changed: review, then update " + str(snapshot) + "\n" + "\n".join(rules)
    )
    # outside its namespace the operator cannot touch leases
    assert (
        operator.kubectl("auth", "can-i", "update", "leases", f"--as={SA}", "-n", "default", check=False).stdout.strip() == "no"
    )


_name = st.from_regex(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_specs = st.fixed_dictionaries(
    {
        "model": st.fixed_dictionaries({"name": st.from_regex(r"[A-Za-z0-9_.-]{1,30}", fullmatch=True), "repository": st.one_of(
            st.fixed_dictionaries({"configMap": st.fixed_dictionaries({"name": _name})}),
            st.fixed_dictionaries({"pvc": st.fixed_dictionaries({"claimName": _name, "subPath": st.sampled_from(["", "models", "a/b"])})}),
        )}),
        "slo": st.fixed_dictionaries({"p99LatencyMs": st.one_of(st.integers(-5, 10_000), st.floats(0.001, 1e6))}),
        "scaling": st.fixed_dictionaries({"minReplicas": st.integers(-1, 20), "maxReplicas": st.integers(0, 30)}),
        "triton": st.fixed_dictionaries({
            "gpusPerReplica": st.integers(-1, 17),
            "args": st.lists(st.sampled_from(["--log-verbose=1", "--strict-readiness=true", "--buffer-manager-thread-count=2"]), max_size=2),
            "resources": st.fixed_dictionaries({"limits": st.fixed_dictionaries({"memory": st.sampled_from(["1Gi", "512Mi", "2G", "lots", "-1"])})}),
        }),
        "priority": st.sampled_from(["critical", "standard", "batch", "urgent"]),
        "warmup": st.fixed_dictionaries({"enabled": st.booleans(), "requests": st.integers(0, 50)}),
    }
)  # fmt: skip


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=_specs, name=_name)
def test_any_spec_is_rejected_or_renders_accepted_objects(operator: Kube, namespace: str, spec: dict[str, Any], name: str) -> None:
    """Property: the apiserver rejects the spec, or the operator renders objects the apiserver accepts."""
    obj = {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    out = operator.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(obj), check=False)
    if out.returncode != 0:
        assert "is invalid" in out.stderr or "Invalid value" in out.stderr, out.stderr
        return
    accepted = json.loads(out.stdout)
    accepted["metadata"]["uid"] = str(uuid.uuid4())
    isvc = InferenceService.model_validate(accepted)  # what the apiserver accepts, the operator can read
    for child in render_children(isvc):
        res = operator.kubectl("create", "--dry-run=server", "-o", "name", "-f", "-", input=json.dumps(child), check=False)
        assert res.returncode == 0, f"{child['kind']} rejected: {res.stderr}"


def test_chart_default_image_is_the_runtime_image() -> None:
    values = yaml.safe_load((REPO / "charts/foresail/values.yaml").read_text())
    assert values["image"]["repository"] == FORESAIL_IMAGE
    assert Path(REPO / "operator/Dockerfile").is_file()


def test_deletion_completes_while_the_operator_is_down(operator: Kube, namespace: str) -> None:
    """No finalizer waits for the operator: with it scaled to 0, deleting an InferenceService and an EvalJob
    completes, and the service's children go with it (ownerReferences)."""
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples"))
    wait_for(
        "the Deployment created",
        lambda: operator.kubectl("get", "deploy", "-n", namespace, "emulated", check=False).returncode == 0,
        timeout=120,
    )
    job = {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "EvalJob",
        "metadata": {"name": "waiting"},
        "spec": {"target": {"inferenceService": "nope"}, "dataset": {"configMap": {"name": "nope"}}, "scorer": {"kind": "top1"}},
    }
    operator.create(job, namespace)
    wait_for("the EvalJob reconciled", lambda: condition(operator.get("evj", "-n", namespace, "waiting"), "Admitted"), timeout=120)
    operator.kubectl("scale", "deploy", "-n", SYSTEM_NS, "foresail", "--replicas=0")
    try:
        wait_for("no operator pods", lambda: not operator.pods(SYSTEM_NS, "app.kubernetes.io/name=foresail"), timeout=120)
        operator.kubectl("delete", "fisvc", "-n", namespace, "emulated", "--wait=false")
        operator.kubectl("delete", "evj", "-n", namespace, "waiting", "--wait=false")
        for kind, name in (("fisvc", "emulated"), ("evj", "waiting"), ("deployment", "emulated"), ("service", "emulated")):

            def gone(kind: str = kind, name: str = name) -> bool:
                return operator.kubectl("get", kind, "-n", namespace, name, check=False).returncode != 0

            wait_for(f"{kind} {name} deleted without the operator", gone, timeout=120)
    finally:
        operator.kubectl("scale", "deploy", "-n", SYSTEM_NS, "foresail", "--replicas=2")

        def two_ready() -> bool:
            pods = operator.pods(SYSTEM_NS, "app.kubernetes.io/name=foresail")
            return len(pods) == 2 and all(map(pod_is_ready, pods))

        wait_for("the operator back", two_ready, timeout=180)
