"""EvalJob benchmarks against one real Triton replica of the emulated model (on loopback).

    .venv/bin/python -m hack.bench_evaljob [--out out/bench] [--quick]

1. Throughput: evaluations/s of the eval worker's core (``evaluation.runner`` with the worker's own
   Triton client, gRPC) at a fixed concurrency bound, relative to ``perf_analyzer``'s throughput at the
   same concurrency and batch size (gRPC). Also the adaptive limiter (1..bound) on its own, and the
   simplest possible tritonclient loop (the Python client library's ceiling on this machine).
2. Shared mode: production traffic at 70% of the replica's capacity at the SLO (open loop, the load
   generator), alone and then with an evaluation yielding to it (production pressure from Triton's own
   queue and p99 metrics, as the worker reads them through Prometheus), and with one that does not yield.
   Production p99 and the evaluation's EPS.
3. Resume: an evaluation stopped at 50% (requests in flight are lost and redone) and resumed on
   the same results directory, against an uninterrupted one: identical result files, and the wall time.

The worker core is what runs in the eval pods; the pod, its scheduling and Prometheus's scrape delay are
not part of these figures (the e2e suite runs the whole thing on the local cluster). Writes JSON and a
markdown table to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from foresail.clients.triton import EvalClient
from foresail.evaluation.dataset import Item, load_jsonl
from foresail.evaluation.limiter import AIMDLimiter, production_pressure
from foresail.evaluation.progress import ShardProgress
from foresail.evaluation.results import ResultStore
from foresail.evaluation.runner import run_shard
from foresail.evaluation.scoring import make_scorer
from hack.calibrate import measure, start_triton
from hack.cluster import REPO

MODEL = "emulated"
FLUSH_EVERY_S = 0.25  # as the worker: results reach the disk (fsync) at least this often


def dataset(n: int, seed: int = 3) -> list[Item]:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        x = rng.random(16).astype(np.float32).round(4)
        lines.append(json.dumps({"id": f"e{i:06d}", "inputs": {"INPUT0": x.tolist()}, "expected": {"OUTPUT0": (x * 2).tolist()}}))
    return load_jsonl("\n".join(lines).encode())


async def evaluate(
    port: int,
    items: list[Item],
    directory: Path,
    lo: int,
    hi: int,
    batch: int,
    pressure_from: int | None = None,
    slo_ms: float | None = None,
    stop_at: int | None = None,
) -> dict[str, Any]:
    """Run the worker core (gRPC, as the worker) on ``items``; ``pressure_from``: Triton's metrics port to
    yield to production."""
    client = EvalClient(MODEL)
    addr = f"127.0.0.1:{port}"
    shape = await client.describe(addr)
    limiter = AIMDLimiter(lo, hi, initial=lo, latency_target_ms=slo_ms)
    store = ResultStore(directory, 0)
    stop = asyncio.Event()
    peak = {"limit": 0}

    async def infer(b: list[Item]) -> Any:
        return await client.infer(addr, shape, [it.inputs for it in b])

    async def report(p: ShardProgress) -> None:
        peak["limit"] = max(peak["limit"], p.limit)
        if stop_at is not None and p.done >= stop_at:
            stop.set()

    async def yield_loop() -> None:
        assert pressure_from is not None
        while True:
            q, p99 = await asyncio.to_thread(triton_signals, pressure_from)
            limiter.set_pressure(production_pressure(q, p99, slo_ms), time.monotonic())
            await asyncio.sleep(1.0)

    task = asyncio.create_task(yield_loop()) if pressure_from is not None else None
    t0 = time.monotonic()
    try:
        summary = await run_shard(
            items, store, infer, make_scorer("numericTolerance", "OUTPUT0", 1e-5, 1e-5), limiter, time.monotonic, report,
            batch_size=batch, stop=stop, report_every_s=0.5, record_outputs=False, flush_every_s=FLUSH_EVERY_S,
        )  # fmt: skip
    finally:
        if task is not None:
            task.cancel()
        await client.close()
    wall = time.monotonic() - t0
    return {
        "items": summary.done,
        "wall_s": round(wall, 3),
        "eps": round(summary.done / wall, 1) if wall > 0 else 0.0,
        "errors": summary.errors,
        "accuracy": summary.score.get("accuracy"),
        "throttled_s": summary.throttled_s,
        "peak_limit": peak["limit"],
        "stopped": summary.stopped,
    }


_METRIC = re.compile(r"^(nv_inference_pending_request_count|nv_inference_request_summary_us)\{([^}]*)\} ([0-9.eE+-]+|NaN)$")


def triton_signals(metrics_port: int) -> tuple[float | None, float | None]:
    """Queue depth and p99 (ms) from Triton's metrics endpoint."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None, None
    queue = p99 = None
    for line in text.splitlines():
        m = _METRIC.match(line)
        if not m or f'model="{MODEL}"' not in m.group(2):
            continue
        if m.group(1) == "nv_inference_pending_request_count":
            queue = float(m.group(3))
        elif 'quantile="0.99"' in m.group(2):
            v = float(m.group(3))
            p99 = 0.0 if v != v else v / 1000.0  # NaN: nothing served lately
    return queue, p99


