"""The base rate and its forecast (pure): a level and a damped trend of the arrival rate.

``observe(t, rate)`` feeds one arrival-rate sample (the requests that arrived since the previous sample,
per second); level and trend come from Brown's double exponential smoothing (time constant ``tau_s``),
which follows a ramp without the lag a single average has. A short time constant follows ramps sooner, a
long one is less noisy: the error budget's replay chooses one of ``TAUS`` per service (``forecasts``
replays each over the service's history). ``at(t, horizon)`` is the rate expected at
``t + horizon``: the level plus the trend, damped over ``damp_s`` (a trend is believed for about a minute
and a half, not forever), never negative. A step the fast path sees re-anchors the level (``shift``): an
exponential average would otherwise take a minute to believe it. How far the forecast can be trusted is
not estimated here: the error budget
(``scaling.budget``) measures it on the service's own history, horizon by horizon.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["TAUS", "Forecaster", "forecasts"]

TAUS = (10.0, 20.0, 40.0, 80.0)  # time constants the error budget's replay chooses from


@dataclass
class Forecaster:
    """Brown's double exponential smoothing with time constant ``tau_s``: ``s1`` averages the rate, ``s2``
    averages ``s1``; on a linear trend each lags the one before by ``lag`` seconds (``dt (1 - a) / a`` for
    samples ``dt`` apart, ``tau_s`` in the limit), so the level is ``2 s1 - s2`` and the trend
    ``(s1 - s2) / lag``: a ramp is followed without lag."""

    tau_s: float = 20.0
    damp_s: float = 90.0
    s1: float | None = None
    s2: float | None = None
    last_t: float | None = None
    lag: float = 20.0

    @property
    def level(self) -> float | None:
        return None if self.s1 is None or self.s2 is None else max(0.0, 2.0 * self.s1 - self.s2)

    @property
    def trend(self) -> float:
        """rps per second."""
        return 0.0 if self.s1 is None or self.s2 is None else (self.s1 - self.s2) / max(self.lag, 1e-9)

    def observe(self, t: float, rate: float) -> None:
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(f"rate must be finite and >= 0, got {rate}")
        if self.s1 is None or self.s2 is None or self.last_t is None:
            self.s1 = self.s2 = rate
            self.last_t = t
            return
        dt = t - self.last_t
        self.last_t = t
        if dt <= 0:  # a repeated or earlier sample (a clock step): move on from here
            return
        a = 1.0 - math.exp(-dt / self.tau_s)
        self.lag = dt * (1.0 - a) / a
        self.s1 += a * (rate - self.s1)
        self.s2 += a * (self.s1 - self.s2)

    def shift(self, rate: float) -> None:
        """A step the fast path saw: the level is at least ``rate`` from now on (its trend is kept)."""
        level = self.level
        if level is not None and self.s1 is not None and self.s2 is not None and math.isfinite(rate) and rate > level:
            self.s1 += rate - level
            self.s2 += rate - level

    def at(self, t: float, horizon: float, trend: bool = True) -> float | None:
        """The rate expected at ``t + horizon`` (with ``trend`` False: the level, the base rate)."""
        level = self.level
        if level is None or self.last_t is None:
            return None
        if not trend:
            return level
        ahead = max(t + horizon - self.last_t, 0.0)
        return max(0.0, level + self.trend * self.damp_s * (1.0 - math.exp(-ahead / self.damp_s)))

    def to_dict(self) -> dict[str, float | None]:
        return {"s1": self.s1, "s2": self.s2, "time": self.last_t, "lag": round(self.lag, 4)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Forecaster:
        f = cls()
        s1, s2, t, lag = data.get("s1"), data.get("s2"), data.get("time"), data.get("lag")
        if all(isinstance(x, int | float) and math.isfinite(x) and x >= 0 for x in (s1, s2)) and isinstance(t, int | float):
            f.s1, f.s2, f.last_t = float(s1), float(s2), float(t)  # type: ignore[arg-type]
            f.lag = float(lag) if isinstance(lag, int | float) and math.isfinite(lag) and lag > 0 else f.tau_s
        return f


def forecasts(
    t: Sequence[float], rate: Sequence[float], shift: Sequence[float], tau_s: float, horizon: float, trend: bool
) -> npt.NDArray[np.float64]:
    """The forecast a ``tau_s`` forecaster fed ``rate`` (and re-anchored on ``shift`` where it is positive)
    would have made at each ``t`` for ``t + horizon``."""
    f = Forecaster(tau_s=tau_s)
    out = np.zeros(len(t))
    for i, (ti, ri, si) in enumerate(zip(t, rate, shift, strict=True)):
        f.observe(ti, ri)
        if si > 0:
            f.shift(si)
        out[i] = f.at(ti, horizon, trend) or 0.0
    return out
