"""What a policy sees (pure): Prometheus-like scrapes of the fleet's counters turned into windowed signals.

The simulator scrapes cumulative counters every ``scrape_s`` (arrivals, completions, rejections, requests
that started executing and their summed queue wait) and two gauges (queued and executing requests), plus a
histogram of completed requests' latencies with fine log-spaced buckets. At a tick the policy gets, for each
window (2 s, 10 s, 60 s and the rate window), rates from the difference of the newest scrape and the one a
window earlier, exactly as ``rate()`` / ``increase()`` over a range would:

* completions, rejections, in-flight growth (queued + executing), and arrivals = completions + rejections
  + in-flight growth (what Triton's counters show; it equals the requests that arrived);
* mean queue wait of the requests that started executing in the window;
* p99 request-weighted across the fleet, from the histogram (``histogram_quantile``-like interpolation,
  buckets 2.5% apart), of the requests completed in the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foresail.scaling.signals import WINDOWS, WindowSignals

__all__ = [
    "BUCKETS",
    "COUNTERS",
    "WINDOWS",
    "PolicyView",
    "WindowSignals",
    "bucket_of",
    "histogram_p99",
    "view_from_obs",
    "view_from_scrapes",
]

# counter columns of a scrape: cumulative counters, then gauges
C_ARRIVED, C_COMPLETED, C_REJECTED, C_STARTED, C_WAIT_S, G_QUEUED, G_EXECUTING = range(7)
COUNTERS = 7
LO_MS = 0.1
RATIO = 1.025
LOG_RATIO = math.log(RATIO)
BUCKETS = int(math.log(3_600_000.0 / LO_MS) / LOG_RATIO) + 2


def bucket_of(lat_ms: float) -> int:
    """Histogram bucket of a latency (the compiled core computes the same expression)."""
    if lat_ms < LO_MS:
        return 0
    k = int(math.log(lat_ms / LO_MS) / LOG_RATIO)
    return min(k, BUCKETS - 1)


def histogram_p99(counts: npt.NDArray[np.int64], q: float = 0.99) -> float:
    """Nearest-rank quantile interpolated within its bucket; 0.0 for an empty histogram."""
    total = int(counts.sum())
    if total <= 0:
        return 0.0
    rank = math.ceil(q * total)
    cum = np.cumsum(counts)
    k = int(np.searchsorted(cum, rank))
    before = int(cum[k - 1]) if k > 0 else 0
    lo = LO_MS * math.pow(RATIO, k) if k > 0 else 0.0
    hi = LO_MS * math.pow(RATIO, k + 1)
    return lo + (hi - lo) * (rank - before) / max(int(counts[k]), 1)


@dataclass(frozen=True)
class PolicyView:
    """One tick's observation. The first seven fields are the signals every policy has had (rate window
    arrivals, queue, p99); ``windows`` carries the 2 s / 10 s / 60 s signals."""

    now: float
    arrival_rps: float
    queue: float
    p99_ms: float
    ready: int
    starting: int
    current: int
    in_flight: float = 0.0
    windows: tuple[WindowSignals, ...] = ()

    def window(self, seconds: float) -> WindowSignals:
        for w in self.windows:
            if w.window_s == seconds:
                return w
        raise KeyError(f"no {seconds:g} s window; have {[w.window_s for w in self.windows]}")


def _window(
    w: float,
    t_new: float,
    new: npt.NDArray[np.float64],
    h_new: npt.NDArray[np.int64],
    t_old: float,
    old: npt.NDArray[np.float64],
    h_old: npt.NDArray[np.int64],
) -> WindowSignals:
    span = t_new - t_old
    if span <= 0:
        return WindowSignals(w, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    d = new - old
    growth = (new[G_QUEUED] + new[G_EXECUTING] - old[G_QUEUED] - old[G_EXECUTING]) / span
    done, rej = d[C_COMPLETED] / span, d[C_REJECTED] / span
    wait = 1000.0 * d[C_WAIT_S] / d[C_STARTED] if d[C_STARTED] > 0 else 0.0
    return WindowSignals(w, float(done + rej + growth), float(done), float(rej), float(growth), float(wait), histogram_p99(h_new - h_old))


def view_from_obs(
    now: float, obs: npt.NDArray[np.float64], queue: float, executing: float, ready: int, starting: int, current: int
) -> PolicyView:
    """The view from the compiled core's observation rows (``WINDOWS``, then the rate window; columns
    arrivals, completions, rejections, in-flight growth, mean queue wait, p99)."""
    rows = obs.tolist()
    sigs = tuple(WindowSignals(w, *row) for w, row in zip(WINDOWS, rows, strict=False))
    rate = rows[-1]
    return PolicyView(now, rate[0], queue, rate[5], ready, starting, current, in_flight=queue + executing, windows=sigs)


def view_from_scrapes(
    now: float,
    scrape_at: list[float] | npt.NDArray[np.float64],
    counters: npt.NDArray[np.float64],
    hists: npt.NDArray[np.int64],
    newest: int,
    scrape_s: float,
    rate_window_s: float,
    ready: int,
    starting: int,
    current: int,
) -> PolicyView:
    """The view at ``now`` from scrape ``newest`` (rows of ``counters``/``hists`` indexed modulo their length,
    a ring) and the scrapes a window earlier (the oldest available early in a run)."""
    ring = len(counters)
    k_new = newest % ring
    new, h_new, t_new = counters[k_new], hists[k_new], float(scrape_at[k_new])
    sigs: list[WindowSignals] = []
    for w in (*WINDOWS, rate_window_s):
        back = min(round(w / scrape_s), newest)
        k_old = (newest - back) % ring
        sigs.append(_window(w, t_new, new, h_new, float(scrape_at[k_old]), counters[k_old], hists[k_old]))
    rate = sigs[-1]
    queue = float(new[G_QUEUED])
    return PolicyView(
        now,
        rate.arrival_rps,
        queue,
        0.0 if rate.p99_ms is None else rate.p99_ms,  # the simulator's histograms: 0.0 when empty, as ever
        ready,
        starting,
        current,
        in_flight=queue + float(new[G_EXECUTING]),
        windows=tuple(sigs[: len(WINDOWS)]),
    )
