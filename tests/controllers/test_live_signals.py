"""The live signals' IO glue against httpx.MockTransport: one Prometheus read per pass (the span asked for
follows the passes), errors that hit every service, and the direct source with its per-service fallback."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from foresail.clients.prometheus import PromClient
from foresail.clients.replica_metrics import ReplicaMetrics
from foresail.controllers import live_signals
from foresail.controllers.live_signals import LiveSignals, ServiceView, SourceMode
from foresail.scaling.counters import ServingPod
from foresail.scaling.signals import MetricsSource
from tests.fakes.counters import steady
from tests.fakes.prometheus import answer, matrix
from tests.fakes.triton import metrics_text

KEY = ("team-a", "resnet")
PODS = [ServingPod("a", 0.0, "10.0.0.1"), ServingPod("b", 0.0, "10.0.0.2")]
VIEWS = {KEY: ServiceView("resnet", PODS)}


def prometheus(now: float, seen: list[httpx.Request] | None = None, status: int = 200) -> PromClient:
    samples = {("team-a", "resnet", p.name): steady(now - 75, now - 1, 10) for p in PODS}
    raw = None if status == 200 else "boom"
    return PromClient("http://prom", transport=answer(matrix(samples), status=status, raw=raw, seen=seen))


def replicas(down: set[str]) -> ReplicaMetrics:
    served: dict[str, int] = {}

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.host in down:
            raise httpx.ConnectError("connection refused")
        n = served[req.url.host] = served.get(req.url.host, 0) + 1
        return httpx.Response(200, text=metrics_text("resnet", success=10 * n, request_us=200_000 * n))

    return ReplicaMetrics(transport=httpx.MockTransport(handler))


def run(live: LiveSignals, fn: Any) -> Any:
    async def go() -> Any:
        try:
            return await fn()
        finally:
            await live.close()
            if live.prom is not None:
                await live.prom.close()

    return asyncio.run(go())


def test_one_read_per_pass_covering_the_time_since_the_last() -> None:
    now = time.time()
    seen: list[httpx.Request] = []
    mono = [100.0]
    live = LiveSignals(prometheus(now, seen), mono=lambda: mono[0])

    async def passes() -> Any:
        first, errs = await live.read(now, VIEWS)
        mono[0] += 2  # the span follows the monotonic clock
        await live.read(now - 600, VIEWS)  # the wall clock stepped back: still 2 s since the last read
        return first, errs

    first, errs = run(live, passes)
    assert errs == []
    sig = first[KEY]
    assert sig.ok and sig.source == MetricsSource.PROMETHEUS and sig.fleet.window(10).arrival_rps == pytest.approx(20.0)
    spans = [r.url.params["query"].rsplit("[", 1)[1] for r in seen]
    first_read = ["18s] offset 57s", "18s] offset 42s", "18s] offset 27s", "18s] offset 12s", "15s]"]
    assert spans == [*first_read, "5s]"], "first the history in slices, oldest first, then 2 s + a margin"


def test_a_sliced_first_read_gives_the_signals_one_read_would() -> None:
    """The first read (75 s of every replica's samples) comes in 15 s slices, oldest first, each
    overlapping the next: the rings get every sample once and in order, as from one query."""
    now = 1_000.0
    samples = {("team-a", "resnet", p.name): steady(now - 75, now - 1, 10 + 5 * i) for i, p in enumerate(PODS)}
    seen: list[httpx.Request] = []
    sliced = LiveSignals(PromClient("http://prom", transport=answer(matrix(samples), seen=seen, at=now)), wall=lambda: now)
    whole = LiveSignals(PromClient("http://prom", transport=answer(matrix(samples))), wall=lambda: now)
    a, errs = run(sliced, lambda: sliced.read(now, VIEWS))
    b, _ = run(whole, lambda: whole.read(now, VIEWS))
    assert errs == [] and len(seen) == 5
    assert a[KEY].fleet is not None and b[KEY].fleet is not None
    for w in (2, 10, 60):
        assert a[KEY].fleet.window(w) == b[KEY].fleet.window(w)
    assert a[KEY].fleet.window(60).arrival_rps == pytest.approx(25.0)  # 10 + 15 rps


def test_a_fleet_over_the_per_query_budget_is_read_by_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_signals, "REPLICA_SECONDS_PER_QUERY", 5 * 8)  # 5 replicas of a pass's 8 s
    now = 1_000.0
    views = {("team-a", "resnet"): VIEWS[KEY], ("team-b", "resnet"): VIEWS[KEY]}
    samples = {(ns, name, p.name): steady(now - 75, now - 1, 10) for ns, name in views for p in PODS}
    seen: list[httpx.Request] = []
    mono = [100.0]
    prom = PromClient("http://prom", transport=answer(matrix(samples), seen=seen, at=now))
    live = LiveSignals(prom, wall=lambda: now, mono=lambda: mono[0])

    async def two_passes() -> Any:
        await live.read(now, views)
        seen.clear()
        mono[0] += 5
        return await live.read(now, views)

    out, errs = run(live, two_passes)
    assert errs == [] and all(out[k].ok for k in views)
    queries = [r.url.params["query"] for r in seen]
    assert len(queries) == 2 and 'namespace="team-a"' in queries[0] and 'namespace="team-b"' in queries[1], queries


def test_without_prometheus_or_when_it_fails_every_service_holds() -> None:
    none = LiveSignals(None)
    assert run(none, lambda: none.read(1.0, VIEWS)) == ({}, ["no Prometheus URL configured (FORESAIL_PROMETHEUS_URL)"])
    failing = LiveSignals(prometheus(1.0, status=500))
    out, errs = run(failing, lambda: failing.read(1.0, VIEWS))
    assert out == {} and errs == ["Prometheus: query failed: HTTP 500: boom"]


def test_direct_reads_when_every_replica_answers() -> None:
    now = time.time()
    live = LiveSignals(prometheus(now), mode=SourceMode.DIRECT, direct=replicas(down=set()))

    async def go() -> Any:
        await live.read(now, VIEWS)  # learns the replicas to read
        for _ in range(3):
            await live.read_direct()
            await asyncio.sleep(0.05)
        out, _ = await live.read(time.time(), VIEWS)
        return out[KEY]

    sig = run(live, go)
    assert sig.ok and sig.source == MetricsSource.DIRECT and sig.note == ""
    assert sig.fleet.window(2).mean_latency_ms == pytest.approx(20.0)


def test_a_replica_that_does_not_answer_sends_its_service_back_to_prometheus() -> None:
    now = time.time()
    live = LiveSignals(prometheus(now), mode=SourceMode.DIRECT, direct=replicas(down={"10.0.0.2"}))

    async def go() -> Any:
        await live.read(now, VIEWS)
        await live.read_direct()
        out, _ = await live.read(now, VIEWS)
        return out[KEY]

    sig = run(live, go)
    assert sig.ok and sig.source == MetricsSource.PROMETHEUS
    assert sig.note == "direct reads incomplete (b: ConnectError: connection refused); Prometheus used"


def test_a_service_that_is_gone_is_forgotten() -> None:
    now = time.time()
    live = LiveSignals(prometheus(now), mode=SourceMode.DIRECT, direct=replicas(down=set()))

    async def go() -> Any:
        await live.read(now, VIEWS)
        await live.read(now + 2, {})
        return set(live.from_prom) | set(live.from_direct)

    assert run(live, go) == set()


PROM_NOW = 2_000_000_000.0  # Prometheus' clock at the read


@pytest.mark.parametrize(
    ("skew", "newest_age", "date", "stale"),
    [
        pytest.param(0.0, 1.0, True, False, id="same clocks: fresh"),
        pytest.param(3600.0, 1.0, True, False, id="operator 1 h ahead: fresh"),
        pytest.param(-3600.0, 1.0, True, False, id="operator 1 h behind: fresh"),
        pytest.param(3600.0, 30.0, True, True, id="operator 1 h ahead: stale"),
        pytest.param(-3600.0, 30.0, True, True, id="operator 1 h behind: stale"),
        pytest.param(0.0, 1.0, False, False, id="no Date header: the operator's clock, as before"),
    ],
)
def test_prometheus_freshness_follows_its_date_header(skew: float, newest_age: float, date: bool, stale: bool) -> None:
    wall = PROM_NOW + skew  # the operator's clock when Prometheus' is PROM_NOW
    samples = {("team-a", "resnet", p.name): steady(PROM_NOW - 75, PROM_NOW - newest_age, 10) for p in PODS}
    prom = PromClient("http://prom", transport=answer(matrix(samples), date=PROM_NOW if date else None), clock=lambda: wall)
    live = LiveSignals(prom, wall=lambda: wall)
    views = {KEY: ServiceView("resnet", [ServingPod(p.name, wall - 600, p.address) for p in PODS])}  # warm 10 min ago
    out, errs = run(live, lambda: live.read(wall, views))
    sig = out[KEY]
    assert errs == []
    if stale:
        assert not sig.ok and sig.errors == ("stale: newest sample 30s old",), sig.errors
    else:
        assert sig.ok, sig.errors
        assert sig.sample_age_s is not None and newest_age <= sig.sample_age_s <= newest_age + 1
        assert sig.p99_replicas == 2 and sig.fleet.window(10).arrival_rps == pytest.approx(20.0)


@pytest.mark.parametrize("step", [pytest.param(-5.0, id="5 s back"), pytest.param(-600.0, id="10 min back"), pytest.param(600.0, id="10 min forward")])
def test_direct_reads_go_on_across_a_step_of_the_wall_clock(step: float) -> None:
    clocks = {"wall": 1_700_000_000.0, "mono": 5_000.0}
    rate = {"rps": 10}
    count: dict[str, float] = {}

    def handler(req: httpx.Request) -> httpx.Response:
        n = count[req.url.host] = count.get(req.url.host, 0) + rate["rps"]  # one read a second
        return httpx.Response(200, text=metrics_text("resnet", success=n, request_us=20_000 * n))

    direct = ReplicaMetrics(transport=httpx.MockTransport(handler), clock=lambda: clocks["mono"])
    live = LiveSignals(prometheus(clocks["wall"]), mode=SourceMode.DIRECT, direct=direct, wall=lambda: clocks["wall"], mono=lambda: clocks["mono"])

    async def go() -> list[Any]:
        out = []
        await live.read(clocks["wall"], VIEWS)
        for k in range(30):
            clocks["wall"] += 1 + (step if k == 10 else 0.0)
            clocks["mono"] += 1
            rate["rps"] = 10 if k < 15 else 30  # a change after the step: a frozen store would miss it
            await live.read_direct()
            got, _ = await live.read(clocks["wall"], VIEWS)
            out.append(got[KEY])
        return out

    for k, sig in enumerate(run(live, go)):
        if k < 2:
            continue
        assert sig.ok and sig.source == MetricsSource.DIRECT, (k, sig.errors, sig.note)
        if k not in (15, 16):
            assert sig.fleet.window(2).arrival_rps == pytest.approx(20.0 if k < 15 else 60.0), k
