"""The eval worker's core (``evaluation.runner`` with the worker's own gRPC client) on a dataset, and the
simplest possible tritonclient loop (the client library's ceiling)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from foresail.clients.triton import EvalClient
from foresail.evaluation.dataset import Item, load_jsonl
from foresail.evaluation.limiter import AIMDLimiter, production_pressure
from foresail.evaluation.progress import ShardProgress
from foresail.evaluation.results import ResultStore
from foresail.evaluation.runner import run_shard
from foresail.evaluation.scoring import make_scorer
from hack.bench.evaljob.signals import triton_signals

__all__ = ["MODEL", "bare", "dataset", "evaluate"]

MODEL = "emulated"
FLUSH_EVERY_S = 0.25  # as the worker: results reach the disk (fsync) at least this often


def dataset(n: int, seed: int = 3) -> list[Item]:
    """``n`` items of 16 random floats whose expected output is twice the input (the emulated model's)."""
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
    yield to production; ``stop_at``: stop once that many items are done."""
    client = EvalClient(MODEL)
    addr = f"127.0.0.1:{port}"
    shape = await client.describe(addr)
    limiter = AIMDLimiter(lo, hi, initial=lo, latency_target_ms=slo_ms)
    stop = asyncio.Event()
    peak = {"limit": 0}

    async def infer(b: list[Item]) -> Any:
        return await client.infer(addr, shape, [it.inputs for it in b])

    async def report(p: ShardProgress) -> None:
        peak["limit"] = max(peak["limit"], p.limit)
        if stop_at is not None and p.done >= stop_at:
            stop.set()

    async def yield_loop(metrics_port: int) -> None:
        while True:
            q, p99 = await asyncio.to_thread(triton_signals, metrics_port, MODEL)
            limiter.set_pressure(production_pressure(q, p99, slo_ms), time.monotonic())
            await asyncio.sleep(1.0)

    task = asyncio.create_task(yield_loop(pressure_from)) if pressure_from is not None else None
    t0 = time.monotonic()
    try:
        summary = await run_shard(
            items, ResultStore(directory, 0), infer, make_scorer("numericTolerance", "OUTPUT0", 1e-5, 1e-5), limiter,
            time.monotonic, report, batch_size=batch, stop=stop, report_every_s=0.5, record_outputs=False,
            flush_every_s=FLUSH_EVERY_S,
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
