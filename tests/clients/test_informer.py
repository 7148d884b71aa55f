"""The watch-fed caches against the fake apiserver over HTTP: sync, events, 410 Gone, filters, the cached client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from foresail.clients.caches import LIVE_PODS, CachedKube, Caches, holds
from foresail.clients.informer import Informer, matches, slim_gpu_pod, slim_node
from foresail.clients.kube import REQUESTS, request_kind
from tests.controllers.objects import deployment, node, pod
from tests.fakes.apiserver import FakeApiServer


def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def other_pod(name: str, ns: str = "batch", gpus: int = 1, phase: str = "Running") -> dict[str, Any]:
    res = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "train"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x", "env": [{"name": "A", "value": "1"}], "resources": res}]},
        "status": {"phase": phase, "podIP": "10.0.0.9"},
    }


@pytest.fixture
def started() -> Iterator[list[Informer]]:
    informers: list[Informer] = []
    yield informers
    for i in informers:
        i.stop()


def informer(api: FakeApiServer, started: list[Informer], kind: str = "Pod", labels: str | None = None, **kw: Any) -> Informer:
    i = Informer(api.kube(), kind, "v1", labels, watch_timeout_s=30, backoff=(0.05, 0.1), **kw)
    started.append(i)
    i.start()
    assert i.wait_synced(10)
    return i


def names(i: Informer) -> set[str]:
    return {o["metadata"]["name"] for o in i.list()}


def test_initial_sync_then_added_modified_deleted(api: FakeApiServer, started: list[Informer]) -> None:
    api.put(pod("resnet", "team-a", 0), pod("resnet", "team-a", 1))
    seen: list[tuple[str, str]] = []
    i = informer(api, started, labels="foresail.dev/inferenceservice")
    i.add_handler(lambda t, o: seen.append((t, o["metadata"]["name"])))
    assert names(i) == {"resnet-0", "resnet-1"} and i.resource_version == str(api._rv)
    assert i.get("team-a", "resnet-0")["kind"] == "Pod"  # type: ignore[index]  # list items get their kind back
    api.put(pod("resnet", "team-a", 2))
    moved = pod("resnet", "team-a", 0)
    moved["status"]["phase"] = "Failed"
    api.put(moved)
    api.delete("Pod", "team-a", "resnet-1")
    until(lambda: names(i) == {"resnet-0", "resnet-2"} and i.get("team-a", "resnet-0")["status"]["phase"] == "Failed")  # type: ignore[index]
    assert seen == [("ADDED", "resnet-2"), ("MODIFIED", "resnet-0"), ("DELETED", "resnet-1")]
    assert [v for v, _ in api.counted()] == ["LIST", "WATCH"], "one list, then one watch carries every change"
    h = i.health()
    assert h.synced and h.objects == 2 and h.relists == 0 and h.last_event_age_s is not None and h.last_event_age_s < 5


def test_label_filter_keeps_only_selected_objects_and_drops_those_leaving_it(api: FakeApiServer, started: list[Informer]) -> None:
    api.put(pod("resnet", "team-a", 0), other_pod("train-0"))
    i = informer(api, started, labels="foresail.dev/inferenceservice")
    assert names(i) == {"resnet-0"}
    relabelled = pod("resnet", "team-a", 0)
    relabelled["metadata"]["labels"] = {"app": "stolen"}
    api.put(relabelled, other_pod("train-1"))
    until(lambda: names(i) == set())  # leaving the selector is a DELETED event
    api.put(pod("resnet", "team-a", 0))
    until(lambda: names(i) == {"resnet-0"})


def test_gone_410_relists_and_reports_what_vanished_meanwhile(api: FakeApiServer, started: list[Informer]) -> None:
    api.bookmark_s = None  # no bookmarks: the informer's version falls behind while other kinds change
    api.put(pod("resnet", "team-a", 0), pod("resnet", "team-a", 1))
    seen: list[tuple[str, str]] = []
    i = informer(api, started, labels="foresail.dev/inferenceservice")
    i.add_handler(lambda t, o: seen.append((t, o["metadata"]["name"])))
    until(lambda: [v for v, _ in api.counted()] == ["LIST", "WATCH"])
    api.watch_refused = 503  # a partition: watches fail, the informer backs off
    api.break_watches()
    until(lambda: api.counted()[-1][0] == "WATCH" and len(api.counted()) >= 3)
    api.delete("Pod", "team-a", "resnet-1")
    api.put(pod("resnet", "team-a", 5), node("n1"))
    api.compact()  # the versions the informer knows are gone
    api.watch_refused = None
    # the relist replaces the store before its watch is sent: wait for both, never for one alone
    until(lambda: names(i) == {"resnet-0", "resnet-5"} and api.counted()[-1][0] == "WATCH")
    verbs = [v for v, _ in api.counted()]
    assert verbs.count("LIST") == 2, verbs
    assert ("DELETED", "resnet-1") in seen and ("ADDED", "resnet-5") in seen
    assert i.health().relists == 1 and i.health().errors >= 1
    api.put(pod("resnet", "team-a", 6))  # and it watches again from the relist's version
    until(lambda: "resnet-6" in names(i))


def test_bookmarks_keep_a_quiet_informer_resumable_after_compaction(api: FakeApiServer, started: list[Informer]) -> None:
    api.bookmark_s = 0.05
    api.put(pod("resnet", "team-a", 0))
    i = informer(api, started, labels="foresail.dev/inferenceservice")
    api.put(node("n1"), node("n2"))  # another kind moves the version on
    until(lambda: i.resource_version == str(api._rv))  # a bookmark told it
    api.compact()
    api.break_watches()
    api.put(pod("resnet", "team-a", 1))
    until(lambda: "resnet-1" in names(i))
    assert [v for v, _ in api.counted()].count("LIST") == 1, "resumed from the bookmark's version: no relist"


def test_transforms_keep_only_what_the_gpu_supply_reads(api: FakeApiServer, started: list[Informer]) -> None:
    api.put(other_pod("train-0"), other_pod("cpu-0", gpus=0), other_pod("done-0", phase="Succeeded"), pod("resnet", "team-a", 0))
    i = informer(api, started, labels="!foresail.dev/inferenceservice", field_selector=LIVE_PODS, transform=slim_gpu_pod)
    assert names(i) == {"train-0"}
    (kept,) = i.list()
    assert kept["spec"] == {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}], "nodeName": "n1"}
    assert kept["status"] == {"phase": "Running"}
    big = node("n1")
    big["status"]["images"] = [{"names": ["x"] * 10}]
    big["status"]["conditions"].append({"type": "MemoryPressure", "status": "False"})
    assert slim_node(big)["status"] == {"allocatable": {"nvidia.com/gpu": "8"}, "conditions": [{"type": "Ready", "status": "True"}]}


@pytest.mark.parametrize(
    ("labels", "selector", "want"),
    [
        ({"a": "1"}, "a", True),
        ({"a": "1"}, "!a", False),
        ({}, "!a", True),
        ({"a": "1"}, "a=1,b", False),
        ({"a": "1"}, "a!=2", True),
        ({"a": "1"}, "a==1", True),
        ({}, "", True),
    ],
)
def test_label_selector_terms(labels: dict[str, str], selector: str, want: bool) -> None:
    assert matches(labels, selector) is want


def test_request_kinds_and_the_process_counter() -> None:
    assert request_kind("GET", "/api/v1/pods") == ("pods", "LIST")
    assert request_kind("GET", "/api/v1/namespaces/a/pods/p") == ("pods", "GET")
    assert request_kind("PATCH", "/apis/apps/v1/namespaces/a/deployments/d/scale") == ("deployments/scale", "PATCH")
    assert request_kind("PATCH", "/apis/foresail.dev/v1alpha1/namespaces/a/inferenceservices/r/status") == ("inferenceservices/status", "PATCH")
    assert request_kind("GET", "/api/v1/nodes") == ("nodes", "LIST")
    before = REQUESTS.snapshot().get(("nodes", "LIST"), 0)
    REQUESTS.add("nodes", "LIST")
    assert REQUESTS.snapshot()[("nodes", "LIST")] == before + 1


_T = {"name": "t", "image": "x", "terminationMessagePath": "/dev"}
_LIVE = {"spec": {"replicas": 3, "template": {"spec": {"containers": [_T]}}}}


def _containers(*containers: dict[str, object]) -> dict[str, object]:
    return {"spec": {"template": {"spec": {"containers": list(containers)}}}}


@pytest.mark.parametrize(
    ("live", "rendered", "expect"),
    [
        pytest.param(_LIVE, _containers({"name": "t", "image": "x"}), True, id="fields the server defaulted are ignored"),
        pytest.param(_LIVE, _containers({"name": "t", "image": "y"}), False, id="a changed value"),
        pytest.param(_LIVE, _containers(), False, id="a list of another length is a change"),
        pytest.param(_LIVE, _containers({"name": "t", "image": "x", "env": []}), True,
                     id="an empty list the apiserver dropped (env: [] is stored as no env)"),
        pytest.param(_LIVE, _containers({"name": "t", "image": "x", "resources": {}}), True, id="an empty map it dropped"),
        pytest.param(_containers({"name": "t", "image": "x", "env": [{"name": "A", "value": "1"}]}),
                     _containers({"name": "t", "image": "x", "env": []}), False, id="an empty list against a full one"),
        pytest.param(_LIVE, _containers({"name": "t", "image": "x", "env": [{"name": "A", "value": "1"}]}), False,
                     id="a missing non-empty list"),
        pytest.param({"port": "8000"}, {"port": 8000}, True, id="a quantity rendered as a number, stored as a string"),
        pytest.param({"flag": "true"}, {"flag": True}, False, id="a boolean is not a string"),
    ],
)  # fmt: skip
def test_holds_compares_only_rendered_fields(live: dict[str, object], rendered: dict[str, object], expect: bool) -> None:
    assert holds(live, rendered) is expect


def test_cached_client_reads_from_the_caches_and_asks_the_apiserver_for_the_rest(api: FakeApiServer) -> None:
    api.put(deployment(), pod("resnet", "team-a", 0), other_pod("train-0"), other_pod("cpu-0", gpus=0), node("n1"))
    user = deployment("mine")
    user["metadata"]["labels"] = {"app": "mine"}
    api.put(user)
    caches = Caches.for_operator(api.kube(), watch_timeout_s=30).start()
    try:
        assert caches.wait_synced(10)
        kube = CachedKube(api.kube(), caches)
        n = len(api.requests)
        assert {p["metadata"]["name"] for p in kube.list("Pod", None, None, LIVE_PODS)} == {"resnet-0", "train-0"}
        assert [p["metadata"]["name"] for p in kube.list("Pod", "team-a", "foresail.dev/inferenceservice=resnet")] == ["resnet-0"]
        assert [d["metadata"]["name"] for d in kube.list("Deployment", None, "app.kubernetes.io/managed-by=foresail")] == ["resnet"]
        assert kube.get("Deployment", "team-a", "resnet") is not None and kube.list("Node")[0]["metadata"]["name"] == "n1"
        assert len(api.requests) == n, "all of it from the caches"
        assert kube.get("Deployment", "team-a", "mine") is not None, "outside the filter: asked of the apiserver"
        kube.list("Pod")  # every pod, finished and CPU-only ones included: not what the caches hold
        assert [v for v, _ in api.counted(n) if v != "WATCH"] == ["GET", "LIST"]
        health = {(h.kind, h.selector): h.synced for h in caches.health()}
        assert len(health) == 11 and all(health.values())
    finally:
        caches.stop()


def test_cached_apply_skips_what_would_change_nothing(api: FakeApiServer) -> None:
    caches = Caches.for_operator(api.kube(), watch_timeout_s=30).start()
    try:
        assert caches.wait_synced(10)
        kube = CachedKube(api.kube(), caches)
        svc: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "resnet", "namespace": "team-a", "labels": {"app.kubernetes.io/managed-by": "foresail"}},
            "spec": {"ports": [{"name": "http", "port": 8000}]},
        }
        kube.apply(svc)
        until(lambda: caches.get("Service", "team-a", "resnet") is not None)
        kube.apply(svc)
        assert len(api.writes("Service")) == 1 and kube.skipped_applies == 1
        drifted = api.get("Service", "team-a", "resnet")
        assert drifted is not None
        drifted["spec"]["ports"][0]["port"] = 9000  # someone changed a field it renders
        api.put(drifted)
        until(lambda: caches.get("Service", "team-a", "resnet")["spec"]["ports"][0]["port"] == 9000)  # type: ignore[index]
        kube.apply(svc)
        assert len(api.writes("Service")) == 2, "drift is repaired"
        svc["metadata"]["labels"] = {}  # a label no longer rendered: only an apply removes it
        kube.apply(svc)
        assert len(api.writes("Service")) == 3
    finally:
        caches.stop()
