"""The demo's report: the markdown (pure) and the PNG (requests/s, replicas and warm replicas; p99 per 10 s)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from foresail.replay.figures import busiest_window, share_within
from hack.loadgen.records import Record

__all__ = ["demo_checks", "p99_per_window", "plot", "report_markdown"]

P99_MIN_REQUESTS = 50  # a 10 s window with fewer successful requests has no meaningful p99 to compare


def p99_per_window(records: list[Record], window_s: float = 10.0) -> dict[float, float]:
    """The load generator's p99 (nearest rank below) of successful requests by send time window. Pure."""
    by: dict[float, list[float]] = {}
    for r in records:
        if r.ok:
            by.setdefault(int(r.sent // window_s) * window_s, []).append(r.latency_ms)
    return {k: sorted(v)[int(0.99 * (len(v) - 1))] for k, v in sorted(by.items())}


def _p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[int(0.99 * (len(ordered) - 1))]


def demo_checks(rows: list[dict[str, Any]], records: list[Record], window_s: float = 10.0) -> dict[str, Any]:
    """Issue 13's demo figures. Pure.

    * Replicas against need: the busiest ``window_s`` of the load generator's sends over the capacity per
      replica the operator planned with (``status.recommendation.capacityRps`` at the replica count: the
      calibration curve's table, or the flat ``capacityPerReplicaRps``, as ``capacitySource`` says; the median
      of the samples in that window and the next, as status lags by its window, else of all) gives the
      replicas the peak needs; the goal is a peak of at most one more.
    * The p99 in status against the load generator's: each sample's ``observed.p99Ms`` (Triton's counters,
      the 10 s window) beside the p99 of the requests sent in the ``window_s`` before the sample (at least
      ``P99_MIN_REQUESTS``); the goal is the median ratio within 20%.
    """
    per_second: dict[int, int] = {}
    for r in records:
        per_second[int(r.sent)] = per_second.get(int(r.sent), 0) + 1
    span = max(per_second, default=-1) + 1
    counts = [float(per_second.get(i, 0)) for i in range(span)]
    start, peak_rps = busiest_window(counts, int(window_s))
    t0 = min((r.sent_unix - r.sent for r in records if r.sent_unix), default=0.0)
    lo, hi = t0 + start, t0 + start + window_s
    caps = [float(r["capacity_rps"]) for r in rows if r.get("capacity_rps")]
    in_peak = [
        float(r["capacity_rps"]) for r in rows if r.get("capacity_rps") and r.get("unix") and lo <= r["unix"] <= hi + window_s
    ]
    capacity = statistics.median(in_peak or caps) if caps else None
    needed = math.ceil(peak_rps / capacity) if capacity else None
    peak_replicas = max((r["replicas"] for r in rows), default=0)
    pairs: list[tuple[float, float]] = []
    ok = [(r.sent_unix, r.latency_ms) for r in records if r.ok and r.sent_unix]
    for row in rows:
        if not row.get("p99_ms") or not row.get("unix"):
            continue
        lat = [ms for t, ms in ok if row["unix"] - window_s <= t < row["unix"]]
        if len(lat) >= P99_MIN_REQUESTS:
            pairs.append((float(row["p99_ms"]), _p99(lat)))
    ratios = [status / gen for status, gen in pairs if gen > 0]
    median_ratio = statistics.median(ratios) if ratios else None
    sources = [str(r["capacity_source"]) for r in rows if r.get("capacity_source")]
    return {
        "peak_rps_10s": round(peak_rps, 1),
        "capacity_source": statistics.mode(sources) if sources else None,
        "capacity_rps_per_replica": round(capacity, 1) if capacity else None,
        "needed_replicas": needed,
        "peak_replicas": peak_replicas,
        "replicas_goal_met": needed is not None and peak_replicas <= needed + 1,
        "p99_samples": len(ratios),
        "p99_status_over_loadgen_median": round(median_ratio, 3) if median_ratio else None,
        "p99_samples_within_20pct": round(sum(1 for x in ratios if abs(x - 1) <= 0.2) / len(ratios), 3) if ratios else None,
        "p99_goal_met": median_ratio is not None and abs(median_ratio - 1) <= 0.2,
    }


def report_markdown(
    trace: str, rows: list[dict[str, Any]], summary: dict[str, Any], records: list[Record], slo: float, sample_s: float
) -> str:
    within = share_within([r.latency_ms if r.ok else float("inf") for r in records], slo)
    lines = [
        "# Foresail demo report",
        "",
        f"Trace: {trace}, a compressed slice, through the load generator; SLO p99 {slo:g} ms.",
        "",
        f"- requests: {summary['requests']}, errors: {summary['errors']}, within SLO: {100 * within:.2f}%",
        f"- p50 / p95 / p99: {summary['p50_ms']} / {summary['p95_ms']} / {summary['p99_ms']} ms",
        f"- peak replicas: {max((r['replicas'] for r in rows), default=0)}, "
        f"replica-seconds: {sum(r['replicas'] for r in rows) * sample_s:.0f} ({sample_s:g} s samples)",
        *_checks_lines(demo_checks(rows, records)),
        "",
        "![timeline](demo.png)",
        "",
        "Tenant at the end (`kubectl get tenants`):",
        "",
        "```",
        summary.get("tenants", "").rstrip(),
        "```",
        "",
        "| t (s) | replicas | warm | arrival rps | queue | p99 ms | reason |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {r['t']} | {r['replicas']} | {r['warm']} | {r['arrival_rps']} | {r['queue']} | {r['p99_ms']} | {r['reason']} |"
            for r in rows[::5]
        ],
    ]
    return "\n".join(lines) + "\n"


def _checks_lines(c: dict[str, Any]) -> list[str]:
    yes = {True: "met", False: "not met"}
    return [
        f"- replicas against need: busiest 10 s {c['peak_rps_10s']} rps / {c['capacity_rps_per_replica']} rps per replica "
        f"(status.recommendation, source {c['capacity_source']}) = {c['needed_replicas']} needed; peak {c['peak_replicas']} "
        f"(goal: at most one more: {yes[c['replicas_goal_met']]})",
        f"- p99 in status / the load generator's over the same 10 s: median {c['p99_status_over_loadgen_median']} over "
        f"{c['p99_samples']} samples, {c['p99_samples_within_20pct']} of them within 20% "
        f"(goal: the median within 20%: {yes[c['p99_goal_met']]})",
    ]


def plot(path: Path, rows: list[dict[str, Any]], records: list[Record], slo: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    secs: dict[int, int] = {}
    for r in records:
        secs[int(r.sent)] = secs.get(int(r.sent), 0) + 1
    a1.plot(list(secs), list(secs.values()), color="0.6", lw=0.8, label="requests/s")
    ax = a1.twinx()
    ax.step([r["t"] for r in rows], [r["replicas"] for r in rows], where="post", color="C0", label="replicas")
    ax.step([r["t"] for r in rows], [r["warm"] for r in rows], where="post", color="C2", label="warm")
    a1.legend(loc="upper left")
    ax.legend(loc="upper right")
    p99 = p99_per_window(records)
    a2.plot(list(p99), list(p99.values()), marker="o", label="p99 per 10 s (load generator)")
    a2.axhline(slo, color="C3", ls="--", label="SLO")
    a2.set_xlabel("seconds")
    a2.set_ylabel("ms")
    a2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
