"""The one Prometheus client (async httpx): Triton's raw counters for the live signals, and the
arrival-rate history for the forecaster and replay.

**Counters** (``counter_samples``): one instant query per autoscaler pass for *all* services, a range
selector over Triton's counters, queue gauge and latency-summary quantiles::

    {__name__=~"nv_inference_(request_success|...)", foresail_dev_inferenceservice!="", quantile=~"0.5|...|"}[Ns]

It returns Prometheus' raw samples (every scrape, with its timestamp) of the last N seconds, grouped by
``namespace``, ``foresail_dev_inferenceservice`` and ``pod`` (the labels the scrape config must attach);
the operator asks for the time since its last read plus a margin, so it sees every scrape once and keeps
the windows itself (``scaling.counters``): the same code then serves the replicas' own endpoints, and
replicas that warmed recently can be told apart (only the operator knows when a pod warmed). Samples of a
model other than the service's are dropped.

How many queries: one per pass while its answer is small. Decoding an answer takes about 9x its size in
Python objects, and the size grows with replicas x seconds: a minute of 2,000 replicas' samples is a 54 MB
answer and ~0.9 GB to decode, past the operator's memory limit. So a read longer than a slice
(``read_slices``: the first read's minute of history, a read after a slow pass) comes in slices, oldest
first, and the services are split by namespace (``plan_shards``) so that each query covers a bounded
number of replicas: a constant number of queries per pass for a given fleet, about one per 2,000 replicas.

Prometheus stamps its scrapes with its own clock, which may differ from the operator's: each read also
measures that difference from the answer's ``Date`` header (``CounterRead.clock_offset_s``: Prometheus'
clock minus the operator's, to a second), so that freshness is judged on Prometheus' clock.

An HTTP error, a timeout or a malformed answer raises ``MetricsError``: every service's signals are then
unavailable this pass. A series without a ``pod`` label is an error of its service (the scrape config
is wrong). Missing, partial or stale series are judged per service by ``scaling.counters``.

**History** (``arrival_history``): the service's arrival rate (completions + failures per second over
``rate_window``) as range queries: to warm the forecaster after a restart, and for ``foresail replay``.
Prometheus refuses a range query of more than 11,000 points per series (15 h at a 5 s step), so a long
span is asked in consecutive chunks of at most ``CHUNK_POINTS`` steps each, one after the other.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from foresail.api.objects import PROM_LABEL_ISVC
from foresail.clients.promauth import PromAuth, PromAuthError, client_args
from foresail.scaling.counters import PodSample
from foresail.scaling.latency import QUANTILES
from foresail.scaling.samples import METRIC_NAMES, Series, series_samples

__all__ = ["ARRIVAL_HISTORY", "CHUNK_POINTS", "CounterRead", "MetricsError", "PromClient", "Shard", "clock_offset", "counters_query", "plan_shards", "range_chunks", "read_slices"]

Key = tuple[str, str]
SERVICE_LABEL = PROM_LABEL_ISVC
# requests/s that arrived (served + failed) over the rate window, per service
ARRIVAL_HISTORY = (
    f'sum by (namespace, {SERVICE_LABEL}) (rate({{__name__=~"nv_inference_request_(success|failure)", {{selector}}}}[{{window}}]))'
)

CHUNK_POINTS = 10_000  # points per range query: under Prometheus' limit of 11,000 per series


class MetricsError(Exception):
    """The whole query failed (HTTP, timeout, malformed answer)."""


def range_chunks(start: float, end: float, step: float, points: int = CHUNK_POINTS) -> list[tuple[float, float]]:
    """[start, end] at ``step`` as consecutive (start, end) spans of at most ``points`` evaluation steps each."""
    out = []
    t = start
    while t <= end:
        last = min(end, t + step * (points - 1))
        out.append((t, last))
        t = last + step
    return out


def read_slices(seconds: float, slice_s: int, margin_s: int) -> list[tuple[int, int]]:
    """The last ``seconds`` as (range, offset) pairs of at most ``slice_s`` (+ ``margin_s`` of overlap with
    the next) seconds each, oldest first: ``{...}[range] offset offset`` for each covers them all, however
    long the queries between take (counters are cumulative: a scrape missed between two slices only
    coarsens, never loses, what they count). One read of a minute of every replica's samples at 1,000
    services decodes to ~1 GB of Python objects (the operator's memory limit); slices bound that peak."""
    span = max(1, math.ceil(seconds))
    out = []
    for i in reversed(range(math.ceil(span / slice_s))):
        lo, hi = i * slice_s, min(span, (i + 1) * slice_s)
        offset = max(0, lo - margin_s)
        out.append((hi - offset, offset))
    return out


def _fmt(q: float) -> str:
    return f"{q:g}"


@dataclass(frozen=True)
class Shard:
    """The services one counters query selects: every service (no namespaces), every service of
    ``namespaces``, or ``services`` of the one namespace."""

    namespaces: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    @classmethod
    def one(cls, key: Key) -> Shard:
        """The one service ``key``."""
        return cls((key[0],), (key[1],))

    def selector(self) -> str:
        if not self.namespaces:
            return f'{SERVICE_LABEL}!=""'
        if self.services:
            (ns,) = self.namespaces
            if len(self.services) == 1:
                return f'namespace="{ns}", {SERVICE_LABEL}="{self.services[0]}"'
            return f'namespace="{ns}", {SERVICE_LABEL}=~"{_alternatives(self.services)}"'
        if len(self.namespaces) == 1:
            return f'namespace="{self.namespaces[0]}", {SERVICE_LABEL}!=""'
        return f'namespace=~"{_alternatives(self.namespaces)}", {SERVICE_LABEL}!=""'


def _alternatives(names: Sequence[str]) -> str:
    """Kubernetes names as one anchored PromQL alternation (a dot is the only character to escape)."""
    return "|".join(n.replace(".", "\\\\.") for n in names)


def plan_shards(replicas: Mapping[Key, int], max_replicas: int) -> list[Shard]:
    """The services split into queries of at most ``max_replicas`` replicas' series each (a query's answer,
    and the memory its decoding takes, grows with the replicas it covers): whole namespaces packed
    together in name order, a namespace over the limit split by service. One shard of everything when it
    all fits. A service over the limit alone is a shard of its own."""
    if sum(max(1, n) for n in replicas.values()) <= max_replicas:
        return [Shard()] if replicas else []
    by_ns: dict[str, dict[str, int]] = {}
    for (ns, name), n in replicas.items():
        by_ns.setdefault(ns, {})[name] = max(1, n)
    out: list[Shard] = []
    packed: list[str] = []
    load = 0
    for ns in sorted(by_ns):
        size = sum(by_ns[ns].values())
        if size > max_replicas:  # this namespace alone is too big: by service
            group: list[str] = []
            g = 0
            for name in sorted(by_ns[ns]):
                if group and g + by_ns[ns][name] > max_replicas:
                    out.append(Shard((ns,), tuple(group)))
                    group, g = [], 0
                group.append(name)
                g += by_ns[ns][name]
            out.append(Shard((ns,), tuple(group)))
            continue
        if packed and load + size > max_replicas:
            out.append(Shard(tuple(packed)))
            packed, load = [], 0
        packed.append(ns)
        load += size
    if packed:
        out.append(Shard(tuple(packed)))
    return out


def counters_query(seconds: int, shard: Shard | None = None, offset: int = 0) -> str:
    """The raw samples of the last ``seconds`` of every service's counters (or of ``shard``'s), ``offset``
    seconds ago."""
    names = "|".join(n.removeprefix("nv_inference_") for n in METRIC_NAMES)
    who = (shard or Shard()).selector()
    quantiles = "|".join(_fmt(q) for q in QUANTILES)
    ago = f" offset {offset}s" if offset else ""
    return f'{{__name__=~"nv_inference_({names})", {who}, quantile=~"{quantiles}|"}}[{seconds}s]{ago}'


@dataclass
class CounterRead:
    """One read: each service's replicas' samples, and the errors of services whose series are unusable."""

    samples: dict[Key, dict[str, list[PodSample]]] = field(default_factory=dict)
    errors: dict[Key, list[str]] = field(default_factory=dict)
    clock_offset_s: float | None = None  # Prometheus' clock minus the operator's (None: no Date header)


def clock_offset(date: str | None, received: float) -> float | None:
    """Prometheus' clock minus ours, from an answer's ``Date`` header received at ``received`` (our
    clock): the header has whole seconds, so the middle of its second."""
    if not date:
        return None
    try:
        return parsedate_to_datetime(date).timestamp() + 0.5 - received
    except (TypeError, ValueError, IndexError):
        return None


class PromClient:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        rate_window: str = "30s",
        transport: httpx.AsyncBaseTransport | None = None,
        auth: PromAuth | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``auth``: credentials and TLS from mounted files (``clients.promauth``); a missing or malformed
        file raises ``PromAuthError`` here, naming it. ``clock``: the operator's wall clock."""
        self.url = url.rstrip("/")
        self.clock = clock
        self.timeout = timeout
        self.rate_window = rate_window
        extra = client_args(auth) if auth is not None else {}
        self.http = httpx.AsyncClient(timeout=timeout, transport=transport, **extra)
        self.queries_run = 0

    async def close(self) -> None:
        await self.http.aclose()

    async def _get(self, path: str, params: dict[str, Any], limit_s: float) -> Any:
        return (await self._answer(path, params, limit_s))[0]

    async def _answer(self, path: str, params: dict[str, Any], limit_s: float) -> tuple[Any, float | None]:
        """The answer's data, and Prometheus' clock minus ours when it said its time."""
        self.queries_run += 1
        try:
            resp = await asyncio.wait_for(self.http.get(f"{self.url}{path}", params=params), limit_s)
        except (httpx.HTTPError, TimeoutError, PromAuthError) as e:
            raise MetricsError(f"query failed: {type(e).__name__}: {e}") from e
        offset = clock_offset(resp.headers.get("date"), self.clock())
        if resp.status_code != 200:
            raise MetricsError(f"query failed: HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            body: dict[str, Any] = resp.json()
        except ValueError as e:
            raise MetricsError(f"malformed answer: {e!r}") from e
        if body.get("status") != "success":
            raise MetricsError(f"query failed: {body.get('errorType')}: {body.get('error')}")
        return body.get("data"), offset

    async def counter_samples(self, seconds: float, models: Mapping[Key, str], shard: Shard | None = None, ago: int = 0) -> CounterRead:
        """The raw counter samples of the last ``seconds`` (``ago`` seconds ago) of the services in ``models``
        (service -> its model), of ``shard``'s only when given."""
        span = max(1, math.ceil(seconds))
        # a longer read answers with more samples than a pass's: give it more time
        query = counters_query(span, shard, ago)
        data, offset = await self._answer("/api/v1/query", {"query": query}, self.timeout * (3 if span > 15 else 1))
        rows: dict[Key, dict[str, list[Series]]] = {}
        out = CounterRead(clock_offset_s=offset)
        try:
            if data.get("resultType") != "matrix":
                raise MetricsError(f"expected a matrix, got {data.get('resultType')}")
            for item in data["result"]:
                m: dict[str, str] = item["metric"]
                key = (m.get("namespace", ""), m.get(SERVICE_LABEL, ""))
                if key not in models:
                    continue
                pod = m.get("pod", "")
                if not pod:
                    err = "series without a pod label: the scrape config must set namespace, pod and " + SERVICE_LABEL
                    if err not in out.errors.setdefault(key, []):
                        out.errors[key].append(err)
                    continue
                name = m["__name__"]
                points = [(float(t), float(v)) for t, v in item["values"]]  # float() reads "NaN", "+Inf"
                rows.setdefault(key, {}).setdefault(pod, []).append((name, m, points))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise MetricsError(f"malformed answer: {e!r}") from e
        for key, pods in rows.items():
            out.samples[key] = {pod: series_samples(r, models[key]) for pod, r in pods.items()}
        return out

    async def arrival_history(
        self, namespace: str, service: str, start: float, end: float, step: float
    ) -> list[tuple[float, float]]:
        """The service's arrival rate over [start, end] (range queries under the point limit): to warm the
        forecaster, to replay."""
        selector = f'namespace="{namespace}", {SERVICE_LABEL}="{service}"'
        promql = ARRIVAL_HISTORY.replace("{selector}", selector).replace("{window}", self.rate_window)
        step = max(step, 1.0)
        points: list[tuple[float, float]] = []
        try:
            for lo, hi in range_chunks(start, end, step):
                data = await self._get("/api/v1/query_range", {"query": promql, "start": lo, "end": hi, "step": step}, self.timeout * 3)
                for item in data["result"][:1]:
                    points.extend((float(t), float(v)) for t, v in item["values"] if math.isfinite(float(v)))
        except (MetricsError, KeyError, TypeError, ValueError) as e:
            raise MetricsError(f"history of {namespace}/{service}: {e}") from e
        return points
