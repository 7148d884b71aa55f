"""Calibrate one Triton replica: throughput and latency against concurrency, measured by perf_analyzer.

    .venv/bin/python -m hack.calibrate --model emulated [--concurrency 1,2,4,8,16,32] [--out curve.json]

Starts one tritonserver (the pinned binary) on loopback with ``e2e/models`` (or ``--model-repository``),
runs Triton's ``perf_analyzer`` once per concurrency level, and writes the curve as JSON:
``{"model", "points": [{"concurrency", "throughput_rps", "p50_ms", "p90_ms", "p95_ms", "p99_ms",
"avg_ms"}], ...}``. The autoscaler's capacity prior and the replay simulator read these curves.
A markdown table goes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hack import tools
from hack.cluster import REPO, free_port


def start_triton(repo: Path, model: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, int, Path]:
    t = tools.TOOLS_BY_NAME["triton"].ensure()
    http, grpc, metrics = free_port(), free_port(), free_port()
    logf = Path(tempfile.mkstemp(prefix="foresail-calibrate-", suffix=".log")[1])
    site = [str(p) for p in (REPO / ".venv/lib").glob("python3*/site-packages")]
    proc = subprocess.Popen(
        [
            str(t / "bin/tritonserver"), f"--backend-directory={t / 'backends'}", f"--model-repository={repo}",
            "--model-control-mode=explicit", f"--load-model={model}", f"--http-port={http}", f"--grpc-port={grpc}",
            f"--metrics-port={metrics}", "--http-address=127.0.0.1", "--grpc-address=127.0.0.1",
            "--metrics-address=127.0.0.1", "--allow-gpu-metrics=false", "--exit-timeout-secs=5",
        ],
        stdout=logf.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, **env, "LD_LIBRARY_PATH": f"{t}/lib:{t}/pytriton/nvidia_pytriton.libs", "PYTHONPATH": ":".join(site)},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"calibrate: tritonserver exited; log: {logf}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/models/{model}/ready", timeout=1) as r:
                if r.status == 200:
                    return proc, http, grpc, logf
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"calibrate: model {model} not ready in 60 s; log: {logf}")


class MeasurementError(RuntimeError):
    pass


# perf_analyzer's CSV has no average column; the average is the sum of its average components.
AVG_PARTS = (
    "Client Send",
    "Network+Server Send/Recv",
    "Server Queue",
    "Server Compute Input",
    "Server Compute Infer",
    "Server Compute Output",
    "Client Recv",
)


def measure(
    model: str, port: int, concurrency: int, interval_ms: int, protocol: str = "grpc", batch: int = 1
) -> dict[str, Any]:
    """One perf_analyzer run; ``throughput_rps`` counts inferences (items: requests x ``batch``)."""
    pa = tools.TOOLS_BY_NAME["perf_analyzer"].ensure()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pa.csv"
        cmd = [
            str(pa / "bin/perf_analyzer"), "-m", model, "-u", f"127.0.0.1:{port}", "-i", protocol, "-b", str(batch),
            f"--concurrency-range={concurrency}:{concurrency}", f"--measurement-interval={interval_ms}",
            "--stability-percentage=50", "--max-trials=10", "--percentile=99", "-f", str(out),
        ]  # fmt: skip
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, "LD_LIBRARY_PATH": f"{pa}/lib"}, timeout=300, check=False
        )
        if proc.returncode != 0 or not out.exists():
            raise MeasurementError(
                f"calibrate: perf_analyzer failed at concurrency {concurrency}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        row = next(csv.DictReader(out.open()))
    us = 1000.0
    return {
        "concurrency": concurrency,
        "throughput_rps": round(float(row["Inferences/Second"]), 2),
        "p50_ms": round(float(row["p50 latency"]) / us, 2),
        "p90_ms": round(float(row["p90 latency"]) / us, 2),
        "p95_ms": round(float(row["p95 latency"]) / us, 2),
        "p99_ms": round(float(row["p99 latency"]) / us, 2),
        "avg_ms": round(sum(float(row[k]) for k in AVG_PARTS if k in row) / us, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hack.calibrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="emulated")
    p.add_argument("--model-repository", default=str(REPO / "e2e/models"))
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
    proc, _http, grpc, logf = start_triton(repo, args.model, env)
    try:
        points = []
        for c in levels:
            for attempt in range(3):  # an unstable window (a busy machine) gets a longer one
                try:
                    points.append(measure(args.model, grpc, c, args.interval_ms * 2**attempt))
                    break
                except MeasurementError as e:
                    if attempt == 2:
                        raise SystemExit(str(e)) from e
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
        shutil.rmtree(repo, ignore_errors=True)
        logf.unlink(missing_ok=True)
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
    print("| concurrency | throughput rps | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|", file=sys.stderr)
    for pt in points:
        print(
            f"| {pt['concurrency']} | {pt['throughput_rps']} | {pt['p50_ms']} | {pt['p95_ms']} | {pt['p99_ms']} |",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
