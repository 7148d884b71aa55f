"""``foresail replay``: one scenario through Foresail's decision code, the baselines and the oracles.

Every policy starts ``prior_s`` seconds before the scored window (the scenario's arrivals include that prior)
from the replicas the first 10 s need at 70% utilization; requests arriving and GPU-seconds spent before
``prior_s`` are not scored. Per policy: share of requests within the SLO (rejected ones miss), share of
1-minute windows with p99 within the SLO, GPU-seconds and their ratio to the denominators: the clairvoyant
oracle at 100% (``gpu_vs_oracle``), the clairvoyant oracle capped at the target share (default 99.5%:
``gpu_vs_oracle_capped``) and, with a frontier, the best baseline tuned in hindsight on the scored window
(``gpu_vs_hindsight``). ``run_seeds`` repeats a scenario over seeds and reports mean, min and max.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from foresail.api.scalingpolicy import ScalingBehavior
from foresail.replay import oracle, policies
from foresail.replay.progress import Bar
from foresail.replay.sim import ReplicaModel, Serving, SimConfig, SimResult, simulate
from foresail.replay.traces import Arrivals
from foresail.scaling.capacity import Calibration, Routing

__all__ = [
    "ALL",
    "CAPPED",
    "Scenario",
    "aggregate",
    "capped_oracle",
    "frontier",
    "hindsight_best",
    "markdown",
    "run_scenario",
    "run_seeds",
    "simulate_policy",
    "write",
]

CAPPED = "oracle-capped"
ALL = ("foresail", "hpa", "keda", "kpa", "static", "oracle", CAPPED)
BASELINES = ("hpa", "keda", "kpa", "static")


@dataclass(frozen=True)
class Scenario:
    name: str
    arrivals: Arrivals  # the prior, then the scored window
    model: ReplicaModel
    slo_ms: float
    cold_start_s: float
    behavior: ScalingBehavior
    min_replicas: int = 1
    max_replicas: int = 1000
    prior_s: float = 0.0
    serving: Serving = field(default_factory=Serving)
    seed: int = 0
    target_share: float = 0.995
    knobs: dict[str, float] = field(default_factory=dict)  # per policy; missing: its default

    def calibration(self) -> Calibration:
        """The replica model and routing as the decision's calibration (Foresail knows its own replicas)."""
        m, sv = self.model, self.serving
        return Calibration(m.base_ms, m.per_item_ms, m.max_batch, routing=Routing(sv.routing), connections=sv.connections)

    def config(self, tick_s: float, initial: int) -> SimConfig:
        return SimConfig(
            model=self.model,
            slo_ms=self.slo_ms,
            cold_start_s=self.cold_start_s,
            tick_s=tick_s,
            initial_replicas=max(initial, self.min_replicas),
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            serving=self.serving,
            score_from_s=self.prior_s,
            seed=self.seed,
        )


def _initial(sc: Scenario, cap: float) -> int:
    first = float(np.count_nonzero(sc.arrivals.times < 10.0)) / 10.0
    return policies.initial_replicas(first, cap)


def _row(res: SimResult, sc: Scenario, initial: int, knob: float | None) -> dict[str, Any]:
    n = res.requests()
    return {
        "within_slo": round(res.within_slo(sc.slo_ms), 5),
        "windows_within_slo": round(res.windows_within_slo(sc.slo_ms), 4),
        "rejected": round(res.rejected() / n, 5) if n else 0.0,
        "gpu_seconds": round(res.gpu_seconds, 1),
        "scale_actions": res.scale_actions,
        "peak_replicas": res.peak_replicas(initial),
        "knob": knob,
        "sim_seconds": round(res.wall_s, 3),
        "requests_per_s": round(len(res.arrivals) / max(res.wall_s, 1e-9)),
    }


