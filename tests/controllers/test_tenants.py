"""The tenant glue against a fake apiserver: what it writes, and that it writes only changes."""

from __future__ import annotations

from typing import Any

from foresail.api.inferenceservice import InferenceService
from foresail.clients.kube import Kube
from foresail.controllers.tenants import TenantArbiter
from foresail.quota.snapshot import Arbitration
from tests.controllers.objects import NOW, isvc, namespace, node, pod, tenant
from tests.fakes.apiserver import FakeApiServer


def _arbitrate(kube: Kube, tenants: list[dict[str, Any]]) -> tuple[TenantArbiter, Arbitration, list[dict[str, Any]]]:
    svc = InferenceService.model_validate(isvc("web", "team-a"))
    pods = [pod("web", "team-a", i) for i in range(2)]
    arbiter = TenantArbiter(kube, batch_min_runtime_s=300)
    arb = arbiter.arbitrate([svc], pods, [node("n1", 8)], tenants, [namespace("team-a")], {("team-a", "web"): 3}, NOW)
    return arbiter, arb, pods


def test_writes_the_quota_backstop_and_the_tenant_status_then_nothing_when_unchanged(api: FakeApiServer) -> None:
    t = tenant("a", ["team-a"], limit=6)
    stale = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "foresail-tenant-gpus", "namespace": "gone", "labels": {"foresail.dev/tenant": "a"}},
        "spec": {"hard": {"requests.nvidia.com/gpu": "1"}},
    }
    api.put(t, stale)
    kube = api.kube()
    arbiter, arb, pods = _arbitrate(kube, kube.list("Tenant"))
    assert arb.grant("team-a", "web") is not None and arb.grant("team-a", "web").units == 3  # type: ignore[union-attr]
    arbiter.write(arb, pods, kube.list("ResourceQuota", None, "foresail.dev/tenant"), kube.list("Tenant"), NOW)

    applied = [r for r in api.writes("ResourceQuota") if r.method == "PATCH"]
    assert [(r.body["metadata"]["namespace"], r.body["spec"]["hard"]) for r in applied] == [
        ("team-a", {"requests.nvidia.com/gpu": "6"})
    ]
    assert applied[0].query == {"fieldManager": "foresail", "force": "true"}
    assert [r.path for r in api.writes("ResourceQuota") if r.method == "DELETE"] == [
        "/api/v1/namespaces/gone/resourcequotas/foresail-tenant-gpus"
    ]
    status = api.get("Tenant", None, "a")["status"]  # type: ignore[index]
    assert (status["used"], status["namespaces"]) == (2, ["team-a"])
    assert {c["type"]: c["reason"] for c in status["conditions"]} == {"NamespaceConflict": "NoConflict", "Ready": "Arbitrated"}

    before = len(api.writes())
    arbiter, arb, pods = _arbitrate(kube, kube.list("Tenant"))
    arbiter.write(arb, pods, kube.list("ResourceQuota", None, "foresail.dev/tenant"), kube.list("Tenant"), NOW + 5)
    assert api.writes()[before:] == [], "nothing changed: nothing written"


def test_an_invalid_tenant_is_ignored_not_fatal(api: FakeApiServer) -> None:
    bad = tenant("broken", [], limit=4)  # owns nothing: invalid
    api.put(bad)
    _, arb, _ = _arbitrate(api.kube(), [bad])
    assert arb.tenants == ()
    assert arb.grant("team-a", "web") is None
