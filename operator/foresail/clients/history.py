"""A real service's arrival-rate history from Prometheus, for ``foresail replay --from-prometheus``."""

from __future__ import annotations

import asyncio
import time

import httpx

from foresail.clients.promauth import PromAuth
from foresail.clients.prometheus import MetricsError, PromClient
from foresail.replay.traces import Arrivals, profile_from_rates

__all__ = ["arrivals_from_prometheus", "parse_since"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(since: str) -> int:
    """``7d`` -> seconds (units s, m, h, d, w)."""
    if not since or since[-1] not in _UNITS or not since[:-1].isdigit():
        raise ValueError(f"--since {since!r}: expected a number and one of {sorted(_UNITS)} (e.g. 7d)")
    return int(since[:-1]) * _UNITS[since[-1]]


def arrivals_from_prometheus(
    url: str,
    service: str,
    since: str,
    step_s: int = 15,
    seed: int = 0,
    transport: httpx.AsyncBaseTransport | None = None,
    auth: PromAuth | None = None,
) -> Arrivals:
    """Poisson arrivals following the service's recorded arrival rate (1-minute rate) over ``since``
    (``auth``: credentials and TLS from files; a missing file is a ValueError naming it)."""
    ns, _, name = service.partition("/")
    if not ns or not name:
        raise ValueError(f"--service {service!r}: expected NAMESPACE/NAME")
    seconds = parse_since(since)

    async def pull() -> list[tuple[float, float]]:
        prom = PromClient(url, rate_window="1m", timeout=30.0, transport=transport, auth=auth)
        try:
            end = time.time()
            return await prom.arrival_history(ns, name, end - seconds, end, step_s)  # chunked under the point limit
        finally:
            await prom.close()

    try:
        points = asyncio.run(pull())
    except MetricsError as e:
        raise ValueError(f"Prometheus at {url}: {e}") from e
    if not points:
        raise ValueError(f"Prometheus at {url} has no arrival-rate history for {service}")
    return profile_from_rates(points, seed=seed)