def simulate_policy(
    sc: Scenario, name: str, cap: float, knob: float | None = None, bar: Bar | None = None
) -> tuple[SimResult, dict[str, Any]]:
    knob = sc.knobs.get(name, knob)
    pol, tick = policies.make(
        name,
        arrivals=sc.arrivals,
        capacity_rps=cap,
        calibration=sc.calibration(),
        slo_ms=sc.slo_ms,
        cold_start_s=sc.cold_start_s,
        behavior=ScalingBehavior().resolve(sc.behavior),
        min_replicas=sc.min_replicas,
        max_replicas=sc.max_replicas,
        knob=knob,
    )
    start = pol(_first_view()) if name == "static" else _initial(sc, cap)
    res = simulate(sc.arrivals, sc.config(tick, start), pol, progress=bar.sim(name) if bar else None)
    shown = knob if knob is not None else policies.KNOBS[name].default if name in policies.KNOBS else None
    if name == "foresail" and shown is None:
        shown = getattr(ScalingBehavior().resolve(sc.behavior), policies.FORESAIL_KNOB)
    return res, _row(res, sc, start, shown)


@dataclass(frozen=True)
class _Trial:
    res: SimResult
    budget: float  # estimated misses the plan may give up
    factor: float  # share of the capacity per replica the plan assumes
    misses: float  # simulated misses


def capped_oracle(sc: Scenario, cap: float, bar: Bar | None = None, trials: int = 6) -> tuple[SimResult, dict[str, Any]]:
    """The cheapest plateau-greedy plan (``oracle.Plateaus``) whose simulated share meets ``sc.target_share``.

    When the routing spreads load unevenly (per connection), even the full plan can miss the target: then the
    plan first assumes less capacity per replica (a factor searched down from 1: 0.8x per step, then
    bisection). The budget of estimated misses is then searched by regula falsi on the simulated misses:
    growing 4x until a plan misses the target, then interpolating between the last plan that met it and the
    first that did not."""
    scored = int(np.count_nonzero(sc.arrivals.times >= sc.prior_s))
    allowed = (1.0 - sc.target_share) * scored
    plateaus: dict[float, oracle.Plateaus] = {}

    def attempt(budget: float, factor: float, first: bool = False) -> _Trial:
        if factor not in plateaus:
            plateaus[factor] = oracle.Plateaus(sc.arrivals, cap * factor, sc.cold_start_s, sc.prior_s)
        plan = plateaus[factor].plan(budget)
        res = simulate(sc.arrivals, sc.config(1.0, int(max(plan[0], 1))), oracle.plan_policy(plan),
                       progress=bar.sim(CAPPED) if bar and first else None)  # fmt: skip
        return _Trial(res, budget, factor, (1.0 - res.within_slo(sc.slo_ms)) * scored)

    best = attempt(0.0, 1.0, first=True)
    if best.misses > allowed:
        best = _headroom(attempt, best, allowed)
        if best.misses > allowed:
            return _capped_row(sc, best)  # no plan found that meets the target
    lo, hi = (0.0, best.misses), None
    budget = 4.0 * max(allowed, 1.0)
    for _ in range(trials):
        trial = attempt(budget, best.factor)
        if trial.misses <= allowed:
            lo = (budget, trial.misses)
            best = min(best, trial, key=lambda x: x.res.gpu_seconds)
        else:
            hi = (budget, trial.misses)
        if hi is None:
            budget *= 4.0
            continue
        span = hi[0] - lo[0]
        guess = lo[0] + (allowed - lo[1]) * span / max(hi[1] - lo[1], 1e-9)
        budget = min(max(guess, lo[0] + 0.1 * span), hi[0] - 0.1 * span)
    return _capped_row(sc, best)


