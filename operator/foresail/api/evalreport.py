"""What a shard's progress report says about its run (pure), shared by the eval workers and the operator.

A report must stay small whatever the run (the progress ConfigMaps hold hundreds of them, 1 MiB each): the
run's latencies are a histogram of fixed log buckets (merged exactly across a shard's attempts and across
shards), its active time a few wall-clock spans (their union over all shards is the run's active time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["HIST_BUCKETS", "MAX_SPANS", "LatencyHistogram", "merge_spans", "span_seconds"]

HIST_PER_OCTAVE = 4  # bucket k holds latencies in [0.1 ms * 2**(k/4), 0.1 ms * 2**((k+1)/4)): +-9% at the midpoint
HIST_MIN_MS = 0.1
HIST_BUCKETS = 24 * HIST_PER_OCTAVE + 1  # 0.1 ms .. ~28 min; the last bucket holds everything longer
MAX_SPANS = 8


@dataclass
class LatencyHistogram:
    """Request latencies of a whole run in fixed log buckets: bounded size, merged exactly across attempts and
    shards (a percentile of the merge is the percentile of all requests, to the bucket's resolution)."""

    counts: dict[int, int] = field(default_factory=dict)

    @staticmethod
    def bucket(ms: float) -> int:
        if not ms > HIST_MIN_MS:
            return 0
        return min(HIST_BUCKETS - 1, int(math.log2(ms / HIST_MIN_MS) * HIST_PER_OCTAVE))

    def add(self, ms: float, n: int = 1) -> None:
        k = self.bucket(ms)
        self.counts[k] = self.counts.get(k, 0) + n

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        out = dict(self.counts)
        for k, c in other.counts.items():
            out[k] = out.get(k, 0) + c
        return LatencyHistogram(out)

    def total(self) -> int:
        return sum(self.counts.values())

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (ms): the geometric middle of the bucket holding it; None when empty."""
        n = self.total()
        if n == 0:
            return None
        rank = max(1, math.ceil(q / 100.0 * n))
        seen = 0
        for k in sorted(self.counts):
            seen += self.counts[k]
            if seen >= rank:
                return round(HIST_MIN_MS * 2 ** ((k + 0.5) / HIST_PER_OCTAVE), 3)
        raise AssertionError("unreachable")

    def encode(self) -> list[int]:
        """``[first bucket, count, count, ...]`` (dense from the first to the last non-empty bucket): compact JSON."""
        if not self.counts:
            return []
        lo, hi = min(self.counts), max(self.counts)
        return [lo, *(self.counts.get(k, 0) for k in range(lo, hi + 1))]

    @classmethod
    def decode(cls, data: list[int] | None) -> LatencyHistogram:
        if not data:
            return cls()
        lo = int(data[0])
        return cls({lo + i: int(c) for i, c in enumerate(data[1:]) if c and 0 <= lo + i < HIST_BUCKETS})


def merge_spans(spans: list[tuple[float, float]], cap: int = MAX_SPANS) -> list[tuple[float, float]]:
    """Time intervals (unix seconds) sorted and merged where they overlap; at most ``cap``: beyond it the two
    closest neighbours are joined (a little idle time counted as active, never active time lost)."""
    out: list[tuple[float, float]] = []
    for a, b in sorted((a, b) for a, b in spans if b >= a):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    while len(out) > cap:
        i = min(range(len(out) - 1), key=lambda j: out[j + 1][0] - out[j][1])
        out[i : i + 2] = [(out[i][0], out[i + 1][1])]
    return out


def span_seconds(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of ``spans`` (the run's active time over all shards)."""
    return sum(b - a for a, b in merge_spans(spans, cap=len(spans) or 1))
