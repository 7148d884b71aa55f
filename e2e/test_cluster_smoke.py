"""Smoke tests of the local control plane: scheduling on fake GPU nodes, readiness gates, quota,
priority preemption, ValidatingAdmissionPolicy, garbage collection and namespace deletion."""

from __future__ import annotations

import json
import uuid
from typing import Any

from e2e.helpers import pause_deployment
from foresail.api.objects import condition, pod_is_ready
from hack.base.kube import Kube
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster


def test_nodes_advertise_gpus(kube: Kube, cluster: Cluster) -> None:
    nodes = kube.get("nodes")["items"]
    assert len(nodes) == cluster.nodes
    for n in nodes:
        assert n["status"]["allocatable"]["nvidia.com/gpu"] == str(cluster.gpus_per_node)
        assert n["metadata"]["labels"]["nvidia.com/gpu.product"]
        assert condition(n, "Ready")["status"] == "True"  # type: ignore[index]
        assert not n["spec"].get("taints"), "fake nodes carry no kwok-specific taints"


def test_gpu_deployment_schedules_and_overask_stays_pending(kube: Kube, cluster: Cluster, namespace: str) -> None:
    kube.apply(pause_deployment("one-gpu", replicas=2, gpus=1), namespace)

    def two_ready() -> list[dict[str, Any]] | None:
        pods = kube.pods(namespace, "app=one-gpu")
        return pods if len(pods) == 2 and all(map(pod_is_ready, pods)) else None

    pods = wait_for("2 Ready GPU pods", two_ready, timeout=120)
    for p in pods:
        assert p["spec"]["nodeName"].startswith("gpu-node-")
        assert p["status"]["podIP"]

    too_big = cluster.gpus_per_node + 1
    kube.apply(pause_deployment("too-big", replicas=1, gpus=too_big), namespace)

    def unschedulable() -> dict[str, object] | None:
        for p in kube.pods(namespace, "app=too-big"):
            c = condition(p, "PodScheduled")
            if c and c["status"] == "False" and c.get("reason") == "Unschedulable":
                return c
        return None

    c = wait_for("the scheduler's Unschedulable reason", unschedulable, timeout=120)
    assert "Insufficient nvidia.com/gpu" in str(c.get("message")), c


def test_readiness_gate_holds_pod_until_condition_true(kube: Kube, namespace: str) -> None:
    gate = "foresail.dev/warm"
    kube.apply(pause_deployment("gated", replicas=1, readinessGates=[{"conditionType": gate}]), namespace)
    pod = wait_for(
        "a running gated pod",
        lambda: next((p for p in kube.pods(namespace, "app=gated") if p["status"].get("phase") == "Running"), None),
    )
    name = pod["metadata"]["name"]
    # containers are ready, the gate is not: the pod must stay NotReady
    assert condition(pod, "ContainersReady")["status"] == "True"  # type: ignore[index]
    for _ in range(8):
        assert not pod_is_ready(kube.get("pod", "-n", namespace, name))

    def slice_ready() -> list[dict[str, Any]]:
        slices = kube.get("endpointslices", "-n", namespace)["items"]
        return [ep for s in slices for ep in (s.get("endpoints") or [])]

    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "gated"},
            "spec": {"selector": {"app": "gated"}, "ports": [{"port": 80}]},
        },
        namespace,
    )
    eps = wait_for("an EndpointSlice entry for the gated pod", slice_ready)
    assert all(ep["conditions"]["ready"] is False for ep in eps), eps

    def set_gate(status: str) -> None:
        patch = {"status": {"conditions": [{"type": gate, "status": status, "reason": "Test", "message": "set by the test"}]}}
        kube.kubectl("patch", "pod", "-n", namespace, name, "--subresource=status", "--type=strategic", "-p", json.dumps(patch))

    set_gate("True")
    wait_for("pod Ready after the gate turns True", lambda: pod_is_ready(kube.get("pod", "-n", namespace, name)))
    wait_for("EndpointSlice marks the pod ready", lambda: all(ep["conditions"]["ready"] for ep in slice_ready()))
    set_gate("False")
    wait_for("pod NotReady after the gate turns False", lambda: not pod_is_ready(kube.get("pod", "-n", namespace, name)))


def test_resource_quota_rejects_gpu_overask(kube: Kube, namespace: str) -> None:
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "gpus"},
            "spec": {"hard": {"requests.nvidia.com/gpu": "2"}},
        },
        namespace,
    )
    wait_for("quota status", lambda: kube.get("resourcequota", "-n", namespace, "gpus")["status"].get("hard"))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "greedy"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"limits": {"nvidia.com/gpu": "3"}},
                }
            ]
        },
    }
    out = kube.create(pod, namespace, check=False)
    assert out.returncode != 0
    assert "Forbidden" in out.stderr, out.stderr
    assert "exceeded quota: gpus" in out.stderr, out.stderr
    assert "requests.nvidia.com/gpu=3" in out.stderr, out.stderr