def _headroom(attempt: Callable[[float, float], _Trial], failed: _Trial, allowed: float, steps: int = 8) -> _Trial:
    """The largest capacity factor whose full plan meets the target (or the last failure)."""
    bad, ok = failed, None
    for _ in range(steps):
        trial = attempt(0.0, bad.factor * 0.8)
        if trial.misses <= allowed:
            ok = trial
            break
        bad = trial
    if ok is None:
        return bad
    for _ in range(3):
        trial = attempt(0.0, (ok.factor + bad.factor) / 2)
        ok, bad = (trial, bad) if trial.misses <= allowed else (ok, trial)
    return ok


def _capped_row(sc: Scenario, t: _Trial) -> tuple[SimResult, dict[str, Any]]:
    out = _row(t.res, sc, t.res.replicas_t[0][1] if t.res.replicas_t else 1, None)
    out["budget"] = round(t.budget, 1)
    out["capacity_factor"] = round(t.factor, 3)
    return t.res, out


def _first_view() -> Any:
    from foresail.replay.sim import PolicyView

    return PolicyView(0.0, 0.0, 0.0, 0.0, 0, 0, 0)


def frontier(sc: Scenario, cap: float, names: tuple[str, ...], bar: Bar | None = None) -> dict[str, list[dict[str, Any]]]:
    """Each causal policy's SLO share and GPU-seconds over its knob's grid."""
    out: dict[str, list[dict[str, Any]]] = {}
    swept = replace(sc, knobs={})
    for name in names:
        if name not in policies.KNOBS:
            continue
        pts = []
        for k in policies.KNOBS[name].grid:
            _, row = simulate_policy(swept, name, cap, k, bar)
            pts.append({"knob": k, "within_slo": row["within_slo"], "gpu_seconds": row["gpu_seconds"], "rejected": row["rejected"]})
        out[name] = pts
    return out


def hindsight_best(front: dict[str, list[dict[str, Any]]], target: float) -> dict[str, Any] | None:
    """The cheapest baseline setting that met ``target`` on the scored window (knowing it in hindsight)."""
    ok = [{"policy": n, **p} for n in BASELINES for p in front.get(n, []) if p["within_slo"] >= target]
    return min(ok, key=lambda p: p["gpu_seconds"]) if ok else None


def run_scenario(
    sc: Scenario, names: tuple[str, ...] = ALL, progress: bool = True, with_frontier: bool = False
) -> tuple[dict[str, Any], dict[str, SimResult]]:
    cap = sc.model.capacity_rps(sc.slo_ms)
    if cap <= 0:
        raise ValueError(f"a replica cannot meet a {sc.slo_ms} ms SLO at all (batch of 1 takes {sc.model.batch_ms(1)} ms)")
    sweep = tuple(n for n in names if n in policies.KNOBS) if with_frontier else ()
    bar = Bar(sc.name, len(names) + sum(len(policies.KNOBS[n].grid) for n in sweep), enabled=progress)
    results: dict[str, SimResult] = {}
    rows: dict[str, Any] = {}
    t0 = time.monotonic()
    try:
        for name in names:
            res, row = capped_oracle(sc, cap, bar) if name == CAPPED else simulate_policy(sc, name, cap, bar=bar)
            results[name], rows[name] = res, row
        front = frontier(sc, cap, sweep, bar) if sweep else None
    finally:
        bar.close()  # a live display ends even when a simulation raises
    best = hindsight_best(front, sc.target_share) if front else None
    denominators = {
        "gpu_vs_oracle": rows.get("oracle", {}).get("gpu_seconds"),
        "gpu_vs_oracle_capped": rows.get(CAPPED, {}).get("gpu_seconds"),
        "gpu_vs_hindsight": best["gpu_seconds"] if best else None,
    }
    for r in rows.values():
        for key, d in denominators.items():
            r[key] = round(r["gpu_seconds"] / d, 3) if d else None
    summary: dict[str, Any] = {
        "scenario": sc.name,
        "requests": int(np.count_nonzero(sc.arrivals.times >= sc.prior_s)),
        "prior_s": sc.prior_s,
        "duration_s": round(sc.arrivals.duration - sc.prior_s, 1),
        "slo_p99_ms": sc.slo_ms,
        "cold_start_s": sc.cold_start_s,
        "capacity_rps_per_replica": round(cap, 1),
        "routing": sc.serving.routing,
        "connections": {"count": sc.serving.connections, "mean_lifetime_s": sc.serving.connection_lifetime_s}
        if sc.serving.routing == "per-connection"
        else None,
        "queue": {"max": sc.serving.queue_max, "timeout_ms": sc.serving.queue_timeout_ms},
        "seed": sc.seed,
        "target_share": sc.target_share,
        "model": {"base_ms": sc.model.base_ms, "per_item_ms": sc.model.per_item_ms, "max_batch": sc.model.max_batch},
        "policies": rows,
        "hindsight_best": best,
        "frontier": front,
        "wall_s": round(time.monotonic() - t0, 2),
    }
    return summary, results


