"""The fleet's latency quantile from the replicas' own summaries (pure).

Triton 2.51 exports request latency only as a per-replica *summary* (``nv_inference_request_summary_us``,
``--metrics-config summary_latencies=true``): quantiles 0.5, 0.9, 0.95, 0.99 and 0.999 of the requests
that replica completed in the last 60 s (measured: a slow request leaves the quantiles 60 s after it
was observed). There is no request-latency histogram in 2.51 (``histogram_latencies`` adds only a
first-response histogram for decoupled models), so quantiles cannot be summed across replicas.

The fleet's quantile is taken from the *mixture* of the replicas' distributions: each replica's CDF is
the piecewise-linear curve through its quantile points (from 0 at 0 ms; past its 0.999 quantile the last
slope continues to 1), weighted by
the requests it completed in the window; the answer is where the weighted CDF reaches ``q``. For equal
replicas this is their own quantile; one slow replica serving 1% of the requests moves the fleet's p99
by its share of the tail, not to its own p99 (what a ``max`` over replicas would report). The
approximations, stated: each replica's summary covers its last 60 s, not exactly the window it is
weighted by; between quantile points the CDF is linear.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["QUANTILES", "mixture_quantile"]

QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)  # what Triton's summaries export


def _cdf(points: Sequence[tuple[float, float]], x: float, left: bool = False) -> float:
    """Piecewise-linear CDF through ``points`` ((latency, quantile), non-decreasing; from (0, 0), the last
    at quantile 1); ``left``: the limit from the left (where equal latencies make it jump)."""
    prev_x, prev_q = 0.0, 0.0
    for px, pq in points:
        if x < px or (left and x == px):
            return prev_q + (pq - prev_q) * (x - prev_x) / (px - prev_x) if px > prev_x else prev_q
        prev_x, prev_q = px, pq
    return 1.0


def mixture_quantile(replicas: Sequence[tuple[float, Sequence[float]]], q: float = 0.99) -> float | None:
    """The ``q`` quantile of the mixture of ``replicas``: (weight, latencies at ``QUANTILES``) each.

    Replicas with no weight or a non-finite quantile are left out; None when none is left."""
    curves: list[tuple[float, list[tuple[float, float]]]] = []
    for weight, values in replicas:
        if weight <= 0 or len(values) != len(QUANTILES) or not all(math.isfinite(v) and v >= 0 for v in values):
            continue
        pts: list[tuple[float, float]] = []
        for v, qq in zip(values, QUANTILES, strict=True):
            pts.append((max(v, pts[-1][0]) if pts else v, qq))  # a summary's quantiles never decrease
        (x0, q0), (x1, q1) = pts[-2], pts[-1]
        pts.append((x1 + (x1 - x0) * (1.0 - q1) / (q1 - q0), 1.0))  # the last slope on to quantile 1
        curves.append((weight, pts))
    if not curves:
        return None
    total = sum(w for w, _ in curves)

    def cdf(x: float, left: bool = False) -> float:
        return sum(w * _cdf(pts, x, left) for w, pts in curves) / total

    # the mixture's CDF is linear between the union of the breakpoints (it may jump at one): find the
    # segment, interpolate
    xs = sorted({0.0, *(x for _, pts in curves for x, _ in pts)})
    lo_x, lo_f = xs[0], cdf(xs[0])
    for x in xs[1:]:
        below = cdf(x, left=True)
        if below >= q:
            return lo_x + (x - lo_x) * (q - lo_f) / (below - lo_f) if below > lo_f else lo_x
        lo_x, lo_f = x, cdf(x)
        if lo_f >= q:
            return x
    return xs[-1]
