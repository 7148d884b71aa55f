"""The EvalJob benchmarks' markdown tables. Pure."""

from __future__ import annotations

from typing import Any

__all__ = ["markdown"]


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "| concurrency | batch | perf_analyzer items/s (gRPC) | eval worker EPS (fixed bound) | ratio | adaptive EPS | ratio | bare tritonclient loop | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in r["throughput"]:
        lines.append(
            f"| {t['concurrency']} | {t['batch']} | {t['perf_analyzer_eps']} | {t['eval_eps']} | {t['ratio']:.1%} | "
            f"{t['eval_adaptive_eps']} | {t['adaptive_ratio']:.1%} | {t['bare_tritonclient_eps']} | {t['bare_ratio']:.1%} |"
        )
    s = r["shared"]
    lines += [
        "",
        f"Shared mode: SLO {s['slo_ms']} ms, production {s['production_rps']} rps (70% of {s['capacity_rps']} rps).",
        "",
        "| run | production p99 ms | production p50 ms | production errors | eval EPS | eval throttled s |",
        "|---|---|---|---|---|---|",
        f"| production alone | {s['alone']['p99_ms']} | {s['alone']['p50_ms']} | {s['alone']['errors']} | - | - |",
    ]
    for name, key in (("with a yielding EvalJob", "with_yielding_eval"), ("with a non-yielding EvalJob", "with_greedy_eval")):
        w = s[key]
        lines.append(
            f"| {name} | {w['production']['p99_ms']} | {w['production']['p50_ms']} | {w['production']['errors']} | "
            f"{w['eval']['eps']} | {w['eval']['throttled_s']} |"
        )
    rs = r["resume"]
    lines += [
        "",
        f"Resume: uninterrupted {rs['uninterrupted_s']} s; killed at {rs['killed_at_items']} items after {rs['first_part_s']} s, "
        f"resumed in {rs['second_part_s']} s (total {rs['total_s']} s); identical results: {rs['identical_results']}.",
        "",
    ]
    return "\n".join(lines)
