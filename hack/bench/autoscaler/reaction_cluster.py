"""Benchmark ``reaction-cluster``: the 10x step (and ramp) on a local cluster, real Triton and the operator,
next to what the simulator predicts for the same arrivals, model and measured cold start."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from foresail.api.scalingpolicy import ResolvedBehavior
from foresail.replay.figures import integrate, reaction_figures, step_samples, value_before
from hack.bench.autoscaler.markdown import reaction_markdown
from hack.bench.autoscaler.predict import predict, sim_models
from hack.bench.autoscaler.reaction_sim import Shape
from hack.bench.autoscaler.sampling import ClusterRun, cold_and_lead, cold_start, initial_pods, load_run, run_load, samples_of
from hack.bench.autoscaler.session import cluster_session, create_and_wait, delete_and_wait
from hack.bench.autoscaler.settings import CLUSTER_CAPACITY_RPS, CLUSTER_SLO_MS, RATE_WINDOW_S, log, resolved
from hack.bench.report import write_report

__all__ = ["reaction_cluster", "stem"]


def stem(args: argparse.Namespace, bench: str) -> str:
    """Output name: the cluster runs name their non-default settings."""
    out = bench if args.cold_requests is None else f"{bench}-coldreq{args.cold_requests}"
    if bench == "reaction-cluster" and args.cluster_low_seconds != 60.0:
        out += f"-low{args.cluster_low_seconds:g}s"
    return out


def _runs(args: argparse.Namespace, out: Path, shapes: list[Shape]) -> dict[str, ClusterRun]:
    prefix = stem(args, "reaction-cluster")
    if args.reanalyse:
        return {shape.kind: load_run(out, prefix, shape.kind, shape.duration) for shape in shapes}
    runs = {}
    with cluster_session() as c:
        for shape in shapes:
            settle = create_and_wait(c, shape.kind, None, 12, args.cold_requests)
            source = ["--profile", shape.spec(), "--seed", str(args.seed)]
            runs[shape.kind] = run_load(c, shape.kind, out, prefix, source, shape.duration, settle)
            delete_and_wait(c, shape.kind)
    return runs


def _rows(shape: Shape, run: ClusterRun, behavior: ResolvedBehavior) -> list[dict[str, Any]]:
    cs = cold_start(run)
    cold, lead = cold_and_lead(cs)
    common = {"shape": shape.kind, "profile": shape.spec(), "cold_start_s": round(cold, 1)}
    goal = round(cold + 2 * behavior.tick_seconds, 1) if shape.kind == "step" else None
    rows = [
        {
            **common,
            "policy": "foresail (cluster)",
            "goal_recovery_s": goal,
            **reaction_figures(run.scheduled, run.latencies, CLUSTER_SLO_MS, shape.at, shape.duration, shape.kind),
            "gpu_seconds": round(integrate(samples_of(run), 0.0, shape.duration), 1),
            "gpu_vs_oracle": None,
            "peak_replicas": max((s["pods"] for s in run.samples), default=0),
            "replicas_before": value_before(samples_of(run), shape.at),
            "loadgen": run.summary,
            "cold_start": cs,
            "cpu_busy_mean": round(statistics.fmean(s["cpu_busy"] for s in run.samples), 3) if run.samples else None,
            "settle_s": run.settle_s,
        }
    ]
    for label, model in sim_models().items():
        sim = predict(run, model, behavior, cold, lead, 12)
        replicas = step_samples(initial_pods(run), ((t, n) for t, n, _ in sim.replicas_t))
        rows.append(
            {
                **common,
                "policy": f"simulated: {label}",
                "goal_recovery_s": goal,
                **reaction_figures(
                    sim.arrivals.tolist(), sim.latencies_ms.tolist(), CLUSTER_SLO_MS, shape.at, shape.duration, shape.kind
                ),
                "gpu_seconds": round(integrate(replicas, 0.0, shape.duration), 1),
                "gpu_vs_oracle": None,
                "peak_replicas": max((n for _, n, _ in sim.replicas_t), default=1),
                "replicas_before": value_before(replicas, shape.at),
            }
        )
    return rows


def reaction_cluster(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    low, high, at = args.cluster_low_rps, 10 * args.cluster_low_rps, args.cluster_low_seconds
    shapes = [Shape("step", low, high, at, at + 150.0)]
    if not args.quick:
        shapes.append(Shape("ramp", low, high, at, at + 360.0))
    behavior = resolved()
    runs = _runs(args, out, shapes)
    rows: list[dict[str, Any]] = []
    for shape in shapes:
        rows += _rows(shape, runs[shape.kind], behavior)
        cluster_row = next(r for r in reversed(rows) if r["policy"] == "foresail (cluster)")
        log(f"reaction-cluster {shape.kind}: {json.dumps({k: v for k, v in cluster_row.items() if k != 'loadgen'})}")
    result = {
        "benchmark": "reaction-cluster",
        "emulated_cold_requests": 20 if args.cold_requests is None else args.cold_requests,
        "model": "emulated (20 ms + 2 ms/item, max batch 32), real Triton",
        "slo_p99_ms": CLUSTER_SLO_MS,
        "capacity_prior_rps": CLUSTER_CAPACITY_RPS,
        "foresail_policy": "balanced",
        "foresail_tick_s": behavior.tick_seconds,
        "rate_window_s": RATE_WINDOW_S,
        "rows": rows,
        "timelines": {shape.kind: runs[shape.kind].samples for shape in shapes},
    }
    write_report(out, stem(args, "reaction-cluster"), result, reaction_markdown(result))
    return result
