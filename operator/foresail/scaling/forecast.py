"""Arrival-rate forecaster (pure): Holt's linear trend, a daily profile once learned, an upper bound.

``observe(t, rate)`` feeds one sample per tick; ``upper(t, horizon, q)`` returns the rate to plan
for at ``t + horizon``: the point forecast plus the q-quantile of recent one-step errors scaled by
sqrt(steps ahead). The daily profile (additive, 5-minute bins) contributes only for bins seen on two
or more distinct days, so a fresh service is forecast from level and trend alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from foresail.scaling.coldstart import percentile

__all__ = ["Forecaster"]

DAY = 86_400.0
BIN = 300.0


@dataclass
class Forecaster:
    alpha: float = 0.5  # level smoothing
    beta: float = 0.1  # trend smoothing (per second)
    season_gamma: float = 0.4  # each 5-minute bin is updated once a day
    errors_kept: int = 120
    level: float | None = None
    trend: float = 0.0  # rate change per second
    last_t: float | None = None
    errors: list[float] = field(default_factory=list)
    season: dict[int, float] = field(default_factory=dict)
    season_days: dict[int, list[int]] = field(default_factory=dict)

    def _bin(self, t: float) -> int:
        return int((t % DAY) // BIN)

    def _seasonal(self, t: float) -> float:
        b = self._bin(t)
        return self.season.get(b, 0.0) if len(self.season_days.get(b, [])) >= 2 else 0.0

    def point(self, t: float) -> float | None:
        if self.level is None or self.last_t is None:
            return None
        return max(0.0, self.level + self.trend * (t - self.last_t) + self._seasonal(t))

    def observe(self, t: float, rate: float) -> None:
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(f"rate must be finite and >= 0, got {rate}")
        if self.level is None or self.last_t is None:
            self.level, self.last_t = rate, t
            return
        dt = t - self.last_t
        if dt <= 0:
            return
        predicted = self.point(t)
        if predicted is not None:
            self.errors.append(rate - predicted)
            del self.errors[: -self.errors_kept]
        deseason = rate - self._seasonal(t)
        prev_level = self.level
        self.level = self.alpha * deseason + (1 - self.alpha) * (self.level + self.trend * dt)
        self.trend = self.beta * (self.level - prev_level) / dt + (1 - self.beta) * self.trend
        b = self._bin(t)
        resid = rate - self.level
        self.season[b] = self.season_gamma * resid + (1 - self.season_gamma) * self.season.get(b, resid)
        day = int(t // DAY)
        days = self.season_days.setdefault(b, [])
        if day not in days:
            days.append(day)
            del days[:-7]
        self.last_t = t

    def upper(self, t: float, horizon: float, q: float, tick: float) -> float | None:
        """Rate to plan for at ``t + horizon``: point forecast + q-quantile of errors x sqrt(steps)."""
        p = self.point(t + horizon)
        if p is None:
            return None
        if len(self.errors) < 5:
            return p
        steps = max(1.0, horizon / max(tick, 1e-9))
        err = percentile(self.errors, 100.0 * q)
        return max(0.0, p + max(0.0, err) * math.sqrt(steps))
