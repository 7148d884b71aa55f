"""``python -m hack.loadgen``: the command line (see the package's description)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
from dataclasses import asdict
from pathlib import Path

import hack.loadgen
from hack.loadgen.generate import arrivals_from, generate
from hack.loadgen.records import summarise, write_csv


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="hack.loadgen", description=hack.loadgen.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--service", help="NAMESPACE/NAME of the Service whose ready endpoints get the load")
    p.add_argument("--endpoints", help="fixed HOST:PORT list instead of --service")
    p.add_argument("--port-name", default="http", help="EndpointSlice port name (default http)")
    p.add_argument("--model", required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--trace", help="CSV with a timestamp column")
    src.add_argument(
        "--profile", help="constant:rate=R | step:from=A,to=B,at=T | ramp:from=A,to=B,over=S[,at=T] | sine:mean=M,amp=A,period=P"
    )
    p.add_argument("--compress", type=float, default=1.0, help="trace time compression factor")
    p.add_argument("--rate-scale", type=float, default=1.0, help="trace rate multiplier")
    p.add_argument("--start", type=float, default=0.0, help="trace offset to start at (trace seconds)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (wall clock) at most")
    p.add_argument("--max-requests", type=int, default=200_000)
    p.add_argument("--max-inflight", type=int, default=512)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--refresh", type=float, default=0.5, help="EndpointSlice refresh period, seconds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", help="per-request CSV")
    p.add_argument("--summary", help="write the summary JSON here too")
    args = p.parse_args(argv)
    if not args.service and not args.endpoints:
        p.error("one of --service or --endpoints is required")
    if args.duration <= 0 or args.duration > 7200 or args.max_requests <= 0:
        p.error("--duration must be in (0, 7200] and --max-requests > 0")

    arrivals = arrivals_from(args)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    records, duration, stopped = asyncio.run(generate(args, arrivals))
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    summary = summarise(records, duration, cpu, stopped)
    if args.out:
        write_csv(Path(args.out), records)
    text = json.dumps(asdict(summary), indent=1)
    if args.summary:
        Path(args.summary).write_text(text)
    print(text)
    print(
        f"| requests | ok | errors | offered rps | p50 ms | p95 ms | p99 ms | cpu % |\n|---|---|---|---|---|---|---|---|\n"
        f"| {summary.requests} | {summary.ok} | {summary.errors} | {summary.offered_rps} | {summary.p50_ms} | "
        f"{summary.p95_ms} | {summary.p99_ms} | {summary.cpu_percent} |",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
