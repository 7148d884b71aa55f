"""The tenant glue against a fake apiserver: what it writes, and that it writes only changes."""

from __future__ import annotations

from typing import Any

from foresail.api.inferenceservice import InferenceService
from foresail.clients.kube import Kube
from foresail.controllers.tenants import TenantArbiter
from foresail.quota.snapshot import Arbitration
from tests.controllers.objects import NOW, isvc, namespace, node, pod, tenant
from tests.fakes.apiserver import FakeApiServer


def _arbitrate(
    kube: Kube, tenants: list[dict[str, Any]], namespaces: list[str] | None = None, default: str | None = None
) -> tuple[TenantArbiter, Arbitration, list[dict[str, Any]]]:
    svc = InferenceService.model_validate(isvc("web", "team-a"))
    pods = [pod("web", "team-a", i) for i in range(2)]
    arbiter = TenantArbiter(kube, batch_min_runtime_s=300, default_tenant=default)
    ns_bodies = kube.list("Namespace") if namespaces is None else [namespace(n) for n in namespaces]
    arb = arbiter.arbitrate([svc], pods, [node("n1", 8)], tenants, ns_bodies, {("team-a", "web"): 3}, NOW)
    return arbiter, arb, pods


def _quota(ns: str, tenant: str, hard: int, used: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "foresail-tenant-gpus", "namespace": ns, "labels": {"foresail.dev/tenant": tenant}},
        "spec": {"hard": {"requests.nvidia.com/gpu": str(hard)}},
        "status": {"used": {"requests.nvidia.com/gpu": str(used)}},
    }


def _pass(api: FakeApiServer, default: str | None = None) -> None:
    kube = api.kube()
    arbiter, arb, pods = _arbitrate(kube, kube.list("Tenant"), default=default)
    arbiter.write(arb, pods, kube.list("ResourceQuota", None, "foresail.dev/tenant"), kube.list("Tenant"), NOW)


def test_writes_labels_the_quota_backstop_and_the_tenant_status_then_nothing_when_unchanged(api: FakeApiServer) -> None:
    api.put(tenant("a", ["team-a"], limit=6), _quota("gone", "a", 1), namespace("team-a"), namespace("other"))
    api.put({**namespace("gone"), "metadata": {"name": "gone", "labels": {"foresail.dev/tenant": "a"}}})
    kube = api.kube()
    arbiter, arb, pods = _arbitrate(kube, kube.list("Tenant"))
    assert arb.grant("team-a", "web") is not None and arb.grant("team-a", "web").units == 3  # type: ignore[union-attr]
    arbiter.write(arb, pods, kube.list("ResourceQuota", None, "foresail.dev/tenant"), kube.list("Tenant"), NOW)

    assert {r.path.rsplit("/", 1)[1]: r.body["metadata"]["labels"] for r in api.writes("Namespace")} == {
        "team-a": {"foresail.dev/tenant": "a"},
        "gone": {"foresail.dev/tenant": None},
    }, "owned namespaces labelled, the label removed where no tenant owns the namespace any more"
    created, grown = [r for r in api.writes("ResourceQuota") if r.method in ("POST", "PATCH")]
    assert (created.method, created.body["spec"]["hard"]) == ("POST", {"requests.nvidia.com/gpu": "0"})
    assert (grown.path, grown.body["spec"]["hard"]) == (
        "/api/v1/namespaces/team-a/resourcequotas/foresail-tenant-gpus",
        {"requests.nvidia.com/gpu": "6"},
    )
    assert [r.path for r in api.writes("ResourceQuota") if r.method == "DELETE"] == [
        "/api/v1/namespaces/gone/resourcequotas/foresail-tenant-gpus"
    ]
    status = api.get("Tenant", None, "a")["status"]  # type: ignore[index]
    assert (status["used"], status["namespaces"]) == (2, ["team-a"])
    assert {c["type"]: c["reason"] for c in status["conditions"]} == {"NamespaceConflict": "NoConflict", "Ready": "Arbitrated"}

    before = len(api.writes())
    _pass(api)
    assert api.writes()[before:] == [], "nothing changed: nothing written"


def test_the_split_shrinks_before_it_grows_and_a_conflict_stops_the_grows(api: FakeApiServer) -> None:
    """Two namespaces of one tenant: n1 holds 2 of an old quota of 6, n2 had 0; the split gives n2 room."""
    api.put(tenant("a", ["team-a", "team-b"], limit=6), namespace("team-a"), namespace("team-b"))
    api.put(_quota("team-a", "a", 6, used=2), _quota("team-b", "a", 0))
    _pass(api)
    writes = [(r.path.split("/")[4], r.body["spec"]["hard"]["requests.nvidia.com/gpu"]) for r in api.writes("ResourceQuota")]
    # team-a: its service's grant of 3 (it holds 2), then the rest (3) split evenly, the odd GPU to the first name
    assert writes == [("team-a", "5"), ("team-b", "1")], "the shrink first, then the grow"
    assert api.writes("ResourceQuota")[0].body["metadata"]["resourceVersion"], "shrinks hold the version they read"

    # a pod admitted in team-a after the list: the shrink conflicts, and team-b must not grow
    api.put(_quota("team-a", "a", 6, used=2), _quota("team-b", "a", 0))
    kube = api.kube()
    arbiter, arb, pods = _arbitrate(kube, kube.list("Tenant"))
    listed = kube.list("ResourceQuota", None, "foresail.dev/tenant")
    api.put(_quota("team-a", "a", 6, used=3))  # a new resourceVersion
    before = len(api.writes("ResourceQuota"))
    arbiter.write(arb, pods, listed, kube.list("Tenant"), NOW)
    assert [(r.method, r.path.split("/")[4]) for r in api.writes("ResourceQuota")[before:]] == [
        ("PATCH", "team-a")
    ], "the conflicting shrink, and no grow"
    assert api.get("ResourceQuota", "team-b", "foresail-tenant-gpus")["spec"]["hard"]["requests.nvidia.com/gpu"] == "0"  # type: ignore[index]


def test_open_mode_the_default_tenant_owns_the_rest(api: FakeApiServer) -> None:
    api.put(
        tenant("a", ["team-a"], limit=6),
        {**tenant("default", [], limit=2), "spec": {"namespaceSelector": {"matchLabels": {"foresail.dev/tenant": "default"}}, "gpus": [{"limit": 2}]}},
        namespace("team-a"),
        namespace("scratch"),
    )
    _pass(api, default="default")
    labels = {r.path.rsplit("/", 1)[1]: r.body["metadata"]["labels"]["foresail.dev/tenant"] for r in api.writes("Namespace")}
    assert labels == {"team-a": "a", "scratch": "default"}
    quotas = {q["metadata"]["namespace"]: q["spec"]["hard"]["requests.nvidia.com/gpu"] for q in api.kube().list("ResourceQuota")}
    assert quotas == {"team-a": "6", "scratch": "2"}


def test_an_invalid_tenant_is_ignored_not_fatal(api: FakeApiServer) -> None:
    bad = tenant("broken", [], limit=4)  # owns nothing: invalid
    api.put(bad)
    _, arb, _ = _arbitrate(api.kube(), [bad])
    assert arb.tenants == ()
    assert arb.grant("team-a", "web") is None
