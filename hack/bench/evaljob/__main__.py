"""``python -m hack.bench.evaljob``: the three benchmarks (see the package's description)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from hack.base.paths import E2E_MODELS, OUT
from hack.bench import evaljob
from hack.bench.evaljob.markdown import markdown
from hack.bench.evaljob.production import production, shared
from hack.bench.evaljob.worker import MODEL, bare, dataset, evaluate
from hack.bench.report import write_report
from hack.calibrate.perf import measure
from hack.calibrate.server import LocalTriton, start_triton


def throughput(server: LocalTriton, n: int, tmp: Path) -> list[dict[str, Any]]:
    """Worker EPS (fixed bound, adaptive) and a bare client loop against perf_analyzer at equal bounds."""
    rows = []
    grpc = server.grpc
    for conc, batch in ((8, 1), (16, 1), (8, 4)):
        # perf_analyzer before and after the others: a drift of the machine shows, and is averaged
        pa1 = measure(MODEL, grpc, conc, 3000, protocol="grpc", batch=batch)
        fixed = asyncio.run(evaluate(grpc, dataset(n), tmp / f"fixed-{conc}-{batch}", conc, conc, batch))
        adaptive = asyncio.run(evaluate(grpc, dataset(n), tmp / f"aimd-{conc}-{batch}", 1, conc, batch))
        loop = asyncio.run(bare(grpc, conc, batch, n))
        pa2 = measure(MODEL, grpc, conc, 3000, protocol="grpc", batch=batch)
        pa = round((pa1["throughput_rps"] + pa2["throughput_rps"]) / 2, 2)
        rows.append({
            "concurrency": conc, "batch": batch, "perf_analyzer_eps": pa,
            "perf_analyzer_runs": [pa1["throughput_rps"], pa2["throughput_rps"]], "load_avg_1m": round(os.getloadavg()[0], 2),
            "eval_eps": fixed["eps"], "ratio": round(fixed["eps"] / pa, 3),
            "eval_adaptive_eps": adaptive["eps"], "adaptive_ratio": round(adaptive["eps"] / pa, 3),
            "bare_tritonclient_eps": loop, "bare_ratio": round(loop / pa, 3),
            "accuracy": fixed["accuracy"], "pa_p99_ms": pa2["p99_ms"],
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows


def shared_mode(server: LocalTriton, n: int, tmp: Path, quick: bool) -> dict[str, Any]:
    """Production at 70% of the capacity at the SLO (4x a single request's p50), alone and with evaluations."""
    http = server.http
    single = measure(MODEL, http, 1, 2000, protocol="http")
    slo = round(4 * single["p50_ms"], 1)
    cands = [measure(MODEL, http, c, 2000, protocol="http") for c in (2, 4, 8, 16)]
    capacity = max((c["throughput_rps"] for c in cands if c["p99_ms"] <= slo), default=cands[0]["throughput_rps"])
    rate = round(0.7 * capacity, 1)
    seconds = 30.0 if quick else 60.0
    args = (http, server.grpc, server.metrics, rate, seconds, slo, tmp)
    return {
        "slo_ms": slo,
        "capacity_rps": capacity,
        "production_rps": rate,
        "alone": production(http, rate, seconds, tmp, "alone"),
        "with_yielding_eval": asyncio.run(shared(*args, True, n)),
        "with_greedy_eval": asyncio.run(shared(*args, False, n)),
    }


def resume(server: LocalTriton, n: int, tmp: Path) -> dict[str, Any]:
    """An evaluation stopped half way and resumed, against an uninterrupted one."""
    items, grpc = dataset(n, seed=9), server.grpc
    whole = asyncio.run(evaluate(grpc, items, tmp / "whole", 8, 8, 4))
    first = asyncio.run(evaluate(grpc, items, tmp / "resumed", 8, 8, 4, stop_at=n // 2))
    second = asyncio.run(evaluate(grpc, items, tmp / "resumed", 8, 8, 4))
    same = (tmp / "whole/shard-0.final.jsonl").read_bytes() == (tmp / "resumed/shard-0.final.jsonl").read_bytes()
    return {
        "uninterrupted_s": whole["wall_s"],
        "killed_at_items": first["items"],
        "first_part_s": first["wall_s"],
        "second_part_s": second["wall_s"],
        "total_s": round(first["wall_s"] + second["wall_s"], 3),
        "identical_results": same,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="hack.bench.evaljob", description=evaljob.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default=str(OUT / "bench"))
    p.add_argument("--quick", action="store_true", help="smaller runs (a smoke test of the benchmark)")
    args = p.parse_args(argv)
    n = 1000 if args.quick else 4000
    server = start_triton(E2E_MODELS, MODEL, {})
    results: dict[str, Any] = {"model": MODEL, "items": n}
    try:
        with tempfile.TemporaryDirectory(prefix="foresail-bench-eval-") as tmpd:
            tmp = Path(tmpd)
            measure(MODEL, server.http, 1, 1000, protocol="http")  # past the model's cold requests
            results["throughput"] = throughput(server, n, tmp)
            results["shared"] = shared_mode(server, n, tmp, args.quick)
            print(json.dumps(results["shared"]), flush=True)
            results["resume"] = resume(server, n, tmp)
    finally:
        server.stop()
    write_report(Path(args.out), "evaljob", results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
