"""perf_analyzer runs: one measurement at a concurrency level, and its CSV row as a curve point."""

from __future__ import annotations

import csv
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hack import tools

__all__ = ["AVG_PARTS", "MeasurementError", "measure", "point_from_row"]


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


def point_from_row(row: dict[str, str], concurrency: int) -> dict[str, Any]:
    """One point of the curve from perf_analyzer's CSV row (latencies in microseconds there, ms here)."""
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


def perf_analyzer_cmd(
    model: str, url: str, concurrency: int, interval_ms: int, protocol: str, batch: int, out: Path
) -> list[str]:
    pa = tools.TOOLS_BY_NAME["perf_analyzer"].dir
    return [
        str(pa / "bin/perf_analyzer"), "-m", model, "-u", url, "-i", protocol, "-b", str(batch),
        f"--concurrency-range={concurrency}:{concurrency}", f"--measurement-interval={interval_ms}",
        "--stability-percentage=50", "--max-trials=10", "--percentile=99", "-f", str(out),
    ]  # fmt: skip


def measure(model: str, port: int, concurrency: int, interval_ms: int, protocol: str = "grpc", batch: int = 1) -> dict[str, Any]:
    """One perf_analyzer run on loopback; ``throughput_rps`` counts inferences (items: requests x ``batch``)."""
    pa = tools.TOOLS_BY_NAME["perf_analyzer"].ensure()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pa.csv"
        cmd = perf_analyzer_cmd(model, f"127.0.0.1:{port}", concurrency, interval_ms, protocol, batch, out)
        env = {**os.environ, **tools.perf_analyzer_env(pa)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
        if proc.returncode != 0 or not out.exists():
            raise MeasurementError(
                f"calibrate: perf_analyzer failed at concurrency {concurrency}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        with out.open() as f:
            return point_from_row(next(csv.DictReader(f)), concurrency)
