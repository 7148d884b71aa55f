"""The loops on watch-fed caches (``clients.caches``), against the fake apiserver: what a pass costs it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable

import pytest

from foresail.clients.caches import SKIPPED_APPLIES, CachedKube, Caches
from foresail.clients.prometheus import PromClient
from foresail.controllers import coalesce, telemetry
from foresail.controllers.autoscaler import Autoscaler
from foresail.controllers.coalesce import Coalescer
from foresail.controllers.inferenceservice import reconcile_owner
from foresail.scaling.status_throttle import Throttle
from tests.controllers.objects import NOW, deployment, isvc, namespace, node, pod, tenant
from tests.controllers.test_autoscaler import service, signals
from tests.fakes.apiserver import FakeApiServer


async def until(cond: Callable[[], bool], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def caches(api: FakeApiServer) -> AsyncIterator[Caches]:
    c = Caches.for_operator(api.kube(), watch_timeout_s=60)
    yield c
    c.stop()


async def caught_up(api: FakeApiServer, caches: Caches) -> None:
    """Every informer has seen the apiserver's latest version (an event or a bookmark)."""
    await until(lambda: all(i.resource_version == str(api._rv) for i in caches.informers))


def requests_since(api: FakeApiServer, n: int) -> list[tuple[str, str]]:
    return [(v, p) for v, p in api.counted(n) if v != "WATCH"]


async def test_a_pass_that_changes_nothing_makes_no_apiserver_request(api: FakeApiServer, caches: Caches) -> None:
    api.put(service(), deployment(replicas=1), pod("resnet", "team-a", 0), node("n1"), namespace("team-a"), tenant("team-a", ["team-a"], 4))
    caches.start()
    assert await asyncio.to_thread(caches.wait_synced, 10)
    prom = PromClient("http://prom", transport=signals(30.0))
    a = Autoscaler(CachedKube(api.kube(), caches), prom, loop_seconds=2, throttle=Throttle(refresh_s=1.0))
    try:
        n = len(api.requests)
        await a.run_once(NOW)  # scales 1 -> 3, writes status, the tenant's status and quota
        first = requests_since(api, n)
        assert not [r for r in first if r[0] in ("LIST", "GET")], f"the first pass reads nothing: {first}"
        assert ("PATCH", "/apis/apps/v1/namespaces/team-a/deployments/resnet/scale") in first
        await caught_up(api, caches)

        n = len(api.requests)
        await a.run_once(NOW + 0.1)  # nothing due
        assert requests_since(api, n) == [], "a pass with nothing due costs the apiserver nothing"

        a.services[("team-a", "resnet")].next_due = 0.0
        await a.run_once(NOW + 0.2)  # due, the same demand: the same replicas; only the decision's state is new
        assert requests_since(api, n) == [], "no read, no scale, no status write: only the decision state moved (throttled)"

        n = len(api.requests)
        a.services[("team-a", "resnet")].next_due = 0.0
        await a.run_once(NOW + 1.2)  # the throttle's refresh interval has passed
        isvc_status = "/apis/foresail.dev/v1alpha1/namespaces/team-a/inferenceservices/resnet/status"
        assert requests_since(api, n) == [("PATCH", isvc_status)], "no read, no scale: the persisted scalingState moved on"
    finally:
        await a.close()
        await prom.close()


async def test_before_the_caches_sync_the_pass_lists_from_the_apiserver(api: FakeApiServer, caches: Caches) -> None:
    api.put(service(), deployment(replicas=1), pod("resnet", "team-a", 0), node("n1"))
    a = Autoscaler(CachedKube(api.kube(), caches), None, loop_seconds=2)  # caches not started
    try:
        await a.run_once(NOW)
    finally:
        await a.close()
    assert sum(1 for v, _ in api.counted() if v == "LIST") == 8


CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "models", "namespace": "team-a"}, "data": {}}


async def test_a_reconcile_with_nothing_to_change_applies_nothing(api: FakeApiServer, caches: Caches) -> None:
    api.put(isvc(scaling__minReplicas=2), CONFIGMAP)
    caches.start()
    assert await asyncio.to_thread(caches.wait_synced, 10)
    kube = CachedKube(api.kube(), caches)
    await asyncio.to_thread(reconcile_owner, kube, "team-a", "resnet")  # creates the children
    assert len([r for r in api.writes() if r.content_type == "application/apply-patch+yaml" and r.sub == ""]) == 3
    await caught_up(api, caches)
    # the first reconcile's status may come from a cache that had not yet shown its own writes (the Deployment
    # at 1 replica, not yet scaled to minReplicas 2): the next one corrects it, as a Deployment event would
    await asyncio.to_thread(reconcile_owner, kube, "team-a", "resnet")
    await caught_up(api, caches)
    n, skipped = len(api.requests), kube.skipped_applies
    await asyncio.to_thread(reconcile_owner, kube, "team-a", "resnet")
    # converged: the children, the service and its pods from the caches, no write; the repository's ConfigMap
    # is not cached
    assert requests_since(api, n) == [("GET", "/api/v1/namespaces/team-a/configmaps/models")]
    assert kube.skipped_applies - skipped == 3


