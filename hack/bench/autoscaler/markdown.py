"""The benchmarks' markdown tables. Pure."""

from __future__ import annotations

from typing import Any

__all__ = ["closed_loop_markdown", "reaction_markdown"]


def _fmt_s(x: float | None) -> str:
    return "never" if x is None else f"{x:g} s"


def reaction_markdown(r: dict[str, Any]) -> str:
    head = (
        f"**Reaction ({r['benchmark']})**: SLO p99 {r['slo_p99_ms']} ms"
        + (f", {r['capacity_rps_per_replica']} rps per replica at the SLO" if "capacity_rps_per_replica" in r else "")
        + f"; Foresail `{r['foresail_policy']}` (tick {r['foresail_tick_s']:g} s). Step goal: p99 back within the SLO "
        "(and staying there) within cold start + 2 ticks; ramp goal: no request over the SLO."
        + (f" Emulated model's cold requests: {r['emulated_cold_requests']}." if "emulated_cold_requests" in r else "")
        + "\n"
    )
    lines = [
        head,
        "Recovery: from the step until the p99 of the requests arriving in each window is within the SLO and stays "
        "there to the end of the run, or (last recovery column) for at least 30 s, so that a later, unrelated stall "
        "does not count as the step's.\n",
        "| step | cold start | policy | replicas before / peak | recovery, 1 s windows | 5 s windows | 5 s windows, held 30 s "
        "| goal | met (to the end / held 30 s) | requests over SLO | worst 5 s p99 | GPU-s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in (x for x in r["rows"] if x["shape"] == "step"):
        met = [
            "yes" if v is not None and v <= x["goal_recovery_s"] else "no"
            for v in (x["recovery_5s_s"], x.get("recovery_5s_hold30_s"))
        ]
        lines.append(
            f"| {x['profile']} | {x['cold_start_s']:g} s | {x['policy']} | {x['replicas_before']} / {x['peak_replicas']} "
            f"| {_fmt_s(x['recovery_1s_s'])} | {_fmt_s(x['recovery_5s_s'])} | {_fmt_s(x.get('recovery_5s_hold30_s'))} "
            f"| {x['goal_recovery_s']:g} s | {met[0]} / {met[1]} | {x['over_slo']} ({100 * x['over_slo_share']:.2f}%) "
            f"| {x['worst_p99_5s_ms']} ms | {x['gpu_seconds']:.0f} |"
        )
    ramps = [x for x in r["rows"] if x["shape"] == "ramp"]
    if ramps:
        lines += [
            "",
            "| ramp (300 s) | cold start | policy | requests over SLO | goal met (none) | worst 5 s p99 | GPU-s | peak replicas |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for x in ramps:
            lines.append(
                f"| {x['profile']} | {x['cold_start_s']:g} s | {x['policy']} | {x['over_slo']} of {x['requests']} "
                f"({100 * x['over_slo_share']:.2f}%) | {'yes' if x['over_slo'] == 0 else 'no'} | {x['worst_p99_5s_ms']} ms "
                f"| {x['gpu_seconds']:.0f} | {x['peak_replicas']} |"
            )
    return "\n".join(lines) + "\n"


def closed_loop_markdown(r: dict[str, Any]) -> str:
    s, real = r["slice"], r["real"]
    lines = [
        f"**Closed loop**: {r['trace']} {s['start_s']}-{s['start_s'] + s['duration_s']} s compressed {s['compress']:g}x "
        f"({s['wall_s']:g} s), rate x{s['rate_scale']} (busiest 10 s {r['busiest_10s_rps']} rps, planned for "
        f"~{r['target_peak_replicas']} replicas); SLO p99 {r['slo_p99_ms']} ms, capacity prior {r['capacity_prior_rps']:g} rps; "
        f"warm start with {r['warm_start_replicas']} replicas, at most {r['max_replicas']}; emulated model's cold requests "
        f"{r['emulated_cold_requests']}; "
        f"measured cold start median {real['cold_start']['median_s']} s (p90 {real['cold_start']['p90_s']} s); "
        f"machine CPU busy {100 * (real['cpu_busy_mean'] or 0):.0f}% mean, {100 * (real['cpu_busy_max'] or 0):.0f}% max.\n",
        "| run | requests within SLO | replica-seconds | peak replicas | SLO points apart | replica-seconds apart | agrees (2 points, 10%) |",
        "|---|---|---|---|---|---|---|",
        f"| cluster (real Triton, operator) | {100 * real['within_slo']:.2f}% | {real['replica_seconds']:.0f} | {real['peak_replicas']} | - | - | - |",
    ]
    for label, p in r["predicted"].items():
        lines.append(
            f"| simulator, {label} | {100 * p['within_slo']:.2f}% | {p['replica_seconds']:.0f} | {p['peak_replicas']} "
            f"| {p['slo_points_apart']} | {100 * p['replica_seconds_apart']:.1f}% | {'yes' if p['agrees'] else 'no'} |"
        )
    st = r["replay_stock"]
    lines += [
        "",
        f"Stock `foresail replay` conventions on the same arrivals (capacity {st['capacity_rps_per_replica']} rps per replica "
        "from the model at the SLO, 30 s rate window, warm start):",
        "",
        "| policy | within SLO | GPU-seconds | vs oracle | peak replicas |",
        "|---|---|---|---|---|",
        *[
            f"| {n} | {100 * p['within_slo']:.2f}% | {p['gpu_seconds']:.0f} | {p['gpu_vs_oracle']}x | {p['peak_replicas']} |"
            for n, p in st["policies"].items()
        ],
    ]
    return "\n".join(lines) + "\n"
