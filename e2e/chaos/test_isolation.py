"""One broken object among healthy ones: an InferenceService naming a ScalingPolicy that does not exist and a
Tenant claiming a namespace another Tenant owns sit next to a healthy service, which still follows its spec;
each broken object shows a condition with a reason."""

from __future__ import annotations

import json
from typing import Any

from e2e.helpers import pause_isvc
from foresail.api.objects import condition, pod_is_live, pod_is_ready
from hack.base.kube import Kube
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import tenant_manifest


def _cond(kube: Kube, kind: str, ns: str | None, name: str, type_: str) -> dict[str, Any] | None:
    obj = kube.get(kind, *(["-n", ns] if ns else []), name)
    return condition(obj, type_)


def test_a_missing_policy_and_a_rival_tenant_leave_a_healthy_service_scaling(
    operator: Kube, cluster: Cluster, namespace: str
) -> None:
    ns = namespace
    operator.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
    operator.create(pause_isvc("healthy", min_replicas=1, max_replicas=4), ns)
    operator.create(pause_isvc("lost", scaling={"minReplicas": 1, "maxReplicas": 4, "policyRef": "no-such-policy"}), ns)
    rival = f"{ns}-rival"
    operator.apply(tenant_manifest(rival, [ns], limit=4))
    try:
        lost = wait_for(
            "ScalingActive=False PolicyNotFound on the service naming a missing policy",
            lambda: (c := _cond(operator, "fisvc", ns, "lost", "ScalingActive")) and c["reason"] == "PolicyNotFound" and c,
            timeout=120,
        )
        assert lost["status"] == "False" and "no-such-policy" in lost["message"], lost
        conflict = wait_for(
            "NamespaceConflict=True NamespaceOwnedElsewhere on the rival Tenant",
            lambda: (c := _cond(operator, "tenant", None, rival, "NamespaceConflict")) and c["status"] == "True" and c,
            timeout=120,
        )
        assert conflict["reason"] == "NamespaceOwnedElsewhere" and ns in conflict["message"], conflict
        # the namespace stays its first owner's
        assert operator.get("namespace", ns)["metadata"]["labels"]["foresail.dev/tenant"] == ns

        # the healthy service still follows its spec: a minReplicas change is decided, written and served
        operator.kubectl(
            "patch", "fisvc", "-n", ns, "healthy", "--type=merge", "-p", json.dumps({"spec": {"scaling": {"minReplicas": 3}}})
        )

        def three_serving() -> bool:
            isvc = operator.get("fisvc", "-n", ns, "healthy")
            dep = operator.get("deploy", "-n", ns, "healthy")
            pods = [p for p in operator.pods(ns, "foresail.dev/inferenceservice=healthy") if pod_is_live(p)]
            ready = condition(isvc, "Ready") or {}
            return (
                dep["spec"]["replicas"] == 3
                and (isvc.get("status") or {}).get("desiredReplicas") == 3
                and sum(map(pod_is_ready, pods)) == 3
                and ready.get("status") == "True"
            )

        wait_for("the healthy service at 3 ready replicas, Ready", three_serving, timeout=180)
        # the broken objects still say why, after the healthy service's change
        c = _cond(operator, "fisvc", ns, "lost", "ScalingActive")
        assert c and c["reason"] == "PolicyNotFound", c
        c = _cond(operator, "tenant", None, rival, "NamespaceConflict")
        assert c and c["status"] == "True", c
    finally:
        operator.kubectl("delete", "tenant", rival, "--wait=false", "--ignore-not-found", check=False)
