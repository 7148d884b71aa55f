"""Figures of a run, the same for simulated and for recorded ones: replica-seconds (the integral of a replica
count over time), the value a sampled series held before a moment, reaction figures after a step or along a
ramp, the busiest window of a rate, and whether a simulation agrees with a cluster run. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from foresail.replay.sim import p99_by_window, recovery_s

__all__ = [
    "agreement",
    "busiest_window",
    "busiest_window_rps",
    "integrate",
    "reaction_figures",
    "share_within",
    "step_samples",
    "value_before",
]

Samples = Sequence[tuple[float, float]]


def integrate(samples: Samples, start: float, end: float) -> float:
    """Integral over ``[start, end]`` of a step function given as ``(time, value)`` samples: each value holds
    until the next sample (the last one forever); before the first sample the function is 0."""
    total = 0.0
    pts = sorted(samples)
    if not pts:
        return total
    for (t, v), (t_next, _) in zip(pts, [*pts[1:], (math.inf, 0.0)], strict=True):
        a, b = max(t, start), min(t_next, end)
        if b > a:
            total += v * (b - a)
    return total


def value_before(samples: Samples, t: float) -> int | None:
    """The last sampled value strictly before ``t`` (as a whole number); None when nothing was sampled before."""
    before = [v for s, v in sorted(samples) if s < t]
    return int(before[-1]) if before else None


def step_samples(initial: float, changes: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """A step function's samples from its value at time 0 and its later ``(time, value)`` changes."""
    return [(0.0, float(initial)), *((float(t), float(v)) for t, v in changes)]


def share_within(latencies_ms: Sequence[float], slo_ms: float) -> float:
    """The share of requests within the SLO (unserved ones, latency ``inf`` or NaN, are not); 0.0 without any."""
    return sum(1 for x in latencies_ms if x <= slo_ms) / len(latencies_ms) if latencies_ms else 0.0


def _round(x: float) -> float | None:
    return round(x, 1) if math.isfinite(x) else None


def reaction_figures(
    times: Sequence[float], latencies_ms: Sequence[float], slo_ms: float, since: float, horizon: float, shape: str
) -> dict[str, Any]:
    """Requests over the SLO (all, and arriving from ``since`` on), the worst p99 of the 1 s and 5 s windows
    by arrival time, the 5 s windows over the SLO after ``since``, and for a ``step`` shape the recovery after
    it (``recovery_s``: to the end of the run, and held for 30 s)."""
    p1 = p99_by_window(times, latencies_ms, 1.0, horizon)
    p5 = p99_by_window(times, latencies_ms, 5.0, horizon)
    over = sum(1 for x in latencies_ms if not x <= slo_ms)
    after = [x for t, x in zip(times, latencies_ms, strict=True) if t >= since]
    out: dict[str, Any] = {
        "requests": len(latencies_ms),
        "over_slo": over,
        "over_slo_share": round(over / max(len(latencies_ms), 1), 5),
        "over_slo_after_change": sum(1 for x in after if not x <= slo_ms),
        "worst_p99_1s_ms": _round(max((p for p in p1 if p is not None), default=0.0)),
        "worst_p99_5s_ms": _round(max((p for p in p5 if p is not None), default=0.0)),
    }
    if shape == "step":
        out["recovery_1s_s"] = recovery_s(p1, 1.0, slo_ms, since)
        out["recovery_5s_s"] = recovery_s(p5, 5.0, slo_ms, since)
        out["recovery_5s_hold30_s"] = recovery_s(p5, 5.0, slo_ms, since, hold_s=30.0)
    out["windows_5s_over_slo"] = [k * 5 for k, p in enumerate(p5) if (k + 1) * 5 > since and p is not None and p > slo_ms]
    return out


def busiest_window(per_second: Sequence[float], window: int = 10) -> tuple[int, float]:
    """The first second and the mean rate of the busiest ``window`` consecutive seconds (all of it when
    shorter); ``(0, 0.0)`` when empty."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if not per_second:
        return 0, 0.0
    n = min(window, len(per_second))
    start = max(range(len(per_second) - n + 1), key=lambda i: (sum(per_second[i : i + n]), -i))
    return start, sum(per_second[start : start + n]) / n


def busiest_window_rps(per_second: Sequence[float], window: int = 10) -> float:
    """The highest mean rate over ``window`` consecutive seconds (over all of it when shorter)."""
    return busiest_window(per_second, window)[1]


def agreement(
    real_share: float, real_replica_s: float, sim_share: float, sim_replica_s: float, points: float = 2.0, relative: float = 0.10
) -> dict[str, Any]:
    """How far a simulation is from a real run: SLO share apart in percentage points, replica-seconds apart
    relative to the real run's; it agrees within ``points`` and ``relative``."""
    slo_apart = round(100 * abs(sim_share - real_share), 2)
    rs_apart = round(abs(sim_replica_s - real_replica_s) / max(real_replica_s, 1e-9), 3)
    return {
        "slo_points_apart": slo_apart,
        "replica_seconds_apart": rs_apart,
        "agrees": slo_apart <= points and rs_apart <= relative,
    }