def test_priority_preemption_frees_gpus_for_higher_priority(kube: Kube, cluster: Cluster, bare_namespace: str) -> None:
    # a namespace without a tenant's backstop quota: filler and urgent pods together ask for more GPUs than exist
    namespace = bare_namespace
    low, high = f"low-{uuid.uuid4().hex[:6]}", f"high-{uuid.uuid4().hex[:6]}"
    for name, value in ((low, 100), (high, 100000)):
        kube.apply({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value})
    try:
        n, g = cluster.nodes, cluster.gpus_per_node
        kube.apply(pause_deployment("filler", replicas=n, gpus=g, priority_class=low), namespace)
        wait_for(
            "all GPUs taken by low priority",
            lambda: (p := kube.pods(namespace, "app=filler")) and sum(map(pod_is_ready, p)) == n,
            timeout=120,
        )
        kube.apply(pause_deployment("urgent", replicas=1, gpus=g, priority_class=high), namespace)
        urgent = wait_for(
            "the high-priority pod Ready",
            lambda: next((p for p in kube.pods(namespace, "app=urgent") if pod_is_ready(p)), None),
            timeout=180,
        )
        assert urgent["spec"]["nodeName"]
        wait_for(
            "a Preempted event",
            lambda: any(e.get("reason") == "Preempted" for e in kube.get("events", "-n", namespace)["items"]),
            timeout=60,
        )
        # exactly one low-priority pod gave way: its replacement waits, the others keep running
        wait_for(
            f"{n - 1} low-priority pods Ready and one Pending",
            lambda: (
                sum(map(pod_is_ready, f := kube.pods(namespace, "app=filler"))) == n - 1
                and sum(1 for p in f if p["status"].get("phase") == "Pending") == 1
            ),
            timeout=60,
        )
    finally:
        kube.kubectl("delete", "deployment", "--all", "-n", namespace, "--wait=false")
        kube.kubectl("delete", "priorityclass", low, high, "--wait=false", check=False)


def test_validating_admission_policy_denies(kube: Kube, namespace: str) -> None:
    name = f"no-forbidden-key-{uuid.uuid4().hex[:6]}"
    kube.kubectl("label", "namespace", namespace, f"vap-test={name}")
    kube.apply(
        f"""
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}}
  validations:
  - expression: "!has(object.data) || !('forbidden' in object.data)"
    message: data.forbidden is not allowed here
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources: {{namespaceSelector: {{matchLabels: {{vap-test: {name}}}}}}}
"""
    )
    try:
        bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"}, "data": {"forbidden": "x"}}

        def denied() -> str | None:
            out = kube.create(bad, namespace, check=False)
            if out.returncode == 0:  # the policy is not active yet: undo and retry
                kube.kubectl("delete", "configmap", "-n", namespace, "bad")
                return None
            return str(out.stderr)

        err = wait_for("the policy to deny", denied, timeout=30)
        assert "data.forbidden is not allowed here" in err, err
        ok = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good"}, "data": {"fine": "x"}}
        assert kube.create(ok, namespace, check=False).returncode == 0
    finally:
        kube.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, check=False)


def test_garbage_collection_and_namespace_deletion(kube: Kube, cluster: Cluster) -> None:
    ns = f"gc-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", ns)
    cluster.wait_default_service_account(ns)
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}, ns)
    owner_uid = kube.get("configmap", "-n", ns, "owner")["metadata"]["uid"]
    owner_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}
    dependent = {"name": "dependent", "ownerReferences": [owner_ref]}
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": dependent}, ns)
    kube.apply(pause_deployment("web", replicas=2), ns)
    wait_for("deployment pods", lambda: len(kube.pods(ns, "app=web")) == 2, timeout=120)

    kube.kubectl("delete", "configmap", "-n", ns, "owner")
    wait_for(
        "the dependent to be collected",
        lambda: kube.kubectl("get", "configmap", "-n", ns, "dependent", check=False).returncode != 0,
    )

    kube.kubectl("delete", "deployment", "-n", ns, "web")
    wait_for(
        "replicasets and pods collected",
        lambda: not kube.pods(ns) and not kube.get("replicasets", "-n", ns)["items"],
        timeout=120,
    )

    kube.apply(pause_deployment("leftover", replicas=1), ns)
    kube.kubectl("delete", "namespace", ns, "--wait=false")
    wait_for(
        "namespace deletion to complete",
        lambda: kube.kubectl("get", "namespace", ns, check=False).returncode != 0,
        timeout=180,
    )
