"""What the decision remembers of a service between ticks (pure data), and what of it survives a restart.

Kept in ``status.scalingState`` (bounded: a few hundred numbers): the forecasters' averages, the
burst tracker's peaks, the hold window and its learned gaps, the learned saturated-throughput ratio, the outer
loop's budget factor and the last headroom. The arrival history the headroom is replayed over is not
kept there (it would be large and rewritten every tick): after a restart the autoscaler refills it from
Prometheus (``warm``), and until then the last headroom applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from foresail.scaling.budget import BudgetLoop, Headroom, History
from foresail.scaling.bursts import BurstTracker, HoldWindow
from foresail.scaling.capacity import RATIO_BOUNDS, SaturationLearner
from foresail.scaling.forecast import TAUS, Forecaster

__all__ = ["DecisionState"]


@dataclass
class DecisionState:
    forecasters: list[Forecaster] = field(default_factory=lambda: [Forecaster(tau_s=tau) for tau in TAUS])
    history: History = field(default_factory=History)
    bursts: BurstTracker = field(default_factory=BurstTracker)
    hold: HoldWindow = field(default_factory=HoldWindow)
    saturation: SaturationLearner = field(default_factory=SaturationLearner)
    loop: BudgetLoop = field(default_factory=BudgetLoop)
    headroom: Headroom | None = None
    headroom_at: float | None = None  # when the headroom was last replayed
    last_t: float | None = None  # the last tick with valid signals
    last_ready: int | None = None  # replicas ready then
    fast_until: float | None = None  # the fast path acts at 100% of the incoming capacity until then
    metrics_bad_since: float | None = None

    def forecaster(self, tau_s: float) -> Forecaster:
        """The forecaster with time constant ``tau_s`` (the nearest one kept)."""
        return min(self.forecasters, key=lambda f: abs(f.tau_s - tau_s))

    def observe(self, t: float, rate: float) -> None:
        for f in self.forecasters:
            f.observe(t, rate)

    def warm(self, points: list[tuple[float, float]], keep_s: float) -> None:
        """Refill the history and the forecasters from past arrival rates (e.g. Prometheus, after a restart).
        A history that arrives after live samples began goes before them; the forecasters, which follow the
        live rates already, are left as they are."""
        if self.history.t:
            self.history.prepend(points, keep_s)
            return
        for t, rate in points:
            if not (math.isfinite(rate) and rate >= 0) or (self.history.t and t <= self.history.t[-1]):
                continue
            self.observe(t, rate)
            self.history.add(t, rate, 0.0, 0.0, 0.0, keep_s)

    def to_dict(self) -> dict[str, object]:
        """What survives an operator restart (``status.scalingState``)."""
        hr = self.headroom
        return {
            "forecast": [f.to_dict() for f in self.forecasters],
            "bursts": self.bursts.to_dict(),
            "hold": self.hold.to_dict(),
            "capacityRatio": round(self.saturation.ratio, 4),
            "budget": self.loop.to_dict(),
            "headroom": None if hr is None else {"multiplier": round(hr.multiplier, 4), "tauSeconds": hr.tau_s, "holdSeconds": round(hr.hold_s, 2),
                                                 "burstRps": round(hr.burst_rps, 3), "lateShare": round(hr.late_share, 6),
                                                 "floor": round(hr.floor, 6), "samples": hr.samples, "spanSeconds": round(hr.span_s, 1)},
            "metricsBadSince": self.metrics_bad_since,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> DecisionState:
        """The state kept in status; anything missing or malformed starts afresh."""
        st = cls()
        if isinstance(fs := data.get("forecast"), list):
            for f, saved in zip(st.forecasters, fs, strict=False):
                if isinstance(saved, dict):
                    g = Forecaster.from_dict(saved)
                    f.s1, f.s2, f.last_t, f.lag = g.s1, g.s2, g.last_t, g.lag if g.s1 is not None else f.tau_s
        if isinstance(b := data.get("bursts"), dict):
            st.bursts = BurstTracker.from_dict(b)
        st.hold = HoldWindow.from_dict(data.get("hold"))
        ratio = data.get("capacityRatio")
        if isinstance(ratio, int | float) and math.isfinite(ratio):
            st.saturation.ratio = min(max(float(ratio), RATIO_BOUNDS[0]), RATIO_BOUNDS[1])
        if isinstance(loop := data.get("budget"), dict):
            st.loop = BudgetLoop.from_dict(loop)
        hr = data.get("headroom")
        if isinstance(hr, dict) and isinstance(m := hr.get("multiplier"), int | float) and math.isfinite(m) and m > 0:
            st.headroom = Headroom(float(m), _num(hr.get("tauSeconds")) or TAUS[1], _num(hr.get("holdSeconds")), _num(hr.get("burstRps")),
                                   _num(hr.get("lateShare")), _num(hr.get("floor")), int(_num(hr.get("samples"))), _num(hr.get("spanSeconds")))
        bad = data.get("metricsBadSince")
        st.metrics_bad_since = float(bad) if isinstance(bad, int | float) else None
        return st


def _num(x: object) -> float:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else 0.0
