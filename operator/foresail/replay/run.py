"""``foresail replay``: one scenario through Foresail's decision code, the baselines and the oracle.

Output: JSON (per policy: share of requests within the SLO, share of 1-minute windows with p99 within
the SLO, GPU-seconds and the ratio to the oracle, scale actions), a markdown table and a PNG (arrivals,
replicas and p99 over time, one panel per policy).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foresail.api.scalingpolicy import ScalingBehavior
from foresail.replay import policies
from foresail.replay.sim import ReplicaModel, SimConfig, SimResult, simulate
from foresail.replay.traces import Arrivals, per_second

__all__ = ["Scenario", "markdown", "plot", "run_scenario"]

ALL = ("foresail", "hpa", "keda", "kpa", "static", "oracle")


@dataclass(frozen=True)
class Scenario:
    name: str
    arrivals: Arrivals
    model: ReplicaModel
    slo_ms: float
    cold_start_s: float
    behavior: ScalingBehavior
    min_replicas: int = 1
    max_replicas: int = 1000


def _policy(name: str, sc: Scenario, cap: float) -> tuple[policies.Policy, float]:
    resolved = ScalingBehavior().resolve(sc.behavior)
    if name == "foresail":
        return policies.foresail_policy(
            resolved, cap, sc.slo_ms, sc.cold_start_s, sc.min_replicas, sc.max_replicas
        ), resolved.tick_seconds
    if name == "hpa":
        return policies.hpa_policy(cap), policies.BASELINE_TICKS["hpa"]
    if name == "keda":
        return policies.keda_policy(cap), policies.BASELINE_TICKS["keda"]
    if name == "kpa":
        return policies.kpa_policy(cap), policies.BASELINE_TICKS["kpa"]
    if name == "static":
        return policies.static_policy(sc.arrivals, cap), policies.BASELINE_TICKS["static"]
    if name == "oracle":
        return policies.oracle_policy(sc.arrivals, cap, sc.cold_start_s), policies.BASELINE_TICKS["oracle"]
    raise ValueError(f"unknown policy {name!r}; known: {ALL}")


def run_scenario(
    sc: Scenario, names: tuple[str, ...] = ALL, progress: bool = True
) -> tuple[dict[str, Any], dict[str, SimResult]]:
    cap = sc.model.capacity_rps(sc.slo_ms)
    if cap <= 0:
        raise ValueError(f"a replica cannot meet a {sc.slo_ms} ms SLO at all (batch of 1 takes {sc.model.batch_ms(1)} ms)")
    results: dict[str, SimResult] = {}
    rows: dict[str, Any] = {}
    for i, name in enumerate(names):
        t0 = time.monotonic()
        pol, tick = _policy(name, sc, cap)
        # every policy starts from a running system: the replicas the first 10 s need at 70% utilization
        first = sum(1 for t in sc.arrivals.times if t < 10.0) / 10.0
        start = policies.initial_replicas(first, cap) if name != "static" else pol(_first_view())
        cfg = SimConfig(
            model=sc.model,
            slo_ms=sc.slo_ms,
            cold_start_s=sc.cold_start_s,
            tick_s=tick,
            initial_replicas=max(start, sc.min_replicas),
            min_replicas=sc.min_replicas,
            max_replicas=sc.max_replicas,
        )
        res = simulate(sc.arrivals, cfg, pol)
        results[name] = res
        rows[name] = {
            "within_slo": round(res.within_slo(sc.slo_ms), 5),
            "windows_within_slo": round(res.windows_within_slo(sc.slo_ms), 4),
            "gpu_seconds": round(res.gpu_seconds, 1),
            "scale_actions": res.scale_actions,
            "peak_replicas": max((r for _, r, _ in res.replicas_t), default=cfg.initial_replicas),
            "sim_seconds": round(time.monotonic() - t0, 2),
        }
        if progress:
            bar = "#" * (i + 1) + "." * (len(names) - i - 1)
            print(
                f"\r[replay {sc.name}] [{bar}] {name}: {rows[name]['within_slo']:.4f} within SLO",
                end="",
                file=sys.stderr,
                flush=True,
            )
    if progress:
        print(file=sys.stderr)
    oracle = rows.get("oracle", {}).get("gpu_seconds")
    for r in rows.values():
        r["gpu_vs_oracle"] = round(r["gpu_seconds"] / oracle, 3) if oracle else None
    summary = {
        "scenario": sc.name,
        "requests": len(sc.arrivals),
        "duration_s": round(sc.arrivals.duration, 1),
        "slo_p99_ms": sc.slo_ms,
        "cold_start_s": sc.cold_start_s,
        "capacity_rps_per_replica": round(cap, 1),
        "model": {"base_ms": sc.model.base_ms, "per_item_ms": sc.model.per_item_ms, "max_batch": sc.model.max_batch},
        "policies": rows,
    }
    return summary, results


def _first_view() -> Any:
    from foresail.replay.sim import PolicyView

    return PolicyView(0.0, 0.0, 0.0, 0.0, 0, 0, 0)


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"**{summary['scenario']}**: {summary['requests']} requests over {summary['duration_s']} s, SLO p99 {summary['slo_p99_ms']} ms, "
        f"cold start {summary['cold_start_s']} s, {summary['capacity_rps_per_replica']} rps per replica at the SLO",
        "",
        "| policy | requests within SLO | 1-min windows within SLO | GPU-seconds | vs oracle | peak replicas | scale actions |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in summary["policies"].items():
        lines.append(
            f"| {name} | {100 * r['within_slo']:.2f}% | {100 * r['windows_within_slo']:.1f}% | {r['gpu_seconds']:.0f} | "
            f"{r['gpu_vs_oracle'] if r['gpu_vs_oracle'] is not None else '-'}x | {r['peak_replicas']} | {r['scale_actions']} |"
        )
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], arrivals: Arrivals, results: dict[str, SimResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(len(names), 1, figsize=(12, 2.4 * len(names)), sharex=True, squeeze=False)
    rate = per_second(arrivals)
    for ax, name in zip(axes[:, 0], names, strict=True):
        res = results[name]
        ax.plot(range(len(rate)), rate, color="0.75", lw=0.6, label="arrivals/s")
        ax2 = ax.twinx()
        ts = [t for t, _, _ in res.replicas_t]
        ax2.step(ts, [r for _, r, _ in res.replicas_t], where="post", color="C0", lw=1.2, label="replicas (GPUs)")
        ax2.step(ts, [r for _, _, r in res.replicas_t], where="post", color="C2", lw=0.8, label="ready")
        buckets: dict[int, list[float]] = {}
        for t, lat in zip(res.arrivals, res.latencies_ms, strict=True):
            buckets.setdefault(int(t // 10), []).append(lat)
        p99 = {k * 10: sorted(v)[min(len(v) - 1, math.ceil(0.99 * len(v)) - 1)] for k, v in buckets.items()}
        over = [(t, v) for t, v in p99.items() if v > summary["slo_p99_ms"]]
        if over:
            ax.scatter(
                [t for t, _ in over], [max(rate) * 0.95] * len(over), marker="|", color="C3", s=30, label="10 s with p99 > SLO"
            )
        r = summary["policies"][name]
        ax.set_title(
            f"{name}: {100 * r['within_slo']:.2f}% within SLO, {r['gpu_vs_oracle']}x oracle GPU-seconds", fontsize=9, loc="left"
        )
        ax.set_ylabel("req/s")
        ax2.set_ylabel("replicas")
        ax.legend(loc="upper left", fontsize=7)
        ax2.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(summary: dict[str, Any], arrivals: Arrivals, results: dict[str, SimResult], out: Path, png: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = summary["scenario"]
    (out / f"{stem}.json").write_text(json.dumps(summary, indent=1))
    (out / f"{stem}.md").write_text(markdown(summary))
    if png:
        plot(summary, arrivals, results, out / f"{stem}.png")
