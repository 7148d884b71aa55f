"""The demo's report: the markdown (pure) and the PNG (requests/s, replicas and warm replicas; p99 per 10 s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from foresail.replay.figures import share_within
from hack.loadgen.records import Record

__all__ = ["p99_per_window", "plot", "report_markdown"]


def p99_per_window(records: list[Record], window_s: float = 10.0) -> dict[float, float]:
    """The load generator's p99 (nearest rank below) of successful requests by send time window. Pure."""
    by: dict[float, list[float]] = {}
    for r in records:
        if r.ok:
            by.setdefault(int(r.sent // window_s) * window_s, []).append(r.latency_ms)
    return {k: sorted(v)[int(0.99 * (len(v) - 1))] for k, v in sorted(by.items())}


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
