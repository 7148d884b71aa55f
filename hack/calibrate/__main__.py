"""``python -m hack.calibrate``: the command line (see the package's description)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import hack.calibrate
from hack import tools
from hack.base.paths import E2E_MODELS
from hack.calibrate.perf import MeasurementError, measure
from hack.calibrate.server import start_triton


def markdown(points: list[dict[str, Any]]) -> str:
    rows = [f"| {p['concurrency']} | {p['throughput_rps']} | {p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} |" for p in points]
    return "\n".join(["| concurrency | throughput rps | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|", *rows])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="hack.calibrate", description=hack.calibrate.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="emulated")
    p.add_argument("--model-repository", default=str(E2E_MODELS))
    p.add_argument("--concurrency", default="1,2,4,8,16,32")
    p.add_argument("--interval-ms", type=int, default=3000, help="perf_analyzer measurement window")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server (e.g. FORESAIL_EMULATED_COLD_REQUESTS=0)")
    p.add_argument("--out", help="write the curve JSON here")
    args = p.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",") if x]
    env = dict(kv.split("=", 1) for kv in args.env)
    env.setdefault("FORESAIL_EMULATED_COLD_REQUESTS", "0")  # calibrate the warm replica
    repo = Path(tempfile.mkdtemp(prefix="foresail-models-"))
    shutil.copytree(Path(args.model_repository) / args.model, repo / args.model)
    server = start_triton(repo, args.model, env)
    try:
        points = []
        for c in levels:
            for attempt in range(3):  # an unstable window (a busy machine) gets a longer one
                try:
                    points.append(measure(args.model, server.grpc, c, args.interval_ms * 2**attempt))
                    break
                except MeasurementError as e:
                    if attempt == 2:
                        raise SystemExit(str(e)) from e
    finally:
        server.stop(timeout=15)
        shutil.rmtree(repo, ignore_errors=True)
        server.log.unlink(missing_ok=True)
    curve = {
        "model": args.model,
        "tool": f"perf_analyzer {tools.TRITONCLIENT_PA_VERSION}",
        "protocol": "grpc",
        "env": env,
        "points": points,
    }
    text = json.dumps(curve, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    print(markdown(points), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
