"""The scale benchmark's load model (pure): each service's request rate over time, and what a replica's
counters do at a rate.

**Rates.** Every service gets its own seeded stream (``random.Random(f"{seed}/{namespace}/{name}")``), so
adding services never changes the others' traffic. Its base rate sizes it at ``replicas`` replicas at
``TARGET_UTILISATION`` of ``capacity_rps`` each (x a log-normal spread of 25%); after ``steady_s`` seconds of
constant load (the benchmark's "nothing changes" phase) the rate steps to a new multiple of the base every
``period_s`` seconds (+-50%, the first step at a random offset so that services change at different times).
A step always moves to another level of ``LEVELS``, so every step is a demand change the operator should act on.

**A replica at a rate** (``serve``): M/M/1 with service rate ``capacity_rps``: utilisation u, mean time in
the server ``1/(mu (1-u))`` split into compute ``1/mu`` and queue wait, the sojourn's quantiles those of an
exponential with that mean (never below the compute time), the queue by Little's law. Above ``MAX_UTILISATION``
the replica completes at that utilisation and the excess fails (as Triton's queue-policy timeouts,
``reason="REJECTED"``). So latency answers rate / replicas, and the operator sees it through the summary.

**Counters** (``advance``): Triton's cumulative counters of one replica moved on by ``dt`` seconds at a
served rate; all values float internally, the exposition floors the counts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

__all__ = [
    "LEVELS",
    "MAX_UTILISATION",
    "QUANTILES",
    "TARGET_UTILISATION",
    "Counters",
    "Served",
    "ServiceLoad",
    "advance",
    "plan_service",
    "serve",
    "wanted_replicas",
]

Key = tuple[str, str]
LEVELS = (0.4, 0.7, 1.0, 1.5, 2.0)  # multiples of a service's base rate its steps move between
TARGET_UTILISATION = 0.5  # the base rate keeps ``replicas`` replicas this busy
MAX_UTILISATION = 0.95  # above this a replica fails the excess
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)  # Triton's summary quantiles (scaling.latency.QUANTILES)


@dataclass(frozen=True)
class ServiceLoad:
    """One service's arrivals: ``base_rps`` times the multiplier of the last step at or before t (seconds
    from the run's start); 1.0 before the first step."""

    base_rps: float
    steps: tuple[tuple[float, float], ...]  # (t, multiplier), increasing t

    def multiplier(self, t: float) -> float:
        m = 1.0
        for at, level in self.steps:
            if at > t:
                break
            m = level
        return m

    def rate(self, t: float) -> float:
        return self.base_rps * self.multiplier(t)

    def changes(self) -> list[tuple[float, float, float]]:
        """(t, rate before, rate after) of every step."""
        out, before = [], self.base_rps
        for at, level in self.steps:
            after = self.base_rps * level
            out.append((at, before, after))
            before = after
        return out


def plan_service(
    key: Key, seed: int, *, replicas: int, capacity_rps: float, steady_s: float, duration_s: float, period_s: float
) -> ServiceLoad:
    """The seeded arrivals of service ``key`` over ``duration_s`` seconds (see the module docstring)."""
    rng = random.Random(f"{seed}/{key[0]}/{key[1]}")
    base = replicas * capacity_rps * TARGET_UTILISATION * math.exp(rng.gauss(0.0, 0.25))
    steps: list[tuple[float, float]] = []
    t, level = steady_s + rng.uniform(0.0, period_s), 1.0
    while t < duration_s:
        level = rng.choice([x for x in LEVELS if x != level])
        steps.append((round(t, 3), level))
        t += period_s * rng.uniform(0.5, 1.5)
    return ServiceLoad(round(base, 3), tuple(steps))


@dataclass(frozen=True)
class Served:
    """What one replica does at an arrival rate: per second, and its latency now (ms)."""

    completed_rps: float
    failed_rps: float
    utilisation: float
    compute_ms: float
    queue_ms: float
    pending: float
    quantiles_ms: tuple[float, ...]  # at QUANTILES; NaN when idle (Triton's summary with nothing in 60 s)


def serve(rate_rps: float, capacity_rps: float) -> Served:
    """One replica (M/M/1, service rate ``capacity_rps``) at ``rate_rps`` arrivals per second."""
    if capacity_rps <= 0:
        raise ValueError("capacity_rps must be > 0")
    rate = max(0.0, rate_rps)
    u = min(rate / capacity_rps, MAX_UTILISATION)
    completed = min(rate, MAX_UTILISATION * capacity_rps)
    compute_ms = 1000.0 / capacity_rps
    sojourn_ms = compute_ms / (1.0 - u)
    queue_ms = sojourn_ms - compute_ms
    if completed <= 0:
        qs = tuple(math.nan for _ in QUANTILES)
    else:
        qs = tuple(max(compute_ms, -math.log(1.0 - q) * sojourn_ms) for q in QUANTILES)
    return Served(completed, rate - completed, u, compute_ms, queue_ms, completed * queue_ms / 1000.0, qs)


@dataclass(frozen=True)
class Counters:
    """One replica's Triton counters (cumulative) and gauges."""

    success: float = 0.0
    failure: float = 0.0
    inference_count: float = 0.0
    exec_count: float = 0.0
    request_us: float = 0.0
    queue_us: float = 0.0
    compute_input_us: float = 0.0
    compute_infer_us: float = 0.0
    compute_output_us: float = 0.0
    pending: float = 0.0
    summary_count: float = 0.0
    summary_sum_us: float = 0.0
    quantiles_us: tuple[float, ...] = tuple(math.nan for _ in QUANTILES)


def advance(c: Counters, dt: float, s: Served) -> Counters:
    """``c`` moved on by ``dt`` seconds at ``s`` (a served rate held over the interval)."""
    if dt <= 0:
        return replace(c, pending=s.pending, quantiles_us=_us(s.quantiles_ms))
    done = s.completed_rps * dt
    batch = 1.0 + 3.0 * s.utilisation  # dynamic batching packs more per execution when busy
    compute_us = done * s.compute_ms * 1000.0
    request_us = done * (s.compute_ms + s.queue_ms) * 1000.0
    return Counters(
        success=c.success + done,
        failure=c.failure + s.failed_rps * dt,
        inference_count=c.inference_count + done,
        exec_count=c.exec_count + done / batch,
        request_us=c.request_us + request_us,
        queue_us=c.queue_us + done * s.queue_ms * 1000.0,
        compute_input_us=c.compute_input_us + 0.05 * compute_us,
        compute_infer_us=c.compute_infer_us + 0.9 * compute_us,
        compute_output_us=c.compute_output_us + 0.05 * compute_us,
        pending=s.pending,
        summary_count=c.summary_count + done,
        summary_sum_us=c.summary_sum_us + request_us,
        quantiles_us=_us(s.quantiles_ms),
    )


def _us(ms: Sequence[float]) -> tuple[float, ...]:
    return tuple(x * 1000.0 for x in ms)


def wanted_replicas(rate_rps: float, capacity_rps: float, slo_p99_ms: float, max_replicas: int) -> int:
    """Replicas that keep the model's p99 within the SLO at ``rate_rps`` (``serve``: p99 = ln(100) / mu / (1-u)),
    1 to ``max_replicas``: what a step of the rate asks of the autoscaler."""
    compute_ms = 1000.0 / capacity_rps
    u_max = max(0.05, 1.0 - math.log(100.0) * compute_ms / slo_p99_ms)
    return max(1, min(max_replicas, math.ceil(rate_rps / (capacity_rps * u_max))))
