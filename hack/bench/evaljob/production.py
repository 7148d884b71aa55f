"""Production traffic for the shared-mode benchmark: the load generator against the replica, open loop, alone
or next to an evaluation."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hack.base.paths import REPO
from hack.bench.evaljob.worker import MODEL, dataset, evaluate

__all__ = ["production", "shared"]

FIELDS = ("requests", "errors", "achieved_rps", "p50_ms", "p99_ms", "max_ms")


def _loadgen(http: int, rate: float, seconds: float, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "hack.loadgen", "--endpoints", f"127.0.0.1:{http}", "--model", MODEL,
            "--profile", f"constant:rate={rate}", "--duration", str(seconds), "--summary", str(out),
        ],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _summary(proc: subprocess.Popen[str], err: str, out: Path) -> dict[str, Any]:
    if proc.returncode != 0:
        raise SystemExit(f"bench: loadgen failed: {err[-1000:]}")
    s = json.loads(out.read_text())
    return {k: s[k] for k in FIELDS}


def production(http: int, rate: float, seconds: float, tmp: Path, name: str) -> dict[str, Any]:
    out = tmp / f"{name}.json"
    proc = _loadgen(http, rate, seconds, out)
    _, err = proc.communicate(timeout=seconds + 60)
    return _summary(proc, err, out)


async def shared(
    http: int, grpc: int, metrics: int, rate: float, seconds: float, slo: float, tmp: Path, yield_: bool, n: int
) -> dict[str, Any]:
    """Production at ``rate`` with an evaluation of ``n`` items started 3 s into it, yielding or not."""
    out = tmp / f"shared-{yield_}.json"
    proc = _loadgen(http, rate, seconds, out)
    await asyncio.sleep(3)  # production first
    ev = await asyncio.wait_for(
        evaluate(
            grpc, dataset(n, seed=5), tmp / f"shared-{yield_}", 1, 16, 1, metrics if yield_ else None, slo if yield_ else None
        ),
        timeout=seconds + 120,
    )
    _, err = await asyncio.to_thread(proc.communicate, None, seconds + 60)
    return {"production": _summary(proc, err, out), "eval": ev}
