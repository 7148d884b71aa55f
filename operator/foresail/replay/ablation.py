"""One-knob ablations of Foresail's decision in the simulator (figures, not tests).

    python -m foresail.replay.ablation [--out out/bench] [--seeds 5] [--colds 10,60] [--repo .]

Each variant changes one thing against ``v2`` (the ``balanced`` preset) and runs the report window of the
replay benchmark (1500-3300 s of the conversation and code traces after a 600 s unscored prior, the
README's replica, rate scaled so that the busiest 10 s of 600-3300 s need 20 replicas) under round-robin
routing (per-connection for the capacity-table variant), over ``--seeds`` seeds. Two groups:

* the new rules, one switched off or reverted at a time: the forecast (base rate only), the fast path,
  burst onsets sized for the burst level (onset threshold out of reach), the outer loop on the budget, the
  learned idle hold (held for the cold start only), the capacity table by replica count (per-connection
  routing planned as if even);
* the causes the issue found in v1, put back into v2 one at a time: (1) a fixed 300 s scale-down
  stabilization instead of the rent-or-buy hold; (2) a capacity per replica drifted down as v1's learning
  drifted it (42.9 -> 26.6 rps on the code trace: x0.62); (3) a second headroom stacked on the first (plan
  at 80% of the capacity); (4) the 30 s rate in every window (no 2 s or 10 s signal); (6) no unscored
  prior (the start-up with empty windows). Cause (5) (panic on a lagging rate, p99 from the
  maximum of per-replica summaries) has no counterpart in v2, which has no panic mode and does not compute
  the p99 itself.

Writes ``ablation.json`` and ``ablation.md``: share within the SLO and GPU-seconds relative to v2's, per
trace and cold start.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from foresail.api.scalingpolicy import ScalingBehavior
from foresail.replay import bench, day, policies, traces
from foresail.replay.reaction import balanced
from foresail.replay.run import Scenario
from foresail.replay.sim import PolicyView, Serving, simulate
from foresail.replay.windows import TimeWindow
from foresail.scaling.capacity import Calibration, Routing
from foresail.scaling.decide import DecisionState, ServiceSettings, decide
from foresail.scaling.signals import WindowSignals

__all__ = ["VARIANTS", "Variant", "main"]

View = Callable[[PolicyView], PolicyView]


@dataclass(frozen=True)
class Variant:
    name: str
    group: str  # "rule" (a v2 rule off) or "cause" (a v1 cause put back)
    overrides: dict[str, Any]  # ScalingPolicy fields changed
    capacity: float = 1.0  # capacity per replica as a share of the calibrated one (a flat figure when < 1)
    routing: str | None = None  # the routing simulated, when not round robin
    plan_even: bool = False  # plan per-connection routing as if even
    stabilize_s: float = 0.0  # v1's scale-down stabilization over this window
    rate_window: bool = False  # every window is the 30 s rate
    prior: bool = True


VARIANTS = (
    Variant("v2", "base", {}),
    Variant("no forecast (base rate)", "rule", {"forecastEnabled": False}),
    Variant("no fast path", "rule", {"fastPathEnabled": False}),
    Variant("no burst sizing (onset out of reach)", "rule", {"burstOnsetPercent": 10000}),
    Variant("no outer loop", "rule", {"budgetFeedback": False}),
    Variant("no learned hold (cold start only)", "rule", {"maxIdleHoldSeconds": -1}),  # set to the cold start per scenario
    Variant("v2, per-connection routing", "base", {}, routing="per-connection"),
    Variant("per-connection planned as even", "rule", {}, routing="per-connection", plan_even=True),
    Variant("(1) 300 s stabilization", "cause", {"maxIdleHoldSeconds": 0}, stabilize_s=300.0),
    Variant("(2) capacity drifted to x0.62", "cause", {}, capacity=0.62),
    Variant("(3) headroom stacked (plan at 80%)", "cause", {}, capacity=0.8),
    Variant("(4) the 30 s rate in every window", "cause", {}, rate_window=True),
    Variant("(6) no unscored prior", "cause", {}, prior=False),
)


def _rate_window_view(v: PolicyView) -> PolicyView:
    """What v1 saw: the 30 s rate window's arrivals and p99 in every window."""
    w = WindowSignals(30.0, v.arrival_rps, v.arrival_rps, 0.0, 0.0, 0.0, v.p99_ms)
    return replace(v, windows=tuple(replace(w, window_s=x.window_s) for x in v.windows))


