"""Benchmark ``closed-loop``: a 15-minute slice of the shared conversation trace through the operator on the
local cluster and through the replay simulator configured like the cluster; SLO share and replica-seconds side
by side (the simulator is trustworthy when both agree within 2 points and 10%)."""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

from foresail.api.scalingpolicy import ResolvedBehavior, ScalingBehavior
from foresail.replay import policies, traces
from foresail.replay.figures import agreement, busiest_window_rps, integrate, share_within, step_samples
from foresail.replay.run import Scenario, run_scenario
from hack.bench.autoscaler.markdown import closed_loop_markdown
from hack.bench.autoscaler.predict import arrivals_of, predict, sim_models
from hack.bench.autoscaler.reaction_cluster import stem
from hack.bench.autoscaler.sampling import ClusterRun, cold_and_lead, cold_start, initial_pods, load_run, run_load, samples_of
from hack.bench.autoscaler.session import cluster_session, create_and_wait
from hack.bench.autoscaler.settings import (
    CLUSTER_CAPACITY_RPS,
    CLUSTER_SLO_MS,
    DEMO_OVERRIDES,
    EMULATED,
    RATE_WINDOW_S,
    TRACES,
    balanced,
    log,
    resolved,
)
from hack.bench.report import write_report

__all__ = ["closed_loop"]


def _real(run: ClusterRun, seconds: float, cs: dict[str, Any]) -> dict[str, Any]:
    return {
        "within_slo": round(share_within(run.latencies, CLUSTER_SLO_MS), 5),
        "replica_seconds": round(integrate(samples_of(run), 0.0, seconds), 1),
        "desired_replica_seconds": round(integrate(samples_of(run, "desired"), 0.0, seconds), 1),
        "peak_replicas": max((s["pods"] for s in run.samples), default=0),
        "requests": len(run.latencies),
        "loadgen": run.summary,
        "cpu_busy_mean": round(statistics.fmean(s["cpu_busy"] for s in run.samples), 3) if run.samples else None,
        "cpu_busy_max": max((s["cpu_busy"] for s in run.samples), default=None),
        "cold_start": cs,
    }


def _predictions(
    run: ClusterRun, real: dict[str, Any], behavior: ResolvedBehavior, max_replicas: int, seconds: float
) -> dict[str, Any]:
    """The simulator configured like the cluster, per replica model, and how far it is from the real run."""
    cold, lead = cold_and_lead(real["cold_start"])
    out: dict[str, Any] = {}
    for label, model in sim_models().items():
        sim = predict(run, model, behavior, cold, lead, max_replicas)
        rs = integrate(step_samples(initial_pods(run), ((t, n) for t, n, _ in sim.replicas_t)), 0.0, seconds)
        share = sim.within_slo(CLUSTER_SLO_MS)
        out[label] = {
            "model": {
                "base_ms": round(model.base_ms, 2),
                "per_item_ms": round(model.per_item_ms, 3),
                "max_batch": model.max_batch,
            },
            "within_slo": round(share, 5),
            "replica_seconds": round(rs, 1),
            "peak_replicas": max((n for _, n, _ in sim.replicas_t), default=1),
            **agreement(real["within_slo"], real["replica_seconds"], share, rs),
        }
    return out


def _stock_replay(run: ClusterRun, cold: float, max_replicas: int) -> dict[str, Any]:
    """What the stock `foresail replay` makes of the same arrivals with its own conventions (capacity at the SLO
    from the model instead of the operator's prior, a 30 s rate window, a warm start), with the oracle."""
    behavior = balanced().merged(ScalingBehavior.model_validate(DEMO_OVERRIDES))
    scenario = Scenario("closed-loop", arrivals_of(run), EMULATED, CLUSTER_SLO_MS, cold, behavior, 1, max_replicas)
    stock, _ = run_scenario(scenario, ("foresail", "hpa", "kpa", "oracle"), progress=False)
    return stock


def closed_loop(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    trace = TRACES / f"AzureLLMInferenceTrace_{args.trace}.csv"
    compress = 6.0 if args.quick else args.compress
    seconds = 900.0 / compress
    behavior = resolved(DEMO_OVERRIDES)
    per = traces.per_second(
        traces.reshape(traces.load_trace(str(trace)), compress=compress, start=600.0, duration=900.0, seed=args.seed)
    )
    peak_rps = args.peak_replicas * CLUSTER_CAPACITY_RPS
    scale = peak_rps / busiest_window_rps(per, 10)
    max_replicas = math.ceil(2.5 * args.peak_replicas)  # room above the plan: the replica count is measured, not capped
    # a running system, as `foresail replay` assumes: the replicas the first 10 s need at 70% of the capacity prior
    warm = policies.initial_replicas(sum(per[:10]) / 10 * scale, CLUSTER_CAPACITY_RPS)
    log(
        f"closed-loop: {trace.name} 600-1500 s, compress {compress:g} ({seconds:g} s), rate x{scale:.2f} (busiest 10 s {peak_rps:.0f} rps)"
    )
    prefix = stem(args, "closed-loop")
    if args.reanalyse:
        run = load_run(out, prefix, "closed", seconds)
    else:
        with cluster_session() as c:
            settle = create_and_wait(c, "closed", DEMO_OVERRIDES, max_replicas, args.cold_requests, min_replicas=warm)
            c.kube.kubectl(
                "patch", "fisvc", "closed", "--type=merge", "-p", json.dumps({"spec": {"scaling": {"minReplicas": 1}}})
            )
            source = ["--trace", str(trace), "--start", "600", "--compress", f"{compress:g}", "--rate-scale", f"{scale:.4f}", "--seed", str(args.seed)]  # fmt: skip
            run = run_load(c, "closed", out, prefix, source, seconds, settle)
    real = _real(run, seconds, cold_start(run))
    result = {
        "benchmark": "closed-loop",
        "emulated_cold_requests": 20 if args.cold_requests is None else args.cold_requests,
        "trace": trace.name,
        "slice": {"start_s": 600, "duration_s": 900, "compress": compress, "wall_s": seconds, "rate_scale": round(scale, 3)},
        "busiest_10s_rps": round(peak_rps, 1),
        "target_peak_replicas": args.peak_replicas,
        "warm_start_replicas": warm,
        "max_replicas": max_replicas,
        "settle_s": run.settle_s,
        "slo_p99_ms": CLUSTER_SLO_MS,
        "capacity_prior_rps": CLUSTER_CAPACITY_RPS,
        "behavior": behavior.model_dump(),
        "rate_window_s": RATE_WINDOW_S,
        "real": real,
        "predicted": _predictions(run, real, behavior, max_replicas, seconds),
        "replay_stock": _stock_replay(run, cold_and_lead(real["cold_start"])[0], max_replicas),
        "timeline": run.samples,
    }
    write_report(out, prefix, result, closed_loop_markdown(result))
    return result
