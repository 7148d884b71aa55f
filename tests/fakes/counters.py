"""Triton counter samples of replicas at a steady load, for the signal tests."""

from __future__ import annotations

from collections.abc import Callable

from foresail.scaling.counters import NO_QUANTILES, PodSample, ServiceSignals
from foresail.scaling.signals import WINDOWS, FleetSignals, MetricsSource, WindowSignals

__all__ = ["measured", "quantiles", "steady"]


def quantiles(p99_ms: float) -> tuple[float, ...]:
    """A summary whose 0.99 quantile is ``p99_ms`` (0.5, 0.9, 0.95, 0.99, 0.999), in µs."""
    return tuple(1000.0 * p99_ms * f for f in (0.5, 0.8, 0.9, 1.0, 1.2))


def steady(
    t0: float,
    t1: float,
    rps: float,
    *,
    lat_ms: float = 20.0,
    wait_ms: float = 5.0,
    fail_rps: float = 0.0,
    pending: float | Callable[[float], float] = 0.0,
    executing: float = 0.0,
    p99_ms: float | None = 30.0,
    start: float = 0.0,
    step: float = 1.0,
) -> list[PodSample]:
    """Samples every ``step`` s from t0 to t1 of a replica completing ``rps`` (counters from ``start``)."""
    out = []
    k = 0
    while t0 + k * step <= t1 + 1e-9:
        t = t0 + k * step
        n = start + rps * (t - t0)
        q = pending(t) if callable(pending) else pending
        out.append(
            PodSample(
                t,
                success=n,
                failure=fail_rps * (t - t0),
                request_us=n * lat_ms * 1000.0,
                queue_us=n * wait_ms * 1000.0,
                compute_us=executing * (t - t0) * 1e6,
                pending=q,
                quantiles_us=quantiles(p99_ms) if p99_ms is not None else NO_QUANTILES,
            )
        )
        k += 1
    return out


def measured(
    arrival_rps: float, queued: float, p99_ms: float | None, *, age_s: float = 1.0, source: MetricsSource = MetricsSource.PROMETHEUS
) -> ServiceSignals:
    """Good signals of a service: every window alike."""
    windows = tuple(WindowSignals(w, arrival_rps, arrival_rps, 0.0, 0.0, 2.0, p99_ms, 20.0) for w in WINDOWS)
    fleet = FleetSignals(windows, queued=queued, in_flight=queued + 1.0, source=source)
    return ServiceSignals(fleet, sample_age_s=age_s, sample_interval_s=1.0, serving=2, p99_replicas=2)
