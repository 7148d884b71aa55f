"""How hard an EvalJob may push (pure; time is always an argument).

- ``AIMDLimiter``: the number of requests in flight. Additive increase (about +1 per ``limit`` successes
  while latency is under the target), multiplicative decrease on errors and on latency over the target, at
  most once per ``cooldown`` seconds: one overload fails many in-flight requests at once, and that is one
  congestion signal, not twenty. ``set_pressure`` yields to production traffic on top of that.
- ``production_pressure``: the target service's production signals -> a pressure in [0, 1].
- ``TokenBucket``: an optional requests-per-second cap (GCRA: reservations, so concurrent tasks share it).
"""

from __future__ import annotations

import math

__all__ = ["AIMDLimiter", "TokenBucket", "production_pressure"]


class AIMDLimiter:
    """Adaptive concurrency limit.

    ``min_limit``/``max_limit``: bounds of the limit (>= 1). ``initial``: the starting limit (default
    ``min_limit``: start gently, grow on evidence). ``latency_target_ms``: a request slower than this counts
    as congestion (None: only errors do). ``backoff``: the factor of a decrease, in (0, 1). ``cooldown``:
    seconds after a decrease during which further congestion signals do not decrease again.

    Pressure (``set_pressure``) scales the limit down without forgetting it: the effective limit is
    ``max(min_limit, floor(base * (1 - factor)))``. While under pressure the base does not grow (a limit
    never tried at full load must not be the one that applies the moment production traffic calms down).
    """

    def __init__(
        self,
        min_limit: int,
        max_limit: int,
        initial: int | None = None,
        latency_target_ms: float | None = None,
        backoff: float = 0.7,
        cooldown: float = 1.0,
    ) -> None:
        if min_limit < 1:
            raise ValueError(f"min_limit = {min_limit}, must be >= 1")
        if max_limit < min_limit:
            raise ValueError(f"max_limit = {max_limit}, must be >= min_limit ({min_limit})")
        start = min_limit if initial is None else initial
        if not min_limit <= start <= max_limit:
            raise ValueError(f"initial = {initial}, must be in [{min_limit}; {max_limit}] range")
        if latency_target_ms is not None and not latency_target_ms > 0:
            raise ValueError(f"latency_target_ms = {latency_target_ms}, must be > 0")
        if not 0 < backoff < 1:
            raise ValueError(f"backoff = {backoff}, must be in (0; 1) range")
        if not cooldown >= 0:
            raise ValueError(f"cooldown = {cooldown}, must be >= 0")
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.latency_target_ms = latency_target_ms
        self.backoff = backoff
        self.cooldown = cooldown
        self._window = float(start)
        self._last_decrease: float | None = None
        self._pressure = 0.0
        self._throttled_since: float | None = None
        self._throttled_total = 0.0

    @property
    def base_limit(self) -> int:
        """The limit learned from successes and errors, before pressure."""
        return int(self._window + 1e-9)  # ten steps of 1/10 make 10.999999999999998

    @property
    def limit(self) -> int:
        """Requests that may be in flight now."""
        return max(self.min_limit, math.floor(self.base_limit * (1.0 - self._pressure) + 1e-9))

    @property
    def pressure(self) -> float:
        return self._pressure

    def _decrease(self, now: float) -> None:
        if self._last_decrease is not None and now - self._last_decrease < self.cooldown:
            return
        self._window = max(float(self.min_limit), self._window * self.backoff)
        self._last_decrease = now

    def on_success(self, latency_ms: float, now: float) -> None:
        """A request answered after ``latency_ms``."""
        if self.latency_target_ms is not None and not latency_ms <= self.latency_target_ms:
            self._decrease(now)
        elif self._pressure == 0.0:
            self._window = min(float(self.max_limit), self._window + 1.0 / max(self.base_limit, 1))

    def on_error(self, now: float) -> None:
        """A request failed or timed out."""
        self._decrease(now)

    def set_pressure(self, factor: float, now: float) -> None:
        """Yield to production traffic: 0 = none, 1 = back off to ``min_limit``. NaN counts as 1 (the safe side)."""
        f = 1.0 if math.isnan(factor) else min(max(factor, 0.0), 1.0)
        if f > 0 and self._throttled_since is None:
            self._throttled_since = now
        elif f == 0 and self._throttled_since is not None:
            self._throttled_total += max(0.0, now - self._throttled_since)
            self._throttled_since = None
        self._pressure = f

    def throttled_seconds(self, now: float) -> float:
        """Time spent so far with a pressure above 0."""
        running = max(0.0, now - self._throttled_since) if self._throttled_since is not None else 0.0
        return self._throttled_total + running


def _ramp(x: float, start: float, full: float) -> float:
    return min(max((x - start) / (full - start), 0.0), 1.0)


def production_pressure(
    queue_per_replica: float | None,
    p99_ms: float | None,
    slo_ms: float | None,
    start_fraction: float = 0.6,
    full_fraction: float = 0.9,
    queue_start: float = 1.0,
    queue_full: float = 4.0,
) -> float:
    """How much an EvalJob should yield, from the target service's production queue and tail latency.

    0 while p99 is under ``start_fraction`` x SLO and the queue per replica under ``queue_start``; 1 from
    ``full_fraction`` x SLO or ``queue_full`` on; linear in between; the larger of the two. Missing or NaN
    signals give 1.0: without evidence that production is fine, evaluation backs off.
    """
    if not 0 <= start_fraction < full_fraction:
        raise ValueError(f"start_fraction = {start_fraction}, full_fraction = {full_fraction}: need 0 <= start < full")
    if not 0 <= queue_start < queue_full:
        raise ValueError(f"queue_start = {queue_start}, queue_full = {queue_full}: need 0 <= start < full")
    signals = (queue_per_replica, p99_ms, slo_ms)
    if any(x is None or math.isnan(x) for x in signals):
        return 1.0
    assert queue_per_replica is not None and p99_ms is not None and slo_ms is not None
    if not slo_ms > 0:
        return 1.0
    return max(_ramp(p99_ms / slo_ms, start_fraction, full_fraction), _ramp(queue_per_replica, queue_start, queue_full))


class TokenBucket:
    """At most ``rate`` requests per second with bursts of ``burst`` (GCRA).

    ``reserve(now)`` takes the next slot and returns how long to wait before using it, so concurrent
    callers never share a slot: in any interval of T seconds at most ``rate * T + burst`` requests start.
    """

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate = {rate}, must be a finite number > 0")
        if not burst >= 1:
            raise ValueError(f"burst = {burst}, must be >= 1")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._tat: float | None = None  # theoretical arrival time of the next request

    def reserve(self, now: float) -> float:
        tat = now if self._tat is None else max(self._tat, now)
        delay = max(0.0, tat - (self.burst - 1.0) * self._interval - now)
        self._tat = tat + self._interval
        return delay
