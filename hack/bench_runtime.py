"""Benchmark of the local runtime and the load generator (outside ``make test``).

    .venv/bin/python -m hack.bench_runtime [--out out/bench/runtime.json]

Starts its own cluster (``bench``) and measures:
* Triton pod start-to-Ready (creation -> Ready, wall clock) over several pods;
* the load generator's maximum sustained rate against 4 fast replicas, with its own CPU use;
* the load generator's latency overhead: its p50 at a low open-loop rate against perf_analyzer's p50
  at concurrency 1 on the same replica (HTTP both).
Writes JSON and prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from e2e.helpers import Kube
from e2e.triton import model_configmap, service, triton_deployment
from foresail.api.objects import pod_is_ready
from hack import tools
from hack.cluster import REPO, Cluster


def wait_ready(kube: Kube, ns: str, app: str, n: int, timeout: float = 120) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = [p for p in kube.pods(ns, f"app={app}") if not p["metadata"].get("deletionTimestamp")]
        if len(pods) == n and all(map(pod_is_ready, pods)):
            return pods
        time.sleep(0.1)
    raise TimeoutError(f"{n} ready {app} pods")


def loadgen(c: Cluster, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        c.exec_cmd([sys.executable, "-m", "hack.loadgen", *args]), cwd=REPO, capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "out/bench/runtime.json"))
    p.add_argument("--starts", type=int, default=5)
    args = p.parse_args(argv)
    c = Cluster("bench")
    c.up()
    res: dict[str, Any] = {}
    try:
        kube = Kube(c)
        ns = "default"
        cm = model_configmap("models", ["emulated"])
        kube.apply(cm, ns)
        starts = []
        for i in range(args.starts):
            name = f"start{i}"
            t0 = time.monotonic()
            kube.apply(triton_deployment(name, "emulated", cm, gpus=1), ns)
            wait_ready(kube, ns, name, 1)
            starts.append(round(time.monotonic() - t0, 2))
            kube.kubectl("delete", "deployment", name, "-n", ns)
        res["pod_start_to_ready_s"] = {"samples": starts, "median": sorted(starts)[len(starts) // 2]}

        fast = {"FORESAIL_EMULATED_BASE_MS": "1", "FORESAIL_EMULATED_PER_ITEM_MS": "0.05", "FORESAIL_EMULATED_COLD_REQUESTS": "0"}
        kube.apply([triton_deployment("fast", "emulated", cm, replicas=4, env=fast), service("fast")], ns)
        pods = wait_ready(kube, ns, "fast", 4)
        rates = []
        for rate in (250, 500, 1000, 2000, 3000, 4000, 6000):
            s = loadgen(
                c, "--service", f"{ns}/fast", "--model", "emulated", "--profile", f"constant:rate={rate}", "--duration", "10"
            )
            s["target_rps"] = rate
            rates.append(s)
            if s["achieved_rps"] < 0.95 * s["offered_rps"] or s["max_send_lag_ms"] > 100 or s["errors"]:
                break
        sustained = [
            r for r in rates if r["achieved_rps"] >= 0.95 * r["offered_rps"] and r["max_send_lag_ms"] <= 100 and not r["errors"]
        ]
        res["loadgen_rates"] = rates
        res["loadgen_max_sustained_rps"] = max((r["offered_rps"] for r in sustained), default=0.0)
        res["loadgen_cpu_percent_at_max"] = next(
            (r["cpu_percent"] for r in sustained if r["offered_rps"] == res["loadgen_max_sustained_rps"]), None
        )

        ip = pods[0]["status"]["podIP"]
        low = loadgen(c, "--endpoints", f"{ip}:8000", "--model", "emulated", "--profile", "constant:rate=20", "--duration", "10")
        pa = tools.TOOLS_BY_NAME["perf_analyzer"].dir
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / "pa.csv"
            cmd = c.exec_cmd(
                ["env", f"LD_LIBRARY_PATH={pa}/lib", str(pa / "bin/perf_analyzer"), "-m", "emulated", "-u", f"{ip}:8000", "-i", "http",
                 "--concurrency-range=1:1", "--measurement-interval=5000", "--stability-percentage=50", "-f", str(f)]
            )  # fmt: skip
            subprocess.run(cmd, capture_output=True, text=True, check=True)
            row = next(csv.DictReader(f.open()))
        pa_p50 = float(row["p50 latency"]) / 1000
        res["latency_overhead"] = {
            "loadgen_p50_ms_at_20rps": low["p50_ms"],
            "loadgen_p99_ms_at_20rps": low["p99_ms"],
            "perf_analyzer_p50_ms_c1": round(pa_p50, 2),
            "perf_analyzer_p99_ms_c1": round(float(row["p99 latency"]) / 1000, 2),
            "overhead_p50_ms": round(low["p50_ms"] - pa_p50, 2),
        }
    finally:
        c.down()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    lo = res["latency_overhead"]
    print("\n| figure | value |\n|---|---|")
    print(f"| Triton pod start-to-Ready (median of {args.starts}) | {res['pod_start_to_ready_s']['median']} s |")
    print(
        f"| load generator max sustained rate | {res['loadgen_max_sustained_rps']} rps at {res['loadgen_cpu_percent_at_max']}% CPU |"
    )
    print(
        f"| p50 latency: load generator vs perf_analyzer (c=1, HTTP) | {lo['loadgen_p50_ms_at_20rps']} vs {lo['perf_analyzer_p50_ms_c1']} ms |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