# ------------------------------------------------------------------ several seeds

NUMERIC = ("within_slo", "windows_within_slo", "rejected", "gpu_seconds", "gpu_vs_oracle", "gpu_vs_oracle_capped",
           "gpu_vs_hindsight", "peak_replicas", "scale_actions", "capacity_factor")  # fmt: skip


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, min and max over seeds of every figure of every policy (the first run's settings)."""
    out = {k: v for k, v in runs[0].items() if k not in ("policies", "frontier", "hindsight_best", "seed", "wall_s")}
    out["seeds"] = [r["seed"] for r in runs]
    out["wall_s"] = round(sum(r["wall_s"] for r in runs), 2)
    pols: dict[str, Any] = {}
    for name in runs[0]["policies"]:
        pols[name] = {"knob": runs[0]["policies"][name].get("knob")}
        for key in NUMERIC:
            vals = [r["policies"][name][key] for r in runs if r["policies"][name].get(key) is not None]
            if vals:
                pols[name][key] = {"mean": round(float(np.mean(vals)), 5), "min": min(vals), "max": max(vals)}
    out["policies"] = pols
    if runs[0].get("frontier"):
        out["frontier"] = {
            name: [
                {
                    "knob": pt["knob"],
                    "within_slo": round(float(np.mean([r["frontier"][name][i]["within_slo"] for r in runs])), 5),
                    "gpu_seconds": round(float(np.mean([r["frontier"][name][i]["gpu_seconds"] for r in runs])), 1),
                }
                for i, pt in enumerate(pts)
            ]
            for name, pts in runs[0]["frontier"].items()
        }
        out["hindsight_best"] = [r["hindsight_best"] for r in runs]
    return out


def run_seeds(
    build: Callable[[int], Scenario], seeds: list[int], names: tuple[str, ...] = ALL, progress: bool = True,
    with_frontier: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, SimResult], Scenario]:  # fmt: skip
    """The scenario for each seed; the aggregate, the per-seed summaries, and the first seed's results."""
    runs: list[dict[str, Any]] = []
    first: tuple[dict[str, SimResult], Scenario] | None = None
    for seed in seeds:
        sc = build(seed)
        summary, results = run_scenario(sc, names, progress, with_frontier)
        runs.append(summary)
        first = first or (results, sc)
    assert first is not None
    return aggregate(runs), runs, first[0], first[1]


# ------------------------------------------------------------------ report


def _num(x: float, pct: bool) -> str:
    if pct:
        return f"{100 * x:.2f}%"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _mean(x: Any) -> float:
    return float(x["mean"] if isinstance(x, dict) else x)


def _fig(x: Any, pct: bool = False, suffix: str = "") -> str:
    """A figure, or mean (min-max) over seeds."""
    if x is None:
        return "-"
    if isinstance(x, dict):
        mean = _num(x["mean"], pct) + suffix
        return mean if x["min"] == x["max"] else f"{mean} ({_num(x['min'], pct)}-{_num(x['max'], pct)})"
    return _num(x, pct) + suffix


