"""PNG figures of a replay (matplotlib, from the ``foresail[replay]`` extra): timelines and frontiers.

Every figure names the routing model it was simulated with.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from foresail.replay.sim import SimResult

if TYPE_CHECKING:
    from foresail.replay.run import Scenario

__all__ = ["frontier", "timeline", "window_p99"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def window_p99(times: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], window_s: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:  # fmt: skip
    """(window start, nearest-rank p99 of the requests arriving in it) for windows with arrivals."""
    if not len(times):
        return np.zeros(0), np.zeros(0)
    k = (times // window_s).astype(np.int64)
    order = np.lexsort((lat, k))
    counts = np.bincount(k)
    has = np.flatnonzero(counts)
    starts = (np.cumsum(counts) - counts)[has]
    idx = starts + np.maximum(np.ceil(0.99 * counts[has]).astype(np.int64) - 1, 0)
    return has * window_s, lat[order][idx]


def _title(summary: dict[str, Any]) -> str:
    return (
        f"{summary['scenario']}: routing {summary['routing']}, cold start {summary['cold_start_s']:g} s, "
        f"SLO p99 {summary['slo_p99_ms']:g} ms"
    )


def timeline(summary: dict[str, Any], sc: Scenario, results: dict[str, SimResult], path: Path) -> None:
    """Arrivals, replicas (holding GPUs and ready) and 10 s windows over the SLO, one panel per policy; the
    unscored prior shaded."""
    plt = _pyplot()
    names = list(results)
    fig, axes = plt.subplots(len(names), 1, figsize=(12, 2.4 * len(names)), sharex=True, squeeze=False)
    times = sc.arrivals.times
    rate = np.bincount(times.astype(np.int64)) if len(times) else np.zeros(1)
    for ax, name in zip(axes[:, 0], names, strict=True):
        res = results[name]
        ax.plot(np.arange(len(rate)), rate, color="0.75", lw=0.6, label="arrivals/s")
        if sc.prior_s > 0:
            ax.axvspan(0, sc.prior_s, color="0.93", label="prior (not scored)")
        ax2 = ax.twinx()
        ts = [t for t, _, _ in res.replicas_t]
        ax2.step(ts, [r for _, r, _ in res.replicas_t], where="post", color="C0", lw=1.2, label="replicas (GPUs)")
        ax2.step(ts, [r for _, _, r in res.replicas_t], where="post", color="C2", lw=0.8, label="ready")
        w, p99 = window_p99(times, res.latencies_ms, 10.0)
        over = w[p99 > sc.slo_ms]
        if len(over):
            ax.scatter(over, np.full(len(over), rate.max() * 0.95), marker="|", color="C3", s=30, label="10 s with p99 > SLO")
        r = summary["policies"][name]
        ax.set_title(
            f"{name}: {100 * r['within_slo']:.2f}% within SLO, {r['gpu_vs_oracle']}x oracle GPU-seconds", fontsize=9, loc="left"
        )
        ax.set_ylabel("req/s")
        ax2.set_ylabel("replicas")
        ax.legend(loc="upper left", fontsize=7)
        ax2.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle(_title(summary), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


FLOOR = 1e-3  # % missing shown for a policy that missed nothing (log axis)


def _missing(share: float) -> float:
    return max(100.0 * (1.0 - share), FLOOR)


def frontier(summary: dict[str, Any], path: Path) -> None:
    """Requests missing the SLO (log scale, better up) against GPU-seconds for each policy's knob sweep, with
    the oracles and the target."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for i, (name, pts) in enumerate(summary["frontier"].items()):
        xs = [p["gpu_seconds"] for p in pts]
        ys = [_missing(p["within_slo"]) for p in pts]
        ax.plot(xs, ys, marker="o", color=f"C{i}", label=f"{name} (knob {pts[0]['knob']:g}..{pts[-1]['knob']:g})")
        for p, x, y in zip(pts, xs, ys, strict=True):
            ax.annotate(f"{p['knob']:g}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    for name, marker in (("oracle", "*"), ("oracle-capped", "P")):
        r = summary["policies"].get(name)
        if r:
            g, s = r["gpu_seconds"], r["within_slo"]
            g, s = (g["mean"], s["mean"]) if isinstance(g, dict) else (g, s)
            ax.scatter([g], [_missing(s)], marker=marker, s=120, color="k", zorder=5, label=name)
    ax.axhline(_missing(summary["target_share"]), color="0.6", ls="--", lw=0.8, label=f"target {100 * summary['target_share']:g}% within")
    ax.set_yscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("GPU-seconds (scored window)")
    ax.set_ylabel(f"requests missing the SLO, % (log; none shown at {FLOOR:g}%)")
    ax.set_title("frontier: " + _title(summary), fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
