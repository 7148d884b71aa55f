"""The rollout's traffic split through the Gateway API (issue 19): the operator configured with a Gateway
(``rollout.gateway``, FORESAIL_GATEWAY) and the real Gateway API CRDs (standard channel, ``hack/tools.py``
gateway-api) applies, for a service under a rollout, the Services ``<name>-stable`` and ``<name>-canary``
(whose endpoints are the revisions' pods) and the HTTPRoute ``<name>`` weighted by the step; after the
promotion the route sends everything to ``<name>-stable`` and ``<name>-canary`` is gone.

The testbed runs no gateway implementation: nothing routes by the HTTPRoute, so only the objects are checked.
The service is kwok-simulated pause replicas without metrics: its first step holds (its gates never see the
requests they need) until ``spec.rollout.action=Promote``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.helpers import pause_isvc
from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import pod_is_live, pod_is_ready
from foresail.render.triton import revision
from hack import tools
from hack.base.kube import Kube
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS, helm, upgrade_foresail

NAME = "split"
GATEWAY = {"rollout.gateway.name": "inference", "rollout.gateway.namespace": "gateways", "rollout.gateway.sectionName": "http"}
SA = f"system:serviceaccount:{SYSTEM_NS}:foresail"


@pytest.fixture
def gateway_api(cluster: Cluster, operator: Kube) -> Iterator[Kube]:
    """The Gateway API's standard CRDs installed and the operator upgraded with ``rollout.gateway``; afterwards the
    release rolled back to its revision of before (and Ready) and the CRDs deleted."""
    crds = sorted((tools.TOOLS_BY_NAME["gateway-api"].ensure() / "crds").glob("*.yaml"))
    revision_before = json.loads(helm(cluster, "status", "foresail", "-n", SYSTEM_NS, "-o", "json").stdout)["version"]
    args = [a for f in crds for a in ("-f", str(f))]
    operator.kubectl("apply", "--server-side", *args)
    try:
        operator.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/httproutes.gateway.networking.k8s.io")
        upgrade_foresail(cluster, GATEWAY)
        yield operator
    finally:
        out = helm(cluster, "rollback", "foresail", str(revision_before), "-n", SYSTEM_NS, "--wait", "--timeout=300s")
        operator.kubectl("delete", "--wait=false", "--ignore-not-found", *args, check=False)
        assert out.returncode == 0, out.stderr


def _isvc(kube: Kube, ns: str) -> dict[str, Any]:
    obj: dict[str, Any] = kube.get("fisvc", "-n", ns, NAME)
    return obj


def _route(kube: Kube, ns: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = kube.api_get(f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes/{NAME}")
    return found


def _weights(kube: Kube, ns: str) -> list[tuple[str, int]] | None:
    route = _route(kube, ns)
    if route is None:
        return None
    return [(r["name"], r["weight"]) for r in route["spec"]["rules"][0]["backendRefs"]]


def _endpoints(kube: Kube, ns: str, service: str) -> set[str]:
    """The ready addresses of the Service's EndpointSlices."""
    slices = kube.api(
        "GET", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=kubernetes.io/service-name%3D{service}"
    )
    return {
        a
        for s in slices["items"]
        for e in s.get("endpoints") or []
        if (e.get("conditions") or {}).get("ready")
        for a in e["addresses"]
    }


def _ready_ips(kube: Kube, ns: str, rev: str) -> set[str]:
    pods = kube.pods(ns, f"foresail.dev/inferenceservice={NAME},foresail.dev/revision={rev}")
    return {p["status"]["podIP"] for p in pods if pod_is_live(p) and pod_is_ready(p) and p["status"].get("podIP")}


def _selector(kube: Kube, ns: str, service: str) -> dict[str, str] | None:
    svc = kube.api_get(f"/api/v1/namespaces/{ns}/services/{service}")
    return None if svc is None else dict(svc["spec"]["selector"])