def policy(sc: Scenario, variant: Variant, behavior: ScalingBehavior) -> tuple[Callable[[PolicyView], int], float]:
    b = ScalingBehavior().resolve(behavior)
    cal = sc.calibration()
    if variant.plan_even:
        cal = replace(cal, routing=Routing.ROUND_ROBIN)
    if variant.capacity < 1.0:
        cal = Calibration(capacity_rps=variant.capacity * sc.model.capacity_rps(sc.slo_ms), routing=cal.routing, connections=cal.connections)
    settings = ServiceSettings(behavior=b, min_replicas=sc.min_replicas, max_replicas=sc.max_replicas, slo_p99_ms=sc.slo_ms)
    state = DecisionState()
    recent = TimeWindow(max(variant.stabilize_s, 1.0))

    def run(v: PolicyView) -> int:
        seen = _rate_window_view(v) if variant.rate_window else v
        want = decide(settings, policies.observation(seen, cal, sc.cold_start_s), state, v.now).replicas
        if variant.stabilize_s > 0:  # v1: scale down only to the highest recommendation of the window
            recent.add(v.now, float(want))
            if want < v.current:
                want = min(v.current, int(recent.maximum(v.now) or want))
        return want

    return run, b.tick_seconds


def scenario(kind: str, cold: float, seed: int, variant: Variant, behavior: ScalingBehavior) -> Scenario:
    folder = day.find_traces()
    base = traces.uniform_work(traces.load_trace(str(folder / day.FILES[kind])))
    per = np.bincount(traces.reshape(base, start=600.0, duration=2700.0).times.astype(np.int64))
    factor = 20 * bench.MODEL.capacity_rps(bench.SLO_MS) / (float(np.convolve(per, np.ones(10), "valid").max()) / 10.0)
    prior = bench.PRIOR_S if variant.prior else 0.0
    arr = traces.reshape(traces.reshape(traces.reshape(base, start=0.0, duration=3300.0), rate_scale=factor, seed=seed),
                         start=1500.0 - prior, duration=1800.0 + prior)  # fmt: skip
    over = dict(variant.overrides)
    if over.get("maxIdleHoldSeconds") == -1:
        over["maxIdleHoldSeconds"] = cold
    b = behavior.merged(ScalingBehavior.model_validate(over))
    return Scenario(f"{kind}-cold{cold:g}", arr, bench.MODEL, bench.SLO_MS, cold, b, prior_s=prior,
                    serving=Serving(variant.routing or "round-robin"), seed=seed)  # fmt: skip


def run_variant(kind: str, cold: float, seeds: int, variant: Variant, behavior: ScalingBehavior) -> dict[str, Any]:
    shares, gpus = [], []
    for seed in range(1, seeds + 1):
        sc = scenario(kind, cold, seed, variant, behavior)
        pol, tick = policy(sc, variant, sc.behavior)
        first = float(np.count_nonzero(sc.arrivals.times < 10.0)) / 10.0
        res = simulate(sc.arrivals, sc.config(tick, policies.initial_replicas(first, sc.model.capacity_rps(sc.slo_ms))), pol)
        shares.append(res.within_slo(sc.slo_ms))
        gpus.append(res.gpu_seconds)
    return {"within_slo": round(float(np.mean(shares)), 5), "within_min": round(min(shares), 5),
            "gpu_seconds": round(float(np.mean(gpus)), 1)}  # fmt: skip


def markdown(r: dict[str, Any]) -> str:
    cols = [(c["trace"], c["cold_start_s"]) for c in r["columns"]]
    lines = [
        f"One-knob ablations (replay report window 1500-3300 s, mean of {r['seeds']} seeds, round robin unless named): "
        "requests within SLO / GPU-seconds relative to v2 in the same column",
        "",
        "| variant | " + " | ".join(f"{t} cold {c:g} s" for t, c in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for name in (v.name for v in VARIANTS):
        cells = []
        for col in r["columns"]:
            x = col["variants"][name]
            base = col["variants"]["v2, per-connection routing" if "per-connection" in name else "v2"]
            rel = x["gpu_seconds"] / base["gpu_seconds"] if base["gpu_seconds"] else math.nan
            cells.append(f"{100 * x['within_slo']:.2f}% / {rel:.2f}x" if name not in ("v2", "v2, per-connection routing")
                         else f"{100 * x['within_slo']:.2f}% / {x['gpu_seconds']:.0f} GPU-s")  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m foresail.replay.ablation", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/bench")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--colds", default="10,60")
    ap.add_argument("--traces", default="conv,code")
    ap.add_argument("--repo", default=".")
    args = ap.parse_args(argv)
    behavior = balanced(Path(args.repo))
    columns = []
    for kind in args.traces.split(","):
        for cold in (float(c) for c in args.colds.split(",")):
            col: dict[str, Any] = {"trace": kind, "cold_start_s": cold, "variants": {}}
            for v in VARIANTS:
                print(f"[ablation] {kind} cold {cold:g} s: {v.name}", file=sys.stderr, flush=True)
                col["variants"][v.name] = run_variant(kind, cold, args.seeds, v, behavior)
            columns.append(col)
    result = {"benchmark": "ablation", "seeds": args.seeds, "columns": columns,
              "variants": [{"name": v.name, "group": v.group, "overrides": v.overrides} for v in VARIANTS]}  # fmt: skip
    bench.write_result(Path(args.out), "ablation", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
