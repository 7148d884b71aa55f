"""What a shard reports while it runs (pure): throughput and latency over a recent window, and the snapshot.

``RecentWindow`` keeps (time, items, latency) of the requests finished in the last ``span`` seconds (and
at most ``max_samples`` of them); ``now`` is always an argument.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from foresail.api.evalreport import LatencyHistogram

__all__ = ["RecentWindow", "ShardProgress", "ShardSummary"]

@dataclass
class RecentWindow:
    span: float = 10.0
    """Seconds of history that count."""
    max_samples: int = 4096
    """At most this many requests are kept (memory stays bounded at any rate)."""
    _samples: deque[tuple[float, int, float | None]] = field(default_factory=deque, init=False, repr=False)

    def add(self, t: float, items: int, latency_ms: float | None = None) -> None:
        """A request finished at ``t`` with ``items`` results; ``latency_ms`` None for a failed one."""
        self._samples.append((t, items, latency_ms))
        while len(self._samples) > self.max_samples:
            self._samples.popleft()
        self._trim(t)

    def _trim(self, now: float) -> None:
        while self._samples and self._samples[0][0] <= now - self.span:
            self._samples.popleft()

    def rate(self, now: float, since: float) -> float:
        """Items per second over the window (or since ``since``, the start, when that is shorter)."""
        self._trim(now)
        elapsed = min(self.span, now - since)
        if elapsed <= 0:
            return 0.0
        return sum(n for _, n, _ in self._samples) / elapsed

    def latency_percentiles(self, now: float, qs: tuple[float, ...] = (50, 95, 99)) -> tuple[float | None, ...]:
        """Percentiles (ms) of the successful requests in the window; None each when there were none."""
        self._trim(now)
        lat = [x for _, _, x in self._samples if x is not None]
        if not lat:
            return tuple(None for _ in qs)
        return tuple(round(float(v), 3) for v in np.percentile(lat, qs))


@dataclass(frozen=True)
class ShardProgress:
    """A shard's progress, as handed to the ``report`` callback (every ~2 s and at the end)."""

    shard: int
    total: int
    done: int
    ok: int
    errors: int
    correct: int
    scored: int
    eps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    limit: int
    throttled_s: float
    finished: bool = False
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Every successful request of this attempt (not a window): the run's percentiles at the end."""

    def to_dict(self) -> dict[str, object]:
        """camelCase, for a status or an annotation."""
        return {_camel(k): v for k, v in asdict(self).items() if k != "latency"}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w.capitalize() for w in rest)


@dataclass(frozen=True)
class ShardSummary:
    """The outcome of ``run_shard``.

    ``resumed``: items with a result from an earlier run (not sent again). ``requests``/``retries``:
    inference calls this run. ``final_path``: ``shard-<i>.final.jsonl`` (None when stopped early).
    ``score``: ``summarize`` over every successful item of the shard (this run and earlier ones).
    """

    shard: int
    total: int
    done: int
    ok: int
    errors: int
    resumed: int
    requests: int
    retries: int
    score: dict[str, int | float | None]
    final_path: Path | None
    stopped: bool
    elapsed_s: float
    throttled_s: float
