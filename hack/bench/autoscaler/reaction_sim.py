"""Benchmark ``reaction-sim``: a 10x step and a 5-minute ramp through the replay simulator, for Foresail, the
baselines and ``instant`` (every needed replica started at the step: the floor for any reactive policy)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foresail.api.scalingpolicy import ScalingBehavior
from foresail.replay import policies, traces
from foresail.replay.figures import reaction_figures, value_before
from foresail.replay.run import Scenario, run_scenario
from foresail.replay.sim import SimConfig, SimResult, simulate
from hack.bench.autoscaler.markdown import reaction_markdown
from hack.bench.autoscaler.settings import REPLAY_MODEL, balanced, log
from hack.bench.report import write_report

__all__ = ["Shape", "instant_reaction", "reaction_sim"]


@dataclass(frozen=True)
class Shape:
    kind: str  # step | ramp
    low: float
    high: float
    at: float
    duration: float

    def profile(self) -> tuple[str, dict[str, float]]:
        if self.kind == "step":
            return "step", {"from": self.low, "to": self.high, "at": self.at}
        return "ramp", {"from": self.low, "to": self.high, "over": 300.0, "at": self.at}

    def spec(self) -> str:
        kind, p = self.profile()
        return kind + ":" + ",".join(f"{k}={v:g}" for k, v in p.items())


def instant_reaction(arr: traces.Arrivals, cap: float, slo: float, cold: float, shape: Shape, tick: float) -> SimResult:
    """Start, at the step, the replicas the high rate needs at 70% (run_scenario's warm-start rule): the best any
    reactive policy can do with this cold start and per-replica queues."""
    before = policies.initial_replicas(shape.low, cap)
    after = policies.initial_replicas(shape.high, cap)
    cfg = SimConfig(model=REPLAY_MODEL, slo_ms=slo, cold_start_s=cold, tick_s=tick, initial_replicas=before)
    return simulate(arr, cfg, lambda v: after if v.now >= shape.at else before)


def _scenario_rows(shape: Shape, cold: float, seed: int, slo: float, cap: float, tick: float) -> list[dict[str, Any]]:
    kind, params = shape.profile()
    arr = traces.profile_arrivals(kind, params, shape.duration, seed=seed)
    sc = Scenario(f"{kind}-cold{cold:g}", arr, REPLAY_MODEL, slo, cold, balanced())
    log(f"reaction-sim: {sc.name} ({len(arr)} requests, {shape.spec()})")
    summary, results = run_scenario(sc, progress=False)
    if kind == "step":
        # reference, not a policy: every replica the new rate needs, started at the step itself; what is
        # left of the recovery is the cold start plus draining the backlog queued on the old replicas
        results["instant"] = instant = instant_reaction(arr, cap, slo, cold, shape, tick)
        summary["policies"]["instant"] = {
            "gpu_seconds": round(instant.gpu_seconds, 1),
            "gpu_vs_oracle": round(instant.gpu_seconds / summary["policies"]["oracle"]["gpu_seconds"], 3),
            "peak_replicas": max(n for _, n, _ in instant.replicas_t),
        }
    rows = []
    for name, res in results.items():
        pol = summary["policies"][name]
        rows.append(
            {
                "shape": kind,
                "profile": shape.spec(),
                "cold_start_s": cold,
                "policy": name,
                "goal_recovery_s": cold + 2 * tick if kind == "step" else None,
                **reaction_figures(res.arrivals.tolist(), res.latencies_ms.tolist(), slo, shape.at, shape.duration, kind),
                "gpu_seconds": pol["gpu_seconds"],
                "gpu_vs_oracle": pol["gpu_vs_oracle"],
                "peak_replicas": pol["peak_replicas"],
                "replicas_before": value_before([(t, float(n)) for t, n, _ in res.replicas_t], shape.at),
            }
        )
    return rows


def reaction_sim(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    tick = ScalingBehavior().resolve(balanced()).tick_seconds
    slo = round(4 * REPLAY_MODEL.batch_ms(1), 2)
    cap = REPLAY_MODEL.capacity_rps(slo)
    low = round(1.5 * cap)
    shapes = [Shape("step", low, 10 * low, 120.0, 420.0), Shape("ramp", low, 10 * low, 120.0, 540.0)]
    colds = (10.0,) if args.quick else (10.0, 60.0)
    rows = [row for cold in colds for shape in shapes for row in _scenario_rows(shape, cold, args.seed, slo, cap, tick)]
    result = {
        "benchmark": "reaction-sim",
        "model": {"base_ms": REPLAY_MODEL.base_ms, "per_item_ms": REPLAY_MODEL.per_item_ms, "max_batch": REPLAY_MODEL.max_batch},
        "slo_p99_ms": slo,
        "capacity_rps_per_replica": round(cap, 1),
        "foresail_policy": "balanced",
        "foresail_tick_s": tick,
        "rows": rows,
    }
    write_report(out, "reaction-sim", result, reaction_markdown(result))
    return result
