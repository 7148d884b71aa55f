"""The Prometheus client against httpx.MockTransport: the counters query's answer shapes, the errors
that fail a pass and those of one service, and the arrival-rate history."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from foresail.clients.history import arrivals_from_prometheus, parse_since
from foresail.clients.promauth import PromAuth, PromAuthError
from foresail.clients.prometheus import (
    CounterRead,
    MetricsError,
    PromClient,
    Shard,
    counters_query,
    plan_shards,
    range_chunks,
    read_slices,
)
from foresail.scaling.counters import PodSample
from tests.fakes.counters import steady
from tests.fakes.prometheus import answer, matrix

NOW = 1_000.0
KEY = ("team-a", "resnet")
MODELS = {KEY: "resnet"}


def read(transport: httpx.MockTransport, seconds: float = 75, models: dict[Any, str] | None = None) -> CounterRead:
    async def go() -> CounterRead:
        c = PromClient("http://prom", transport=transport)
        try:
            return await c.counter_samples(seconds, MODELS if models is None else models)
        finally:
            await c.close()

    return asyncio.run(go())


def test_raw_samples_become_each_replicas_samples() -> None:
    a, b = steady(NOW - 5, NOW, 10, pending=2, executing=1), steady(NOW - 3, NOW, 20)
    got = read(answer(matrix({("team-a", "resnet", "a"): a, ("team-a", "resnet", "b"): b})))
    assert got.errors == {}
    assert got.samples[KEY] == {"a": a, "b": b}  # failures summed over reasons, compute over phases


def test_one_query_for_every_service_and_replica() -> None:
    seen: list[httpx.Request] = []
    replicas = {("ns", f"s{i}", f"s{i}-{j}"): steady(NOW - 2, NOW, 1) for i in range(100) for j in range(3)}
    got = read(answer(matrix(replicas), seen=seen), seconds=7.2, models={("ns", f"s{i}"): "resnet" for i in range(100)})
    assert len(got.samples) == 100 and all(len(p) == 3 for p in got.samples.values())
    (req,) = seen
    assert req.url.params["query"] == counters_query(8)
    assert req.url.params["query"].endswith("[8s]")


def test_the_query_selects_the_counters_gauge_and_summary_quantiles() -> None:
    q = counters_query(75)
    for name in ("request_success", "request_failure", "queue_duration_us", "pending_request_count", "request_summary_us"):
        assert name in q
    assert 'foresail_dev_inferenceservice!=""' in q and 'quantile=~"0.5|0.9|0.95|0.99|0.999|"' in q
    assert 'namespace="team-a", foresail_dev_inferenceservice="resnet"' in counters_query(75, Shard.one(KEY))
    assert counters_query(18, offset=12).endswith("[18s] offset 12s") and counters_query(8, offset=0).endswith("[8s]")


def _fleet(per_ns: dict[str, list[int]]) -> dict[tuple[str, str], int]:
    return {(ns, f"s{i}"): n for ns, sizes in per_ns.items() for i, n in enumerate(sizes)}


@pytest.mark.parametrize(
    ("name", "replicas", "limit", "want"),
    [
        ("no services, no query", {}, 10, []),
        ("all fits: one query of everything", _fleet({"a": [3, 3], "b": [4]}), 10, [Shard()]),
        ("namespaces packed in name order", _fleet({"c": [4], "a": [3, 3], "b": [4]}), 8,
         [Shard(("a",)), Shard(("b", "c"))]),
        ("a namespace over the limit split by service", _fleet({"a": [3, 3, 3], "b": [2]}), 7,
         [Shard(("a",), ("s0", "s1")), Shard(("a",), ("s2",)), Shard(("b",))]),
        ("a service over the limit alone", _fleet({"a": [20, 1]}), 5, [Shard(("a",), ("s0",)), Shard(("a",), ("s1",))]),
        ("a service with no replica counts as one", _fleet({"a": [0, 0, 0]}), 2, [Shard(("a",), ("s0", "s1")), Shard(("a",), ("s2",))]),
    ],
)  # fmt: skip
def test_plan_shards(name: str, replicas: dict[tuple[str, str], int], limit: int, want: list[Shard]) -> None:
    got = plan_shards(replicas, limit)
    assert got == want
    if got and got != [Shard()]:  # every service in exactly one shard
        covered = [(ns, svc) for sh in got for ns in sh.namespaces for svc in (sh.services or [k[1] for k in replicas if k[0] == ns])]
        assert sorted(covered) == sorted(replicas)


@pytest.mark.parametrize(
    ("shard", "selector"),
    [
        (Shard(), 'foresail_dev_inferenceservice!=""'),
        (Shard(("a",)), 'namespace="a", foresail_dev_inferenceservice!=""'),
        (Shard(("a", "b")), 'namespace=~"a|b", foresail_dev_inferenceservice!=""'),
        (Shard(("a",), ("x",)), 'namespace="a", foresail_dev_inferenceservice="x"'),
        (Shard(("a",), ("x", "y.z")), 'namespace="a", foresail_dev_inferenceservice=~"x|y\\\\.z"'),
    ],
)
def test_shard_selectors(shard: Shard, selector: str) -> None:
    assert shard.selector() == selector
    assert "{__name__=~" in counters_query(8, shard=shard) and selector in counters_query(8, shard=shard)


@pytest.mark.parametrize(
    ("name", "seconds", "want"),
    [
        ("a pass's read: one slice", 7.2, [(8, 0)]),
        ("exactly one slice", 15, [(15, 0)]),
        ("just over: two, overlapping by the margin", 16, [(4, 12), (15, 0)]),
        ("the first read, a minute and a quarter, oldest first", 75, [(18, 57), (18, 42), (18, 27), (18, 12), (15, 0)]),
        ("under a second", 0.2, [(1, 0)]),
    ],
)
def test_read_slices(name: str, seconds: float, want: list[tuple[int, int]]) -> None:
    got = read_slices(seconds, 15, 3)
    assert got == want
    covered = {t for window, ago in got for t in range(ago, ago + window)}
    assert covered == set(range(max(1, math.ceil(seconds)))), "every second of the span is covered"


@pytest.mark.parametrize(
    ("name", "models", "want"),
    [
        ("samples of another model are dropped", {KEY: "other"}, {KEY: {"a": []}}),
        ("services not asked for are dropped", {("team-b", "x"): "resnet"}, {}),
    ],
)
def test_filters(name: str, models: dict[Any, str], want: dict[Any, Any]) -> None:
    got = read(answer(matrix({("team-a", "resnet", "a"): steady(NOW - 2, NOW, 1)})), models=models)
    assert got.samples == want, name


def test_a_series_without_a_pod_label_is_an_error_of_its_service() -> None:
    got = read(answer(matrix({("team-a", "resnet", "a"): steady(NOW - 2, NOW, 1)}, pod_label=False)))
    assert got.samples == {}
    assert got.errors[KEY] == ["series without a pod label: the scrape config must set namespace, pod and foresail_dev_inferenceservice"]


def test_a_scrape_missing_a_counter_is_no_sample_and_nan_is_read() -> None:
    res = matrix({("team-a", "resnet", "a"): steady(NOW - 2, NOW, 1)})
    for item in res:
        if item["metric"]["__name__"] == "nv_inference_pending_request_count":
            item["values"] = item["values"][1:]  # the first scrape lacks the gauge
        if item["metric"]["__name__"] == "nv_inference_request_success":
            item["values"][-1][1] = "NaN"
    got = read(answer(res)).samples[KEY]["a"]
    assert [s.t for s in got] == [NOW - 1, NOW]
    assert got[-1].bad_value() == "success = nan"


@pytest.mark.parametrize(
    ("name", "status", "raw", "error"),
    [
        ("HTTP 500", 500, "boom", "HTTP 500"),
        ("not JSON", 200, "<html>", "malformed answer"),
        ("error status", 200, json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}), "bad_data: parse error"),
        ("a vector, not a matrix", 200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}), "expected a matrix"),
        ("a sample that is not a pair", 200, json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"namespace": "team-a", "foresail_dev_inferenceservice": "resnet", "pod": "a", "__name__": "x"}, "values": [[1]]}]}}), "malformed answer"),
    ],
)  # fmt: skip
def test_a_failed_query_fails_the_pass(name: str, status: int, raw: str, error: str) -> None:
    with pytest.raises(MetricsError, match=error):
        read(answer(status=status, raw=raw))


def test_a_slow_query_times_out() -> None:
    async def handler(req: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    async def go() -> float:
        c = PromClient("http://prom", timeout=0.2, transport=httpx.MockTransport(handler))
        t0 = asyncio.get_running_loop().time()
        try:
            with pytest.raises(MetricsError, match="TimeoutError"):
                await c.counter_samples(10, MODELS)
        finally:
            await c.close()
        return asyncio.get_running_loop().time() - t0

    assert asyncio.run(go()) < 1.0


def test_arrival_history_for_the_forecaster() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        assert req.url.path == "/api/v1/query_range"
        assert 'namespace="team-a", foresail_dev_inferenceservice="resnet"' in req.url.params["query"]
        body = {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "2"], [2, "NaN"], [3, "4"]]}]}}
        return httpx.Response(200, text=json.dumps(body))

    async def go() -> list[tuple[float, float]]:
        c = PromClient("http://prom", transport=httpx.MockTransport(handler))
        try:
            return await c.arrival_history("team-a", "resnet", 0, 3, 1)
        finally:
            await c.close()

    assert asyncio.run(go()) == [(1.0, 2.0), (3.0, 4.0)]


def test_credentials_from_files_on_every_query_and_a_lost_file_is_a_metrics_error(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    headers = tmp_path / "headers"
    headers.mkdir()
    (headers / "X-Scope-OrgID").write_text("team-a")
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, text=json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}))

    async def go() -> str:
        c = PromClient("http://prom", transport=httpx.MockTransport(handler),
                       auth=PromAuth(bearer_token_file=str(token), headers_dir=str(headers)))  # fmt: skip
        try:
            await c.arrival_history("team-a", "resnet", 0, 3, 1)
            token.unlink()  # a Secret unmounted under a running operator
            with pytest.raises(MetricsError) as e:
                await c.arrival_history("team-a", "resnet", 0, 3, 1)
            return str(e.value)
        finally:
            await c.close()

    error = asyncio.run(go())
    assert seen[0].headers["Authorization"] == "Bearer s3cret" and seen[0].headers["X-Scope-OrgID"] == "team-a"
    assert str(token) in error and "s3cret" not in error


def test_a_missing_credential_file_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(PromAuthError, match="nope"):
        PromClient("http://prom", auth=PromAuth(bearer_token_file=str(tmp_path / "nope")))


def ranged(seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    """A Prometheus that answers a range query with one point per step (rate 5), refusing > 11,000 points."""

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        lo, hi, step = (float(req.url.params[k]) for k in ("start", "end", "step"))
        n = int((hi - lo) // step) + 1
        if n > 11_000:
            return httpx.Response(400, text=json.dumps({"status": "error", "errorType": "bad_data", "error": "exceeded maximum resolution"}))
        body = {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[lo + i * step, "5"] for i in range(n)]}]}}
        return httpx.Response(200, text=json.dumps(body))

    return handler


@pytest.mark.parametrize(
    ("name", "since", "queries"), [("an hour: one query", "1h", 1), ("two days: two chunks", "2d", 2), ("a week: five chunks", "7d", 5)]
)
def test_replay_history_is_chunked_under_the_point_limit(name: str, since: str, queries: int) -> None:
    seen: list[httpx.Request] = []
    arr = arrivals_from_prometheus("http://prom", "team-a/resnet", since, transport=httpx.MockTransport(ranged(seen)))
    assert len(arr.times) > 0, name
    assert len(seen) == queries
    spans = [tuple(float(r.url.params[k]) for k in ("start", "end", "step")) for r in seen]
    assert all(r.url.path == "/api/v1/query_range" for r in seen)
    assert all('namespace="team-a", foresail_dev_inferenceservice="resnet"}[1m]' in r.url.params["query"] for r in seen)
    assert all(step == 15 and (hi - lo) / step + 1 <= 10_000 for lo, hi, step in spans)
    assert all(nxt[0] == prev[1] + 15 for prev, nxt in itertools.pairwise(spans)), "consecutive, no step twice"
    assert spans[-1][1] - spans[0][0] == parse_since(since)


@pytest.mark.parametrize(
    ("name", "start", "end", "step", "want"),
    [
        ("a short span is one chunk", 0, 100, 10, [(0, 100)]),
        ("exactly the chunk's points", 0, 99, 1, [(0, 99)]),
        ("one point more opens a chunk", 0, 100, 1, [(0, 99), (100, 100)]),
        ("an end between steps", 0, 1995, 10, [(0, 990), (1000, 1990)]),
        ("an empty span", 10, 5, 1, []),
    ],
)
def test_range_chunks(name: str, start: float, end: float, step: float, want: list[tuple[float, float]]) -> None:
    assert range_chunks(start, end, step, points=100) == want, name


def test_forecaster_history_over_the_point_limit_is_chunked() -> None:
    seen: list[httpx.Request] = []

    async def go() -> list[tuple[float, float]]:
        c = PromClient("http://prom", transport=httpx.MockTransport(ranged(seen)))
        try:
            return await c.arrival_history("team-a", "resnet", 0, 86_400, 5)  # a day at 5 s: 17,281 points
        finally:
            await c.close()

    points = asyncio.run(go())
    assert len(seen) == 2
    assert [t for t, _ in points] == [5.0 * i for i in range(17_281)]


@pytest.mark.parametrize(("name", "service", "since"), [("no namespace", "resnet", "1h"), ("bad unit", "a/b", "3y"), ("no number", "a/b", "d")])
def test_replay_history_refuses_bad_arguments(name: str, service: str, since: str) -> None:
    with pytest.raises(ValueError, match=r"--service|--since"):
        arrivals_from_prometheus("http://prom", service, since)


def test_samples_equal_after_the_round_trip() -> None:
    s = PodSample(1.0, 2, 3, 4, 5, 6, 7, (1.0, 2.0, 3.0, 4.0, 5.0))
    assert read(answer(matrix({("team-a", "resnet", "a"): [s]}))).samples[KEY]["a"] == [s]
