"""Reads Triton replicas' own metrics endpoints (``http://POD_IP:8002/metrics``) directly: the live
signals' direct path, for clusters whose Prometheus scrapes too seldom for a 2 s window.

All replicas are read concurrently, each with a short timeout; the lines of the text exposition format
that ``scaling.samples`` reads are parsed into the same rows Prometheus' raw samples give (names as Triton
writes them: ``prometheus_client``'s parser would append ``_total`` to counters), time stamped when the
answer arrived on the operator's monotonic clock (``clock``), so a step of the wall clock never puts a
sample before the previous one; the live signals judge direct samples on that clock. A replica that does
not answer, answers with an error or without the model's counters gets its error instead of a sample:
the caller falls back to Prometheus for its service.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping

import httpx

from foresail.scaling.counters import PodSample
from foresail.scaling.samples import METRIC_NAMES, Row, pod_samples

__all__ = ["ReplicaMetrics"]

_WANTED = frozenset(METRIC_NAMES)
_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?[0-9]+)?\s*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _labels(raw: str) -> dict[str, str]:
    out, pos = {}, 0
    while pos < len(raw):
        m = _LABEL.match(raw, pos)
        if m is None:
            raise ValueError(f"bad labels {{{raw}}}")
        out[m[1]] = re.sub(r"\\[\\\"n]", lambda e: _UNESCAPE[e[0]], m[2])
        pos = m.end()
    return out


def parse(text: str, t: float) -> list[Row]:
    """The rows of Triton's metrics that ``scaling.samples`` reads, at time ``t``."""
    rows: list[Row] = []
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name not in _WANTED:
            continue  # comments, other metrics
        m = _SAMPLE.fullmatch(line)
        if m is None:
            raise ValueError(f"bad sample line {line[:120]!r}")
        rows.append((name, _labels(m[2] or ""), t, float(m[3])))  # float() reads Nan, +Inf
    return rows


class ReplicaMetrics:
    def __init__(
        self, timeout: float = 0.5, transport: httpx.AsyncBaseTransport | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.timeout = timeout
        self.clock = clock
        self.http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self.reads = 0

    async def close(self) -> None:
        await self.http.aclose()

    async def _one(self, url: str, model: str) -> PodSample | str:
        self.reads += 1
        try:
            resp = await asyncio.wait_for(self.http.get(url), self.timeout)
            t = self.clock()
            if resp.status_code != 200:
                return f"HTTP {resp.status_code}"
            samples = pod_samples(parse(resp.text, t), model)
        except (httpx.HTTPError, TimeoutError) as e:
            return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        except ValueError as e:
            return f"unreadable metrics: {e}"
        return samples[-1] if samples else f"no counters of model {model}"

    async def read(self, targets: Mapping[str, tuple[str, str]]) -> dict[str, PodSample | str]:
        """``targets``: pod -> (metrics URL, model); each pod's sample, or why there is none."""
        names = list(targets)
        got = await asyncio.gather(*(self._one(*targets[n]) for n in names))
        return dict(zip(names, got, strict=True))
