"""Bursts and idle capacity (pure): what the fast path and the scale-down rule learn from the arrivals.

``BurstTracker`` follows the 2 s arrival rate through quiet and busy phases. Quiet: fewer arrivals than
the quiet threshold. A burst starts when, after a quiet phase, the 2 s rate reaches the onset threshold or
requests queue (the queue gauge shows a burst before a rate window does); it ends when the service is
quiet again. It keeps the peaks of past bursts: a burst onset is sized for a quantile of them, because a
burst's first two seconds understate it.

``HoldWindow`` is the scale-down rule's memory: the replicas each tick wanted, before the replica bounds
(so a changed minReplicas or maxReplicas applies at once), kept as a decreasing staircase (each step: a
replica count and the last time that many were wanted) so the most wanted within any recent span is at
hand. When a burst onset wants a count again (a burst the forecast could not see coming), the time since
it was last wanted is a gap in that capacity's use: between bursts. The hold learns the gaps'
distribution. Capacity is released only when nothing wanted it for the hold (rent or buy: keeping an idle
replica costs its GPU-seconds; giving it back costs a cold start, and the requests late in it, when it is
wanted again without warning).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["BurstTracker", "HoldWindow", "quantile"]

KEEP_PEAKS = 32
KEEP_GAPS = 32
KEEP_HOLD = 128


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile (q in [0, 1]); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * min(max(q, 0.0), 1.0)
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


@dataclass
class BurstTracker:
    busy: bool = False
    since: float | None = None  # when the current phase started
    peak: float = 0.0  # highest 2 s rate of the current burst
    peaks: list[float] = field(default_factory=list)  # past bursts' peaks, rps (newest last)

    def observe(self, now: float, rate_2s: float, queued: float, quiet_rps: float, onset_rps: float) -> bool:
        """Follow one tick; True at a burst onset."""
        if self.since is None:  # the first tick: start in the phase the rate says
            self.busy, self.since, self.peak = rate_2s >= quiet_rps, now, rate_2s
            return False
        if not self.busy:
            if rate_2s >= onset_rps or queued > max(1.0, 2.0 * quiet_rps):
                self.busy, self.since, self.peak = True, now, rate_2s
                return True
            return False
        self.peak = max(self.peak, rate_2s)
        if rate_2s < quiet_rps and queued <= 0:
            self.peaks = [*self.peaks, self.peak][-KEEP_PEAKS:]
            self.busy, self.since, self.peak = False, now, 0.0
        return False

    def level(self, q: float) -> float | None:
        """The rate a burst onset is sized for: the ``q`` quantile of past peaks (None before three bursts)."""
        return quantile(self.peaks, q) if len(self.peaks) >= 3 else None

    def to_dict(self) -> dict[str, object]:
        return {"busy": self.busy, "since": self.since, "peak": round(self.peak, 3), "peaks": [round(p, 3) for p in self.peaks]}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> BurstTracker:
        since, peak = data.get("since"), data.get("peak")
        return cls(
            busy=bool(data.get("busy", False)),
            since=float(since) if isinstance(since, int | float) else None,
            peak=float(peak) if isinstance(peak, int | float) else 0.0,
            peaks=_floats(data.get("peaks"))[-KEEP_PEAKS:],
        )


def _floats(xs: object) -> list[float]:
    if not isinstance(xs, list):
        return []
    return [float(x) for x in xs if isinstance(x, int | float) and math.isfinite(x) and x >= 0]


@dataclass
class HoldWindow:
    """(time, replicas wanted), values strictly decreasing in time, and the learned gaps in capacity use."""

    steps: list[tuple[float, int]] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)  # seconds capacity stood idle before a burst onset wanted it again

    def add(self, now: float, wanted: int, keep_s: float, learn_gaps_over_s: float | None = None) -> None:
        """Record a tick's want; with ``learn_gaps_over_s``, the longest idle among the steps it covers again
        (the top capacity's, idle since the last burst) is a gap, learned when longer than that."""
        if learn_gaps_over_s is not None:
            idle = [now - t for t, w in self.steps if w <= wanted and now - t < keep_s]
            if idle and max(idle) > learn_gaps_over_s:
                self.gaps = [*self.gaps, max(idle)][-KEEP_GAPS:]
        steps = [(t, w) for t, w in self.steps if w > wanted and now - keep_s < t <= now]
        self.steps = [*steps, (now, wanted)][-KEEP_HOLD:]

    def most(self, now: float, span_s: float) -> tuple[int, float] | None:
        """The most replicas wanted within ``span_s`` before ``now``, and when they were last wanted."""
        for t, w in self.steps:
            if now - span_s <= t <= now:
                return w, t
        return None

    def gap(self, q: float) -> float | None:
        """The ``q`` quantile of the learned gaps (None before three)."""
        return quantile(self.gaps, q) if len(self.gaps) >= 3 else None

    def to_dict(self) -> dict[str, object]:
        return {"steps": [[round(t, 3), w] for t, w in self.steps], "gaps": [round(g, 2) for g in self.gaps]}

    @classmethod
    def from_dict(cls, data: object) -> HoldWindow:
        steps: list[tuple[float, int]] = []
        raw = data.get("steps") if isinstance(data, dict) else None
        if isinstance(raw, list):
            for item in raw:
                if isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(x, int | float) for x in item):
                    steps.append((float(item[0]), int(item[1])))
        gaps = _floats(data.get("gaps")) if isinstance(data, dict) else []
        return cls(steps[-KEEP_HOLD:], gaps[-KEEP_GAPS:])
