"""Reads Triton replicas' own metrics endpoints (``http://POD_IP:8002/metrics``) directly: the live
signals' direct path, for clusters whose Prometheus scrapes too seldom for a 2 s window.

All replicas are read concurrently, each with a short timeout; the text exposition format is parsed by
``prometheus_client``'s parser into the same rows Prometheus' raw samples give (``scaling.samples``), time
stamped when the answer arrived. A replica that does not answer, answers with an error or without the
model's counters gets its error instead of a sample: the caller falls back to Prometheus for its service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

from foresail.scaling.counters import PodSample
from foresail.scaling.samples import METRIC_NAMES, Row, pod_samples

__all__ = ["ReplicaMetrics"]

_WANTED = frozenset(METRIC_NAMES)


def parse(text: str, t: float) -> list[Row]:
    """The rows of Triton's metrics that ``scaling.samples`` reads, at time ``t``."""
    return [
        (s.name, s.labels, t, float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in _WANTED
    ]


class ReplicaMetrics:
    def __init__(self, timeout: float = 0.5, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.timeout = timeout
        self.http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self.reads = 0

    async def close(self) -> None:
        await self.http.aclose()

    async def _one(self, url: str, model: str) -> PodSample | str:
        self.reads += 1
        try:
            resp = await asyncio.wait_for(self.http.get(url), self.timeout)
            t = time.time()
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
