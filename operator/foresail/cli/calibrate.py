"""``foresail calibrate``: one Triton replica's throughput and latency against concurrency.

    foresail calibrate --url 10.0.0.7:8001 --model resnet50 [--protocol grpc|http]
        [--concurrency 1,2,4,8,16,32] [--seconds 5] [--batch 1] [--slo-ms 120] [--out curve.json]

At each concurrency level, that many clients send requests back to back (random inputs shaped from
the model's metadata, ``--batch`` items each when the model batches) for ``--seconds`` after a short
warm-up; the curve is written as JSON (the format ``hack.calibrate`` writes with perf_analyzer, which
``foresail replay --curve`` reads). With ``--slo-ms`` it also prints the requests/s one replica serves
within that p99: the value for ``spec.scaling.capacityPerReplicaRps``; with ``--max-batch`` the fitted
batch-latency model for ``spec.scaling.calibration``. Point it at one replica (a pod
IP, or a port-forward to one pod), not a Service, or the curve is the sum of several replicas.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from foresail import __version__
from foresail.scaling.calibration import batch_model, capacity_from_curve, curve_point

__all__ = ["add_arguments", "main", "sweep"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True, help="HOST:PORT of one Triton replica (gRPC port with grpc, HTTP port with http)")
    p.add_argument("--model", required=True, help="model name")
    p.add_argument("--model-version", default="", help="model version (default: Triton's choice)")
    p.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    p.add_argument("--concurrency", default="1,2,4,8,16,32", help="comma-separated concurrency levels")
    p.add_argument("--seconds", type=float, default=5.0, help="measurement window per level")
    p.add_argument("--warmup-seconds", type=float, default=1.0, help="requests sent before each window, not counted")
    p.add_argument("--batch", type=int, default=1, help="items per request (capped by the model's max batch size)")
    p.add_argument("--slo-ms", type=float, help="also print the capacity per replica within this p99")
    p.add_argument("--max-batch", type=int, help="the model's max batch size: also fit spec.scaling.calibration")
    p.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    p.add_argument("--out", help="write the curve JSON here (default: stdout only)")


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        levels = []
    if not levels or any(c < 1 or c > 4096 for c in levels):
        raise ValueError(f"--concurrency {text!r}: expected comma-separated integers in [1, 4096]")
    return levels


async def sweep(
    url: str,
    model: str,
    levels: list[int],
    seconds: float,
    warmup_seconds: float = 1.0,
    batch: int = 1,
    protocol: str = "grpc",
    version: str = "",
    request_timeout_s: float = 30.0,
) -> tuple[list[dict[str, float]], int]:
    """The curve's points, one per level, and the batch each request carried."""
    from foresail.clients.triton import EvalClient, closed_loop, random_items

    client = EvalClient(model, version, request_timeout_s, protocol)
    try:
        shape = await client.describe(url)
        items_per_request = max(1, min(batch, shape.max_batch_size)) if shape.max_batch_size else 1
        items = random_items(shape, items_per_request)

        async def send() -> Any:
            return await client.infer(url, shape, items)

        points = []
        for c in levels:
            if warmup_seconds > 0:
                await closed_loop(send, c, warmup_seconds)
            latencies, took = await closed_loop(send, c, seconds)
            points.append(curve_point(c, latencies, took, items_per_request))
        return points, items_per_request
    finally:
        await client.close()


def main(args: argparse.Namespace) -> int:
    try:
        levels = _levels(args.concurrency)
        if args.seconds <= 0 or args.batch < 1:
            raise ValueError("--seconds must be > 0 and --batch >= 1")
        points, batch = asyncio.run(
            sweep(args.url, args.model, levels, args.seconds, args.warmup_seconds, args.batch, args.protocol, args.model_version, args.timeout)
        )
    except Exception as e:  # connection refused, unknown model, a failed inference: one line, not a trace
        print(f"foresail calibrate: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    curve: dict[str, Any] = {
        "model": args.model,
        "tool": f"foresail calibrate {__version__} (tritonclient)",
        "protocol": args.protocol,
        "url": args.url,
        "batch": batch,
        "seconds": args.seconds,
        "points": points,
    }
    if args.slo_ms is not None:
        curve["sloMs"] = args.slo_ms
        curve["capacityPerReplicaRps"] = capacity_from_curve(points, args.slo_ms)
    if args.max_batch is not None and args.max_batch >= 1:
        base, per = batch_model(points, args.max_batch)
        curve["calibration"] = {"baseMs": round(base, 3), "perItemMs": round(per, 4), "maxBatch": args.max_batch}
    text = json.dumps(curve, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    print("| concurrency | throughput rps | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|", file=sys.stderr)
    for pt in points:
        print(f"| {pt['concurrency']} | {pt['throughput_rps']} | {pt['p50_ms']} | {pt['p95_ms']} | {pt['p99_ms']} |", file=sys.stderr)
    if args.slo_ms is not None:
        cap = curve["capacityPerReplicaRps"]
        said = f"{cap:.1f}" if cap is not None else "none (even one request at a time misses it)"
        print(f"capacityPerReplicaRps within p99 {args.slo_ms:g} ms: {said}", file=sys.stderr)
    if "calibration" in curve:
        print(f"spec.scaling.calibration: {json.dumps(curve['calibration'])}", file=sys.stderr)
    return 0
