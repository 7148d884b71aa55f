"""The Prometheus client against httpx.MockTransport: every bad-result rule, named."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from foresail.clients.history import arrivals_from_prometheus, parse_since
from foresail.clients.prometheus import DEFAULT_QUERIES, PromClient
from tests.fakes.prometheus import answer
from tests.fakes.prometheus import series as fake_series

NOW = 1_000_000.0
KEY = ("team-a", "resnet")


def series(value: str, ns: str = "team-a", svc: str = "resnet", ts: float = NOW) -> dict[str, Any]:
    return fake_series(value, ns, svc, ts)


GOOD = {"arrival": [series("12.5")], "queue": [series("3")], "p99": [series("80")], "freshness": [series(str(NOW - 2))]}


def snap(transport: httpx.MockTransport) -> tuple[dict[Any, Any], list[str]]:
    async def go() -> tuple[dict[Any, Any], list[str]]:
        c = PromClient("http://prom", transport=transport)
        try:
            return await c.snapshot(NOW)
        finally:
            await c.close()

    return asyncio.run(go())


def test_good_results_join_per_service() -> None:
    out, errs = snap(answer(GOOD))
    assert errs == []
    m = out[KEY]
    assert m.ok
    assert (m.arrival_rps, m.queue, m.p99_ms, m.sample_age_s) == (12.5, 3.0, 80.0, 2.0)


@pytest.mark.parametrize(
    ("name", "override", "error"),
    [
        ("empty p99", {"p99": []}, "p99: no series"),
        ("NaN queue", {"queue": [series("NaN")]}, "queue: not a finite number"),
        ("+Inf p99", {"p99": [series("+Inf")]}, "p99: not a finite number"),
        ("multi-series arrival", {"arrival": [series("1"), series("2")]}, "arrival: multiple series (2)"),
        ("stale samples", {"freshness": [series(str(NOW - 120))]}, "stale: newest sample 120s old"),
    ],
)
def test_bad_results_are_errors(name: str, override: dict[str, Any], error: str) -> None:
    out, _ = snap(answer({**GOOD, **override}))
    m = out[KEY]
    assert not m.ok, name
    assert any(error in e for e in m.errors), (name, m.errors)


def test_nan_p99_without_traffic_means_no_pressure() -> None:
    out, _ = snap(answer({**GOOD, "arrival": [series("0")], "p99": [series("NaN")]}))
    assert out[KEY].ok
    assert out[KEY].p99_ms == 0.0


def test_nan_p99_with_traffic_is_an_error() -> None:
    out, _ = snap(answer({**GOOD, "p99": [series("NaN")]}))
    assert not out[KEY].ok


@pytest.mark.parametrize(
    ("name", "status", "raw"),
    [
        ("HTTP 500", 500, "boom"),
        ("not JSON", 200, "<html>"),
        ("error status", 200, json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"})),
    ],
)
def test_failed_queries_fail_every_service(name: str, status: int, raw: str) -> None:
    out, errs = snap(answer(GOOD, status=status, raw=raw))
    assert out == {}, name
    assert len(errs) == len(DEFAULT_QUERIES), errs


def test_a_slow_query_times_out_without_stalling_the_others() -> None:
    good = answer(GOOD)

    async def handler(req: httpx.Request) -> httpx.Response:
        if "quantile" in req.url.params["query"]:
            await asyncio.sleep(5)
        return await good.handle_async_request(req)

    async def go() -> tuple[dict[Any, Any], list[str], float]:
        c = PromClient("http://prom", timeout=0.2, transport=httpx.MockTransport(handler))
        t0 = asyncio.get_running_loop().time()
        try:
            out, errs = await c.snapshot(NOW)
        finally:
            await c.close()
        return out, errs, asyncio.get_running_loop().time() - t0

    out, errs, took = asyncio.run(go())
    assert took < 1.0
    assert any(e.startswith("p99:") for e in errs)
    assert out[KEY].arrival_rps == 12.5
    assert not out[KEY].ok


def test_one_query_per_metric_whatever_the_number_of_services() -> None:
    many = {k: [series(v[0]["value"][1], svc=f"s{i}") for i in range(200)] for k, v in GOOD.items()}

    async def go() -> int:
        c = PromClient("http://prom", transport=answer(many))
        try:
            out, _ = await c.snapshot(NOW)
            assert len(out) == 200
            return c.queries_run
        finally:
            await c.close()

    assert asyncio.run(go()) == len(DEFAULT_QUERIES)


def test_arrival_history_for_the_forecaster() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        assert req.url.path == "/api/v1/query_range"
        assert 'foresail_dev_inferenceservice="resnet", namespace="team-a"' in req.url.params["query"]
        body = {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "2"], [2, "NaN"], [3, "4"]]}]}}
        return httpx.Response(200, text=json.dumps(body))

    async def go() -> list[tuple[float, float]]:
        c = PromClient("http://prom", transport=httpx.MockTransport(handler))
        try:
            return await c.arrival_history("team-a", "resnet", 0, 3, 1)
        finally:
            await c.close()

    assert asyncio.run(go()) == [(1.0, 2.0), (3.0, 4.0)]


def test_snapshot_of_one_service_filters_every_query() -> None:
    seen: list[str] = []
    inner = answer(GOOD)

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req.url.params["query"])
        return inner.handle_request(req)

    async def go() -> dict[Any, Any]:
        c = PromClient("http://prom", transport=httpx.MockTransport(handler))
        try:
            out, _ = await c.snapshot(NOW, only=KEY)
            return out
        finally:
            await c.close()

    assert asyncio.run(go())[KEY].ok
    assert len(seen) == len(DEFAULT_QUERIES)
    assert all('foresail_dev_inferenceservice="resnet", namespace="team-a"' in q for q in seen)


@pytest.mark.parametrize(
    ("name", "since", "step"), [("an hour at 15 s", "1h", 15), ("a week: at most 10,000 points", "7d", 61), ("two days", "2d", 18)]
)
def test_replay_history_is_one_range_query_of_the_same_rate(name: str, since: str, step: int) -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        values = [[t, "5"] for t in range(0, 600, 15)]
        body = {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}}
        return httpx.Response(200, text=json.dumps(body))

    arr = arrivals_from_prometheus("http://prom", "team-a/resnet", since, transport=httpx.MockTransport(handler))
    assert len(arr.times) > 0, name
    (req,) = seen
    assert req.url.path == "/api/v1/query_range"
    assert 'foresail_dev_inferenceservice="resnet", namespace="team-a"}[1m]' in req.url.params["query"]
    assert float(req.url.params["step"]) == step
    assert float(req.url.params["end"]) - float(req.url.params["start"]) == parse_since(since)


@pytest.mark.parametrize(("name", "service", "since"), [("no namespace", "resnet", "1h"), ("bad unit", "a/b", "3y"), ("no number", "a/b", "d")])
def test_replay_history_refuses_bad_arguments(name: str, service: str, since: str) -> None:
    with pytest.raises(ValueError, match=r"--service|--since"):
        arrivals_from_prometheus("http://prom", service, since)
