"""Direct reads of replicas' metrics endpoints against httpx.MockTransport: Triton 2.51's text format,
the service's model only, versions summed, and every way a read fails named."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest

from foresail.clients.replica_metrics import ReplicaMetrics
from foresail.scaling.counters import PodSample
from tests.fakes.triton import metrics_text

Q = (1000.0, 2000.0, 3000.0, 4000.0, 5000.0)
PAGES = {
    "good": metrics_text("m", success=10, rejected=2, request_us=200_000, queue_us=50_000, compute_us=100_000, pending=3, quantiles_us=Q),
    "two versions and another model": metrics_text("m", success=10, pending=1) + metrics_text("m", success=5, pending=2, version="2") + metrics_text("ensemble", success=99),
    "idle (NaN quantiles)": metrics_text("m"),
    "another model only": metrics_text("other", success=1),
    "garbage": "nv_inference_request_success{model=\"m\" 1\n",
}  # fmt: skip


def transport(delay: float = 0.0) -> httpx.MockTransport:
    async def handler(req: httpx.Request) -> httpx.Response:
        host = req.url.host
        if host == "slow":
            await asyncio.sleep(delay)
        if host == "down":
            raise httpx.ConnectError("connection refused")
        if host == "broken":
            return httpx.Response(500, text="oops")
        return httpx.Response(200, text=PAGES[req.url.params["page"]])

    return httpx.MockTransport(handler)


def read(targets: dict[str, str], delay: float = 0.0) -> dict[str, PodSample | str]:
    async def go() -> dict[str, PodSample | str]:
        r = ReplicaMetrics(timeout=0.2, transport=transport(delay))
        try:
            return await r.read({pod: (url, "m") for pod, url in targets.items()})
        finally:
            await r.close()

    return asyncio.run(go())


def test_a_replica_page_becomes_its_sample() -> None:
    got = read({"a": "http://a:8002/metrics?page=good"})["a"]
    assert isinstance(got, PodSample)
    assert (got.success, got.failure, got.request_us, got.queue_us, got.compute_us, got.pending, got.quantiles_us) == (10, 2, 200_000, 50_000, 100_000, 3, Q)


def test_versions_are_summed_and_other_models_left_out() -> None:
    got = read({"a": "http://a:8002/metrics?page=two versions and another model"})["a"]
    assert isinstance(got, PodSample) and (got.success, got.pending) == (15, 3)


def test_an_idle_replica_has_nan_quantiles() -> None:
    got = read({"a": "http://a:8002/metrics?page=idle (NaN quantiles)"})["a"]
    assert isinstance(got, PodSample) and all(math.isnan(q) for q in got.quantiles_us)


@pytest.mark.parametrize(
    ("name", "url", "error"),
    [
        ("refused", "http://down:8002/metrics?page=good", "ConnectError"),
        ("too slow", "http://slow:8002/metrics?page=good", "TimeoutError"),
        ("HTTP error", "http://broken:8002/metrics?page=good", "HTTP 500"),
        ("not the service's model", "http://a:8002/metrics?page=another model only", "no counters of model m"),
        ("unreadable", "http://a:8002/metrics?page=garbage", "unreadable metrics"),
    ],
)
def test_every_failed_read_says_why(name: str, url: str, error: str) -> None:
    got = read({"a": url, "b": "http://b:8002/metrics?page=good"}, delay=1.0)
    assert isinstance(got["a"], str) and error in got["a"], (name, got["a"])
    assert isinstance(got["b"], PodSample), "one replica's failure is its own"
