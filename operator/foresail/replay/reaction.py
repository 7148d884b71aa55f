"""Benchmark 2 of issue 13 in the simulator: a 10x step and a 5-minute ramp (figures, not tests).

    python -m foresail.replay.reaction [--out out/bench] [--seeds 5] [--colds 10,30,60] [--routing ...]

The README's replay replica (100 ms + 10 ms/item, max batch 32, SLO 440 ms); the load is 1.5x one replica's
capacity at the SLO for a 600 s unscored prior and 120 s more, then steps to 10x (held 300 s) or ramps to
10x over 300 s (held 120 s). Foresail runs the ``balanced`` preset (tick 2 s); HPA-, KEDA- and KPA-like
baselines at their default targets; the clairvoyant oracle; and for the step the start-everything-at-once
reference: from the replicas Foresail had just before the step, every replica the new rate needs at 70%
(``policies.initial_replicas``) started at the step itself, the floor for a reactive policy.

* Step: recovery = seconds from the step until the p99 of the requests arriving in each 1 s window is
  within the SLO and stays there (``sim.recovery_s``). Goals: within cold start + 2 ticks under
  least-outstanding routing; within 1.1x of the reference's recovery under round robin.
* Ramp: requests over the SLO (goal: none) and the detection delay: seconds from the ramp's start until
  Foresail's forecast for now + lead first exceeds every forecast it made in the minute before (goal:
  <= 2 ticks), and until its first scale-up.

Every figure is the mean over ``--seeds`` seeds (min-max in the JSON); each row names its routing model.
Writes ``reaction.json``, ``reaction.md`` and ``reaction-<shape>-cold<c>-<routing>.png`` (replicas and
1 s p99 of the first seed).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from foresail.api.scalingpolicy import ScalingBehavior, ScalingPolicy
from foresail.replay import bench, policies, traces
from foresail.replay.run import Scenario, simulate_policy
from foresail.replay.sim import ROUTINGS, PolicyView, ReplicaModel, Serving, SimResult, p99_by_window, recovery_s, simulate
from foresail.replay.traces import Arrivals
from foresail.scaling.decide import Decision, DecisionState, ServiceSettings, decide

__all__ = ["main"]

MODEL = ReplicaModel(base_ms=100.0, per_item_ms=10.0, max_batch=32)
SLO_MS = 4 * MODEL.batch_ms(1)
PRIOR_S = 600.0
AT = PRIOR_S + 120.0
BASELINES = ("hpa", "keda", "kpa", "oracle")


def log(msg: str) -> None:
    print(f"[reaction] {msg}", file=sys.stderr, flush=True)


def balanced(repo: Path) -> ScalingBehavior:
    return ScalingPolicy.model_validate(yaml.safe_load((repo / "policies/scaling/balanced.yaml").read_text())).behavior()


@dataclass(frozen=True)
class Shape:
    kind: str  # step | ramp
    low: float
    high: float

    def arrivals(self, seed: int) -> Arrivals:
        if self.kind == "step":
            return traces.profile_arrivals("step", {"from": self.low, "to": self.high, "at": AT}, AT + 300.0, seed=seed)
        return traces.profile_arrivals("ramp", {"from": self.low, "to": self.high, "over": 300.0, "at": AT}, AT + 420.0, seed=seed)


def foresail_run(sc: Scenario, behavior: ScalingBehavior) -> tuple[SimResult, list[tuple[float, Decision]]]:
    """Foresail in the simulator, keeping every decision (for the detection delay)."""
    b = ScalingBehavior().resolve(behavior)
    cal, state = sc.calibration(), DecisionState()
    settings = ServiceSettings(behavior=b, min_replicas=sc.min_replicas, max_replicas=sc.max_replicas, slo_p99_ms=sc.slo_ms)
    seen: list[tuple[float, Decision]] = []

    def policy(v: PolicyView) -> int:
        d = decide(settings, policies.observation(v, cal, sc.cold_start_s), state, v.now)
        seen.append((v.now, d))
        return d.replicas

    cap = MODEL.capacity_rps(SLO_MS)
    res = simulate(sc.arrivals, sc.config(b.tick_seconds, policies.initial_replicas(sc.arrivals.rate(), cap)), policy)
    return res, seen


def _over(res: SimResult) -> int:
    m = res.scored()
    return int((~(res.latencies_ms[m] <= SLO_MS)).sum())


def _recovery(res: SimResult) -> float | None:
    m = res.scored()
    p99s = p99_by_window(res.arrivals[m] - PRIOR_S, res.latencies_ms[m], 1.0)
    return recovery_s(p99s, 1.0, SLO_MS, AT - PRIOR_S)


def _replicas_before(res: SimResult) -> int:
    """Replicas holding GPUs at the last tick before the change."""
    return next((n for t, n, _ in reversed(res.replicas_t) if t < AT), 1)


def _detection(seen: list[tuple[float, Decision]]) -> tuple[float | None, float | None]:
    """(forecast detection delay, first scale-up delay) after the ramp starts."""
    before = [d.forecast_rps or 0.0 for t, d in seen if AT - 60.0 <= t < AT]
    base = [d.replicas for t, d in seen if t < AT][-1:] or [0]
    ceiling = max(before, default=0.0)
    first = next((t - AT for t, d in seen if t >= AT and (d.forecast_rps or 0.0) > ceiling), None)
    up = next((t - AT for t, d in seen if t >= AT and d.replicas > base[0]), None)
    return first, up


def instant(sc: Scenario, before: int, high_rps: float, tick: float) -> SimResult:
    """The reference: ``before`` replicas, then at the step every replica ``high_rps`` needs at 70%."""
    after = policies.initial_replicas(high_rps, MODEL.capacity_rps(SLO_MS))
    return simulate(sc.arrivals, sc.config(tick, before), lambda v: after if v.now >= AT else before)


def one(shape: Shape, cold: float, routing: str, seed: int, behavior: ScalingBehavior) -> dict[str, Any]:
    sc = Scenario(f"{shape.kind}-cold{cold:g}-{routing}", shape.arrivals(seed), MODEL, SLO_MS, cold, behavior,
                  prior_s=PRIOR_S, serving=Serving(routing), seed=seed)  # fmt: skip
    cap = MODEL.capacity_rps(SLO_MS)
    tick = ScalingBehavior().resolve(behavior).tick_seconds
    res, seen = foresail_run(sc, behavior)
    results: dict[str, SimResult] = {"foresail": res}
    for name in BASELINES:
        results[name], _ = simulate_policy(sc, name, cap)
    if shape.kind == "step":
        results["instant"] = instant(sc, _replicas_before(res), shape.high, tick)
    rows: dict[str, Any] = {}
    for name, r in results.items():
        row: dict[str, Any] = {"over_slo": _over(r), "gpu_seconds": round(r.gpu_seconds, 1), "replicas_before": _replicas_before(r),
                               "peak_replicas": r.peak_replicas(1)}  # fmt: skip
        if shape.kind == "step":
            row["recovery_s"] = _recovery(r)
        rows[name] = row
    if shape.kind == "ramp":
        rows["foresail"]["detection_s"], rows["foresail"]["first_scale_up_s"] = _detection(seen)
    return {"shape": shape.kind, "cold_start_s": cold, "routing": routing, "seed": seed, "tick_s": tick,
            "requests": int(res.scored().sum()), "policies": rows, "_results": results}  # fmt: skip


def _mean(vals: list[Any]) -> dict[str, Any] | None:
    xs = [v for v in vals if v is not None]
    if not xs:
        return None
    return {"mean": round(float(np.mean(xs)), 2), "min": min(xs), "max": max(xs), "never": len(vals) - len(xs)}


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    first = runs[0]
    out = {k: first[k] for k in ("shape", "cold_start_s", "routing", "tick_s")}
    out["seeds"] = [r["seed"] for r in runs]
    out["policies"] = {
        name: {key: _mean([r["policies"][name].get(key) for r in runs]) for key in first["policies"][name]} for name in first["policies"]
    }
    fs = out["policies"]["foresail"]
    if out["shape"] == "step":
        rec, ref = fs["recovery_s"], out["policies"]["instant"]["recovery_s"]
        goal = out["cold_start_s"] + 2 * out["tick_s"]
        out["goal"] = (
            f"recovery <= cold start + 2 ticks = {goal:g} s" if out["routing"] == "least-outstanding"
            else f"recovery <= 1.1 x the reference's ({1.1 * ref['mean']:.1f} s)" if ref else "recovery <= 1.1 x the reference's"
        )  # fmt: skip
        limit = goal if out["routing"] == "least-outstanding" else (1.1 * ref["mean"] if ref else None)
        out["met"] = bool(rec and not rec["never"] and limit is not None and rec["mean"] <= limit + 1e-9)
    else:
        out["goal"] = f"no request over the SLO; detection <= 2 ticks ({2 * out['tick_s']:g} s)"
        det = fs.get("detection_s")
        out["met"] = bool(fs["over_slo"] and fs["over_slo"]["max"] == 0) and bool(det and not det["never"] and det["max"] <= 2 * out["tick_s"])
    return out


def _fig(x: dict[str, Any] | None, unit: str = "") -> str:
    if x is None:
        return "never"
    s = f"{x['mean']:g}{unit}" + ("" if x["min"] == x["max"] else f" ({x['min']:g}-{x['max']:g})")
    return s + (f", never in {x['never']}" if x.get("never") else "")


def markdown(rows: list[dict[str, Any]]) -> str:
    seeds = rows[0]["seeds"] if rows else []
    lines = [f"Reaction in the simulator (issue 13, benchmark 2): mean (min-max) over seeds {seeds}; SLO p99 {SLO_MS:g} ms; "
             "Foresail `balanced` (tick 2 s). Recovery: from the step until the 1 s p99 by arrival is within the SLO for good.", "",
             "| step 10x | cold start | routing | Foresail recovery | reference (all at once) | KPA | HPA | goal | met | Foresail over SLO | GPU-s Foresail / KPA / oracle |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in (x for x in rows if x["shape"] == "step"):
        p = r["policies"]
        lines.append(
            f"| {p['foresail']['replicas_before']['mean']:g} replicas before | {r['cold_start_s']:g} s | {r['routing']} | {_fig(p['foresail']['recovery_s'], ' s')} "
            f"| {_fig(p['instant']['recovery_s'], ' s')} | {_fig(p['kpa']['recovery_s'], ' s')} | {_fig(p['hpa']['recovery_s'], ' s')} "
            f"| {r['goal']} | {'yes' if r['met'] else 'no'} | {_fig(p['foresail']['over_slo'])} "
            f"| {p['foresail']['gpu_seconds']['mean']:.0f} / {p['kpa']['gpu_seconds']['mean']:.0f} / {p['oracle']['gpu_seconds']['mean']:.0f} |"
        )  # fmt: skip
    lines += ["", "| ramp 10x over 300 s | cold start | routing | Foresail over SLO | detection | first scale-up | KPA over | HPA over | KEDA over | goal | met |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in (x for x in rows if x["shape"] == "ramp"):
        p = r["policies"]
        lines.append(
            f"| | {r['cold_start_s']:g} s | {r['routing']} | {_fig(p['foresail']['over_slo'])} | {_fig(p['foresail']['detection_s'], ' s')} "
            f"| {_fig(p['foresail']['first_scale_up_s'], ' s')} | {_fig(p['kpa']['over_slo'])} | {_fig(p['hpa']['over_slo'])} "
            f"| {_fig(p['keda']['over_slo'])} | {r['goal']} | {'yes' if r['met'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def plot(run: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for name, res in run["_results"].items():
        t = [x - PRIOR_S for x, _, _ in res.replicas_t]
        a1.step(t, [n for _, n, _ in res.replicas_t], where="post", label=name, lw=1.6 if name == "foresail" else 0.9)
        m = res.scored()
        p99 = p99_by_window(res.arrivals[m] - PRIOR_S, res.latencies_ms[m], 1.0)
        a2.semilogy(range(len(p99)), [p if p is not None and np.isfinite(p) else 1e5 for p in p99], lw=1.4 if name == "foresail" else 0.7, label=name)
    a2.axhline(SLO_MS, color="k", ls="--", lw=0.8)
    a1.axvline(AT - PRIOR_S, color="0.5", lw=0.8)
    a2.axvline(AT - PRIOR_S, color="0.5", lw=0.8)
    a1.set_ylabel("replicas holding GPUs")
    a2.set_ylabel("p99 of 1 s windows, ms")
    a2.set_xlabel("seconds after the prior")
    a1.legend(ncol=6, fontsize=8)
    a1.set_title(f"{run['shape']} 10x, cold start {run['cold_start_s']:g} s, routing {run['routing']} (seed {run['seed']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m foresail.replay.reaction", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/bench")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--colds", default="10,30,60")
    ap.add_argument("--routing", default="least-outstanding,round-robin,per-connection")
    ap.add_argument("--repo", default=".", help="the checkout whose policies/scaling/balanced.yaml Foresail runs")
    args = ap.parse_args(argv)
    routings = [r for r in args.routing.split(",") if r]
    if not set(routings) <= set(ROUTINGS) or args.seeds < 1:
        print(f"--routing takes {', '.join(ROUTINGS)}; --seeds >= 1", file=sys.stderr)
        return 2
    behavior = balanced(Path(args.repo))
    cap = MODEL.capacity_rps(SLO_MS)
    low = round(1.5 * cap)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind in ("step", "ramp"):
        for cold in (float(c) for c in args.colds.split(",")):
            for routing in routings:
                runs = []
                for seed in range(1, args.seeds + 1):
                    log(f"{kind} cold {cold:g} s {routing} seed {seed}")
                    runs.append(one(Shape(kind, low, 10 * low), cold, routing, seed, behavior))
                plot(runs[0], out / f"reaction-{kind}-cold{cold:g}-{routing}.png")
                rows.append(aggregate([{k: v for k, v in r.items() if k != "_results"} for r in runs]))
    result = {"benchmark": "reaction", "slo_p99_ms": SLO_MS, "capacity_rps_per_replica": round(cap, 1), "low_rps": low,
              "model": {"base_ms": MODEL.base_ms, "per_item_ms": MODEL.per_item_ms, "max_batch": MODEL.max_batch}, "rows": rows}  # fmt: skip
    bench.write_result(out, "reaction", result, markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