def test_the_route_follows_the_rollout(gateway_api: Kube, namespace: str) -> None:
    kube, ns = gateway_api, namespace
    can = kube.kubectl("auth", "can-i", "create", "httproutes.gateway.networking.k8s.io", f"--as={SA}", "-n", ns, check=False)
    assert can.stdout.strip() == "yes", "rollout.gateway grants the operator HTTPRoutes"
    # the operator guard: an HTTPRoute that is not Foresail's is refused to the operator's ServiceAccount
    foreign = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "foreign"}, "spec": {}}
    out = kube.kubectl("create", "--dry-run=server", f"--as={SA}", "-n", ns, "-f", "-", input=json.dumps(foreign), check=False)
    assert out.returncode != 0 and "foresail-operator-guard" in out.stderr, out.stderr

    kube.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
    steps = [{"percent": 25, "minSeconds": 0, "minRequests": 100_000_000}]  # held at 25 % until promoted by hand
    kube.create(pause_isvc(NAME, gpus=0, min_replicas=4, max_replicas=4, rollout={"steps": steps}), ns)
    rev0 = revision(InferenceService.model_validate(_isvc(kube, ns)))
    wait_for(
        "status.trafficSplit GatewayWeights, the route at 100 % to the stable Service (every pod of the service)",
        lambda: (
            (_isvc(kube, ns).get("status") or {}).get("trafficSplit") == "GatewayWeights"
            and _weights(kube, ns) == [(f"{NAME}-stable", 100)]
            and _selector(kube, ns, f"{NAME}-stable") == {"foresail.dev/inferenceservice": NAME}
        ),
        timeout=180,
    )
    route = _route(kube, ns)
    assert route is not None
    assert route["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "inference",
            "namespace": "gateways",
            "sectionName": "http",
        }
    ]
    md = route["metadata"]
    assert md["labels"]["app.kubernetes.io/managed-by"] == "foresail"
    assert [(r["kind"], r["name"], r["controller"]) for r in md["ownerReferences"]] == [("InferenceService", NAME, True)]
    wait_for("4 ready replicas of the first revision", lambda: len(_ready_ips(kube, ns, rev0)) == 4, timeout=300)

    # a new revision: its canary at the first step, 25 %
    kube.kubectl(
        "patch",
        "fisvc",
        "-n",
        ns,
        NAME,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"triton": {"env": [{"name": "V", "value": "2"}]}}}),
    )
    rev1 = revision(InferenceService.model_validate(_isvc(kube, ns)))
    assert rev1 != rev0
    wait_for(
        "the route at 75/25 while the canary runs its first step",
        lambda: (
            ((_isvc(kube, ns).get("status") or {}).get("rollout") or {}).get("canaryRevision") == rev1
            and _weights(kube, ns) == [(f"{NAME}-stable", 75), (f"{NAME}-canary", 25)]
        ),
        timeout=180,
    )

    def revisions_behind_their_services() -> bool:
        stable, canary = _ready_ips(kube, ns, rev0), _ready_ips(kube, ns, rev1)
        return (
            bool(canary)
            and _endpoints(kube, ns, f"{NAME}-canary") == canary
            and _endpoints(kube, ns, f"{NAME}-stable") == stable
            and not stable & canary
        )

    wait_for("each per-revision Service's endpoints: its revision's ready pods", revisions_behind_their_services, timeout=300)
    assert _selector(kube, ns, f"{NAME}-stable") == {"foresail.dev/inferenceservice": NAME, "foresail.dev/revision": rev0}
    assert _selector(kube, ns, f"{NAME}-canary") == {"foresail.dev/inferenceservice": NAME, "foresail.dev/revision": rev1}

    # promoted by hand: everything to the stable Service, the canary Service deleted
    kube.kubectl("patch", "fisvc", "-n", ns, NAME, "--type=merge", "-p", json.dumps({"spec": {"rollout": {"action": "Promote"}}}))
    wait_for(
        "after the promotion: the route at 100 % to the stable Service, the canary Service gone",
        lambda: (
            ((_isvc(kube, ns).get("status") or {}).get("rollout") or {}).get("phase") == "Promoted"
            and _weights(kube, ns) == [(f"{NAME}-stable", 100)]
            and _selector(kube, ns, f"{NAME}-canary") is None
        ),
        timeout=180,
    )
    wait_for(
        "the stable Service's endpoints: the promoted revision's pods once the old ones are gone",
        lambda: not _ready_ips(kube, ns, rev0) and _endpoints(kube, ns, f"{NAME}-stable") == _ready_ips(kube, ns, rev1) != set(),
        timeout=300,
    )


def test_without_a_gateway_the_split_is_by_replicas(operator: Kube, namespace: str) -> None:
    """The session's operator has no gateway configured: nothing of the Gateway API, status says ReplicaShare."""
    kube, ns = operator, namespace
    kube.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
    kube.create(pause_isvc(f"{NAME}-{uuid.uuid4().hex[:4]}", gpus=0, min_replicas=1, max_replicas=1), ns)
    wait_for(
        "status.trafficSplit ReplicaShare",
        lambda: [(i.get("status") or {}).get("trafficSplit") for i in kube.get("fisvc", "-n", ns)["items"]] == ["ReplicaShare"],
        timeout=180,
    )
    names = {s["metadata"]["name"] for s in kube.get("services", "-n", ns)["items"]}
    assert not any(n.endswith(("-stable", "-canary")) for n in names), names