async def test_a_restarted_operator_applies_nothing_to_a_converged_service(api: FakeApiServer, caches: Caches) -> None:
    """A new process (restart, failover) has no memory of its applies: the children's rendered digest
    (``render.meta.stamp``) tells it what is live is what it renders."""
    api.put(isvc(scaling__minReplicas=1), CONFIGMAP)
    caches.start()
    assert await asyncio.to_thread(caches.wait_synced, 10)
    await asyncio.to_thread(reconcile_owner, CachedKube(api.kube(), caches), "team-a", "resnet")  # creates the children
    await caught_up(api, caches)
    restarted = CachedKube(api.kube(), caches)  # a fresh memo of applies
    n, before = len(api.requests), SKIPPED_APPLIES.snapshot()
    await asyncio.to_thread(reconcile_owner, restarted, "team-a", "resnet")
    assert not [r for r in requests_since(api, n) if r[0] == "PATCH"], requests_since(api, n)
    assert restarted.skipped_applies == 3
    after = SKIPPED_APPLIES.snapshot()  # the operator's foresail_applies_skipped_total{resource}
    grew = {r: after[(r, v)] - before.get((r, v), 0) for r, v in after}
    assert grew == {**{r: 0 for r in grew}, "deployments": 1, "services": 1, "poddisruptionbudgets": 1}
    dep = api.get("Deployment", "team-a", "resnet")
    assert dep is not None
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "drifted:1"  # a field it owns, changed by hand
    api.put(dep)
    await caught_up(api, caches)
    again = CachedKube(api.kube(), caches)
    await asyncio.to_thread(reconcile_owner, again, "team-a", "resnet")
    assert again.skipped_applies == 2, "the drifted Deployment is applied again, the others are not"


async def test_a_burst_of_child_events_is_one_reconcile(api: FakeApiServer, caches: Caches) -> None:
    api.put(isvc(scaling__minReplicas=1), CONFIGMAP)
    caches.start()
    assert await asyncio.to_thread(caches.wait_synced, 10)
    kube = CachedKube(api.kube(), caches)
    runs: list[Hashable] = []

    def work(key: Hashable) -> None:
        runs.append(key)
        reconcile_owner(kube, *key)  # type: ignore[misc]

    c = Coalescer(work, delay_s=0.2, workers=2).start()
    coalesce.configure(c)
    try:
        for _ in range(20):  # e.g. a Deployment's status moving once per replica
            coalesce.mark(("team-a", "resnet"), lambda: pytest.fail("the coalescer reconciles, not the event"))
        await until(lambda: c.ran == 1 and c.pending() == 0)
        assert runs == [("team-a", "resnet")] and c.marked == 20
    finally:
        coalesce.configure(None)
        c.stop()


def test_a_mark_during_its_reconcile_runs_it_once_more_never_twice_at_once() -> None:
    started, release = threading.Event(), threading.Event()
    running, most, runs = [0], [0], list[str]()
    lock = threading.Lock()

    def work(key: Hashable) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        runs.append(str(key))
        started.set()
        release.wait(5)
        with lock:
            running[0] -= 1

    c = Coalescer(work, delay_s=0.0, workers=4).start()
    try:
        c.mark("a")
        assert started.wait(5)
        for _ in range(5):
            c.mark("a")  # while it runs: once more afterwards
        c.mark("b")
        release.set()
        deadline = time.monotonic() + 5
        while c.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(runs) == ["a", "a", "b"] and c.pending() == 0
    finally:
        c.stop()


async def test_metrics_count_requests_by_resource_and_verb_and_say_how_the_caches_are(api: FakeApiServer, caches: Caches) -> None:
    api.put(node("n1"))
    caches.start()
    assert await asyncio.to_thread(caches.wait_synced, 10)
    telemetry.watch_caches(caches.health)
    try:
        text = telemetry.render().decode()
        assert 'foresail_apiserver_requests_total{resource="nodes",verb="LIST"}' in text
        assert 'foresail_cache_synced{kind="Node",selector=""} 1.0' in text
        assert 'foresail_cache_objects{kind="Node",selector=""} 1.0' in text
        assert 'foresail_cache_synced{kind="Pod",selector="!foresail.dev/inferenceservice,status.phase!=Succeeded,status.phase!=Failed"} 1.0' in text
    finally:
        telemetry._CACHES.sources.remove(caches.health)
