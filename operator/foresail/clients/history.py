"""A real service's arrival-rate history from Prometheus (prometheus-api-client), for replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_api_client import PrometheusConnect

from foresail.replay.traces import Arrivals, profile_from_rates

__all__ = ["arrivals_from_prometheus"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _seconds(since: str) -> int:
    if not since or since[-1] not in _UNITS or not since[:-1].isdigit():
        raise ValueError(f"--since {since!r}: expected a number and one of {sorted(_UNITS)} (e.g. 7d)")
    return int(since[:-1]) * _UNITS[since[-1]]


def arrivals_from_prometheus(url: str, service: str, since: str, step_s: int = 15, seed: int = 0) -> Arrivals:
    """Poisson arrivals following the service's recorded arrival rate over ``since``."""
    ns, _, name = service.partition("/")
    if not ns or not name:
        raise ValueError(f"--service {service!r}: expected NAMESPACE/NAME")
    prom = PrometheusConnect(url=url, disable_ssl=True)
    end = datetime.now(UTC)
    query = (
        f'sum(rate({{__name__=~"nv_inference_request_(success|failure)", namespace="{ns}", '
        f'foresail_dev_inferenceservice="{name}"}}[1m]))'
    )
    data = prom.custom_query_range(query, start_time=end - timedelta(seconds=_seconds(since)), end_time=end, step=str(step_s))
    if not data:
        raise ValueError(f"Prometheus at {url} has no arrival-rate history for {service}")
    points = [(float(t), float(v)) for t, v in data[0]["values"]]
    return profile_from_rates(points, seed=seed)