def loadgen(http: int, rate: float, seconds: float, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "hack.loadgen", "--endpoints", f"127.0.0.1:{http}", "--model", MODEL,
            "--profile", f"step:from={rate},to={rate},at=0", "--duration", str(seconds), "--summary", str(out),
        ],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def production(http: int, rate: float, seconds: float, tmp: Path, name: str) -> dict[str, Any]:
    out = tmp / f"{name}.json"
    proc = loadgen(http, rate, seconds, out)
    _, err = proc.communicate(timeout=seconds + 60)
    if proc.returncode != 0:
        raise SystemExit(f"bench: loadgen failed: {err[-1000:]}")
    s: dict[str, Any] = json.loads(out.read_text())
    return {k: s[k] for k in ("requests", "errors", "achieved_rps", "p50_ms", "p99_ms", "max_ms")}


async def bare(port: int, conc: int, batch: int, n: int) -> float:
    """Items/s of the simplest possible tritonclient gRPC loop at a fixed concurrency: the library's ceiling."""
    import tritonclient.grpc.aio as triton_grpc

    c = triton_grpc.InferenceServerClient(f"127.0.0.1:{port}")
    x = np.random.default_rng(0).random((batch, 16)).astype(np.float32)
    sem = asyncio.Semaphore(conc)

    async def one() -> None:
        async with sem:
            inp = triton_grpc.InferInput("INPUT0", [batch, 16], "FP32")
            inp.set_data_from_numpy(x)
            await c.infer(MODEL, [inp])

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(n // batch)))
    dt = time.monotonic() - t0
    await c.close()
    return round((n // batch) * batch / dt, 1)


async def shared(
    http: int, grpc: int, metrics: int, rate: float, seconds: float, slo: float, tmp: Path, yield_: bool, n: int
) -> dict[str, Any]:
    out = tmp / f"shared-{yield_}.json"
    proc = loadgen(http, rate, seconds, out)
    await asyncio.sleep(3)  # production first
    items = dataset(n, seed=5)
    ev = await asyncio.wait_for(
        evaluate(grpc, items, tmp / f"shared-{yield_}", 1, 16, 1, metrics if yield_ else None, slo if yield_ else None,
                 stop_at=None),
        timeout=seconds + 120,
    )  # fmt: skip
    _, err = await asyncio.to_thread(proc.communicate, None, seconds + 60)
    if proc.returncode != 0:
        raise SystemExit(f"bench: loadgen failed: {err[-1000:]}")
    s = json.loads(out.read_text())
    return {"production": {k: s[k] for k in ("requests", "errors", "achieved_rps", "p50_ms", "p99_ms", "max_ms")}, "eval": ev}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="hack.bench_evaljob", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="out/bench")
    p.add_argument("--quick", action="store_true", help="smaller runs (a smoke test of the benchmark)")
    args = p.parse_args(argv)
    out = REPO / args.out
    out.mkdir(parents=True, exist_ok=True)
    n = 1000 if args.quick else 4000
    proc, http, grpc, logf = start_triton(REPO / "e2e/models", MODEL, {})
    metrics = _metrics_port(logf)
    results: dict[str, Any] = {"model": MODEL, "items": n}
    try:
        with tempfile.TemporaryDirectory(prefix="foresail-bench-eval-") as tmpd:
            tmp = Path(tmpd)
            measure(MODEL, http, 1, 1000, protocol="http")  # past the model's cold requests
            # 1. throughput at equal concurrency bounds
            rows = []
            for conc, batch in ((8, 1), (16, 1), (8, 4)):
                # perf_analyzer before and after the others: a drift of the machine shows, and is averaged
                pa1 = measure(MODEL, grpc, conc, 3000, protocol="grpc", batch=batch)
                fixed = asyncio.run(evaluate(grpc, dataset(n), tmp / f"fixed-{conc}-{batch}", conc, conc, batch))
                adaptive = asyncio.run(evaluate(grpc, dataset(n), tmp / f"aimd-{conc}-{batch}", 1, conc, batch))
                loop = asyncio.run(bare(grpc, conc, batch, n))
                pa2 = measure(MODEL, grpc, conc, 3000, protocol="grpc", batch=batch)
                pa = {**pa2, "throughput_rps": round((pa1["throughput_rps"] + pa2["throughput_rps"]) / 2, 2)}
                rows.append({
                    "concurrency": conc, "batch": batch, "perf_analyzer_eps": pa["throughput_rps"],
                    "perf_analyzer_runs": [pa1["throughput_rps"], pa2["throughput_rps"]], "load_avg_1m": round(os.getloadavg()[0], 2),
                    "eval_eps": fixed["eps"], "ratio": round(fixed["eps"] / pa["throughput_rps"], 3),
                    "eval_adaptive_eps": adaptive["eps"], "adaptive_ratio": round(adaptive["eps"] / pa["throughput_rps"], 3),
                    "bare_tritonclient_eps": loop, "bare_ratio": round(loop / pa["throughput_rps"], 3),
                    "accuracy": fixed["accuracy"], "pa_p99_ms": pa["p99_ms"],
                })  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
            results["throughput"] = rows
            # 2. shared mode: production at 70% of the capacity at the SLO
            single = measure(MODEL, http, 1, 2000, protocol="http")
            slo = round(4 * single["p50_ms"], 1)
            cands = [measure(MODEL, http, c, 2000, protocol="http") for c in (2, 4, 8, 16)]
            capacity = max((c["throughput_rps"] for c in cands if c["p99_ms"] <= slo), default=cands[0]["throughput_rps"])
            rate = round(0.7 * capacity, 1)
            seconds = 30.0 if args.quick else 60.0
            results["shared"] = {
                "slo_ms": slo,
                "capacity_rps": capacity,
                "production_rps": rate,
                "alone": production(http, rate, seconds, tmp, "alone"),
                "with_yielding_eval": asyncio.run(shared(http, grpc, metrics, rate, seconds, slo, tmp, True, n)),
                "with_greedy_eval": asyncio.run(shared(http, grpc, metrics, rate, seconds, slo, tmp, False, n)),
            }
            print(json.dumps(results["shared"]), flush=True)
            # 3. resume
            items = dataset(n, seed=9)
            whole = asyncio.run(evaluate(grpc, items, tmp / "whole", 8, 8, 4))
            first = asyncio.run(evaluate(grpc, items, tmp / "resumed", 8, 8, 4, stop_at=n // 2))
            second = asyncio.run(evaluate(grpc, items, tmp / "resumed", 8, 8, 4))
            same = (tmp / "whole/shard-0.final.jsonl").read_bytes() == (tmp / "resumed/shard-0.final.jsonl").read_bytes()
            results["resume"] = {
                "uninterrupted_s": whole["wall_s"],
                "killed_at_items": first["items"],
                "first_part_s": first["wall_s"],
                "second_part_s": second["wall_s"],
                "total_s": round(first["wall_s"] + second["wall_s"], 3),
                "identical_results": same,
            }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    (out / "evaljob.json").write_text(json.dumps(results, indent=2) + "\n")
    md = _markdown(results)
    (out / "evaljob.md").write_text(md)
    print(md)
    return 0


def _metrics_port(logf: Path) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = re.search(r"Started Metrics Service at 127\.0\.0\.1:(\d+)", logf.read_text(errors="replace"))
        if m:
            return int(m.group(1))
        time.sleep(0.2)
    raise SystemExit(f"bench: no metrics port in {logf}")


def _markdown(r: dict[str, Any]) -> str:
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


if __name__ == "__main__":
    sys.exit(main())
