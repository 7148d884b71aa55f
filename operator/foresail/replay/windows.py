"""Small time windows (pure) for the replayed baselines: averages (KPA), maxima over a stabilization window (HPA).

Samples are (time in seconds, value); ``now`` is always an argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["TimeWindow"]


@dataclass
class TimeWindow:
    """Samples within the last ``span`` seconds (older ones are dropped when new ones arrive)."""

    span: float
    samples: list[tuple[float, float]] = field(default_factory=list)

    def add(self, t: float, value: float) -> None:
        if self.samples and t < self.samples[-1][0]:
            raise ValueError(f"sample at {t} is older than the last one at {self.samples[-1][0]}")
        self.samples.append((t, value))
        self._trim(t)

    def _trim(self, now: float) -> None:
        cut = now - self.span
        i = 0
        while i < len(self.samples) and self.samples[i][0] <= cut:
            i += 1
        if i:
            del self.samples[:i]

    def _live(self, now: float) -> Iterable[float]:
        cut = now - self.span
        return (v for t, v in self.samples if cut < t <= now)

    def average(self, now: float) -> float | None:
        vals = list(self._live(now))
        return sum(vals) / len(vals) if vals else None

    def maximum(self, now: float) -> float | None:
        vals = list(self._live(now))
        return max(vals) if vals else None