def markdown(summary: dict[str, Any]) -> str:
    seeds = summary.get("seeds")
    lines = [
        f"**{summary['scenario']}**: {summary['requests']} scored requests over {summary['duration_s']} s after a "
        f"{summary['prior_s']:g} s unscored prior, SLO p99 {summary['slo_p99_ms']} ms, cold start {summary['cold_start_s']} s, "
        f"{summary['capacity_rps_per_replica']} rps per replica at the SLO; routing **{summary['routing']}**"
        + (f", {summary['connections']['count']} connections (mean lifetime {summary['connections']['mean_lifetime_s']:g} s)" if summary.get("connections") else "")
        + (f"; bounded queue {summary['queue']['max'] or 'unbounded'} / timeout {summary['queue']['timeout_ms'] or 'none'} ms" if summary["queue"]["max"] or summary["queue"]["timeout_ms"] else "")
        + (f"; mean (min-max) over seeds {seeds}" if seeds else ""),
        "",
        "| policy | knob | requests within SLO | rejected | 1-min windows within SLO | GPU-seconds | vs oracle | vs oracle "
        f"{100 * summary['target_share']:g}% | vs hindsight-best | peak replicas |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, r in summary["policies"].items():
        lines.append(
            f"| {name} | {_fig(r.get('knob'))} | {_fig(r['within_slo'], True)} | {_fig(r['rejected'], True)} | "
            f"{_fig(r['windows_within_slo'], True)} | {_fig(r['gpu_seconds'])} | {_fig(r.get('gpu_vs_oracle'), suffix='x')} | "
            f"{_fig(r.get('gpu_vs_oracle_capped'), suffix='x')} | {_fig(r.get('gpu_vs_hindsight'), suffix='x')} | {_fig(r['peak_replicas'])} |"
        )
    full, capped = summary["policies"].get("oracle"), summary["policies"].get(CAPPED)
    if full and _mean(full["within_slo"]) < 1.0:
        lines.append(
            f"\nUnder this routing the oracle's plan (load spread evenly) serves only {_fig(full['within_slo'], True)} within the SLO."
        )
    if capped and _mean(capped.get("capacity_factor", 1.0)) < 1.0:
        lines.append(f"The capped oracle met the target only by planning with {_fig(capped['capacity_factor'])} of the capacity per replica.")
    best = summary.get("hindsight_best")
    picks = [b for b in (best if isinstance(best, list) else [best]) if b]
    if picks:
        names = sorted({f"{b['policy']} {b['knob']:g}" for b in picks})
        lines.append(
            f"\nHindsight-best baseline on the scored window: {', '.join(names)} ({len(picks)} of "
            f"{len(best) if isinstance(best, list) else 1} runs reach the target), "
            f"{sum(b['gpu_seconds'] for b in picks) / len(picks):.0f} GPU-s, {100 * sum(b['within_slo'] for b in picks) / len(picks):.2f}% within SLO"
        )
    if summary.get("frontier"):
        lines += ["", "Frontier (knob: share within SLO / GPU-seconds):", ""]
        for name, pts in summary["frontier"].items():
            lines.append(f"- {name}: " + ", ".join(f"{p['knob']:g}: {100 * p['within_slo']:.2f}% / {p['gpu_seconds']:.0f}" for p in pts))
    return "\n".join(lines) + "\n"


def write(summary: dict[str, Any], sc: Scenario, results: dict[str, SimResult], out: Path, png: bool = True,
          per_seed: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    stem = summary["scenario"]
    (out / f"{stem}.json").write_text(json.dumps({**summary, "per_seed": per_seed} if per_seed else summary, indent=1))
    (out / f"{stem}.md").write_text(markdown(summary))
    if png:
        from foresail.replay import plots

        plots.timeline(summary if not per_seed else per_seed[0], sc, results, out / f"{stem}.png")
        if summary.get("frontier"):
            plots.frontier(summary, out / f"{stem}-frontier.png")
