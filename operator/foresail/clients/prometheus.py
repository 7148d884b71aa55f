"""The one Prometheus client (async httpx): the autoscaler's signals, the forecaster's and replay's history.

Each pass of the autoscaler loop runs the same four instant queries for *all* services at once, grouped by ``namespace`` and
``foresail_dev_inferenceservice``; their results are joined per service. The policy for bad results,
stated once (KEDA's lesson):

* a service with no series in a query: that metric is missing (``no series``);
* NaN or +/-Inf: an error (``not a finite number``) - except the p99 of a service whose arrival rate
  is exactly 0: Triton's summary quantiles are NaN when nothing was served, which means "no latency
  pressure", so p99 counts as 0 there;
* more than one series for one service: an error (``multiple series``; the grouping was broken);
* the newest scraped sample older than ``stale_after`` seconds: stale (``stale``);
* an HTTP error, a timeout or a malformed answer: every service's signals are unavailable this pass.

Staleness is judged here and only here (``stale_after``): a stale service reaches the decision as
one whose signals are unavailable. Every query has its own timeout, and all run concurrently, so one
slow query cannot stall the loop. ``arrival_history`` is the range query of the same arrival rate.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx

from foresail.scaling.observe import ServiceSignals

__all__ = ["DEFAULT_QUERIES", "MetricsError", "PromClient"]

GROUP = "namespace, foresail_dev_inferenceservice"
DEFAULT_QUERIES: dict[str, str] = {
    # requests/s that arrived (served + failed) over the rate window
    "arrival": f'sum by ({GROUP}) (rate({{__name__=~"nv_inference_request_(success|failure)", foresail_dev_inferenceservice!=""}}[{{window}}]))',
    # requests waiting in Triton's queues now
    "queue": f'sum by ({GROUP}) (nv_inference_pending_request_count{{foresail_dev_inferenceservice!=""}})',
    # worst replica's p99 request latency, ms (Triton --metrics-config summary_latencies=true)
    "p99": f'max by ({GROUP}) (nv_inference_request_summary_us{{quantile="0.99", foresail_dev_inferenceservice!=""}}) / 1000',
    # time of the newest scraped sample, to detect staleness
    "freshness": f'max by ({GROUP}) (timestamp(nv_inference_pending_request_count{{foresail_dev_inferenceservice!=""}}))',
}


class MetricsError(Exception):
    """The whole query failed (HTTP, timeout, malformed answer)."""

Key = tuple[str, str]
_ALL_SERVICES = 'foresail_dev_inferenceservice!=""'


def _only(promql: str, key: Key) -> str:
    """A query of all services narrowed to one (namespace, service)."""
    return promql.replace(_ALL_SERVICES, f'foresail_dev_inferenceservice="{key[1]}", namespace="{key[0]}"')


class PromClient:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        rate_window: str = "30s",
        stale_after: float = 30.0,
        queries: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.stale_after = stale_after
        self.queries = {k: v.replace("{window}", rate_window) for k, v in (queries or DEFAULT_QUERIES).items()}
        self.http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self.queries_run = 0

    async def close(self) -> None:
        await self.http.aclose()

    async def query(self, promql: str) -> dict[Key, list[tuple[float, float]]]:
        """An instant query -> {(namespace, service): [(timestamp, value), ...]} (a list to see duplicates)."""
        self.queries_run += 1
        try:
            resp = await asyncio.wait_for(self.http.get(f"{self.url}/api/v1/query", params={"query": promql}), self.timeout)
        except (httpx.HTTPError, TimeoutError) as e:
            raise MetricsError(f"query failed: {type(e).__name__}: {e}") from e
        if resp.status_code != 200:
            raise MetricsError(f"query failed: HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            body: dict[str, Any] = resp.json()
            if body.get("status") != "success":
                raise MetricsError(f"query failed: {body.get('errorType')}: {body.get('error')}")
            data = body["data"]
            if data.get("resultType") != "vector":
                raise MetricsError(f"expected a vector, got {data.get('resultType')}")
            out: dict[Key, list[tuple[float, float]]] = {}
            for item in data["result"]:
                m = item.get("metric", {})
                key = (m.get("namespace", ""), m.get("foresail_dev_inferenceservice", ""))
                ts, raw = item["value"]
                out.setdefault(key, []).append((float(ts), float(raw)))  # float() reads "NaN", "+Inf"
            return out
        except (KeyError, TypeError, ValueError) as e:
            raise MetricsError(f"malformed answer: {e!r}") from e

    async def arrival_history(
        self, namespace: str, service: str, start: float, end: float, step: float
    ) -> list[tuple[float, float]]:
        """The service's arrival rate over [start, end] (a range query): to warm the forecaster, to replay."""
        promql = _only(self.queries["arrival"], (namespace, service))
        self.queries_run += 1
        try:
            resp = await asyncio.wait_for(
                self.http.get(
                    f"{self.url}/api/v1/query_range", params={"query": promql, "start": start, "end": end, "step": max(step, 1.0)}
                ),
                self.timeout * 3,
            )
            resp.raise_for_status()
            result = resp.json()["data"]["result"]
        except (httpx.HTTPError, TimeoutError, KeyError, ValueError) as e:
            raise MetricsError(f"history of {namespace}/{service}: {e!r}") from e
        if not result:
            return []
        return [(float(t), float(v)) for t, v in result[0]["values"] if math.isfinite(float(v))]

    async def snapshot(self, now: float, only: Key | None = None) -> tuple[dict[Key, ServiceSignals], list[str]]:
        """Signals of every service Prometheus knows (or of ``only`` one), plus the errors that hit all of them."""
        names = list(self.queries)
        queries = dict(self.queries)
        if only is not None:
            queries = {n: _only(q, only) for n, q in queries.items()}
        results = await asyncio.gather(*(self.query(queries[n]) for n in names), return_exceptions=True)
        by_name: dict[str, dict[Key, list[tuple[float, float]]]] = {}
        global_errors = []
        for n, r in zip(names, results, strict=True):
            if isinstance(r, BaseException):
                global_errors.append(f"{n}: {r}")
                by_name[n] = {}
            else:
                by_name[n] = r
        keys = {k for r in by_name.values() for k in r}
        out: dict[Key, ServiceSignals] = {}
        for key in keys:
            sm = ServiceSignals(errors=[f"{e}" for e in global_errors])
            vals: dict[str, float | None] = {}
            for n in names:
                series = by_name[n].get(key)
                if not series:
                    sm.errors.append(f"{n}: no series")
                    vals[n] = None
                elif len(series) > 1:
                    sm.errors.append(f"{n}: multiple series ({len(series)})")
                    vals[n] = None
                else:
                    vals[n] = series[0][1]
            arrival = vals.get("arrival")
            for n, v in list(vals.items()):
                if v is not None and not math.isfinite(v):
                    if n == "p99" and math.isnan(v) and arrival == 0.0:
                        vals[n] = 0.0  # nothing served: no latency pressure
                    else:
                        sm.errors.append(f"{n}: not a finite number ({v})")
                        vals[n] = None
            fresh = vals.get("freshness")
            if fresh is not None:
                sm.sample_age_s = max(0.0, now - fresh)
                if sm.sample_age_s > self.stale_after:
                    sm.errors.append(f"stale: newest sample {sm.sample_age_s:.0f}s old")
            sm.arrival_rps, sm.queue, sm.p99_ms = vals.get("arrival"), vals.get("queue"), vals.get("p99")
            out[key] = sm
        return out, global_errors
