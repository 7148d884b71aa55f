"""Benchmark of the local runtime and the load generator (outside ``make test``).

    .venv/bin/python -m hack.bench.runtime [--out out/bench/runtime.json]

Starts its own cluster (``bench``) and measures:
* Triton pod cold start, creation -> scheduled -> image pulled -> started -> Ready (wall clock), over several
  pods: the first pulls the Triton image from the cluster's registry, the others find it present;
* the load generator's maximum sustained rate against 4 fast replicas, with its own CPU use;
* the load generator's latency overhead: its p50 at a low open-loop rate against perf_analyzer's p50
  at concurrency 1 on the same replica (HTTP both).
Writes JSON and prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from foresail.api.objects import pod_is_live, pod_is_ready
from hack import tools
from hack.base.kube import Kube
from hack.base.paths import OUT, REPO
from hack.base.wait import wait_for
from hack.bench.report import write_report
from hack.calibrate.perf import perf_analyzer_cmd, point_from_row
from hack.loadgen import in_cluster
from hack.testbed.cluster import Cluster
from hack.testbed.manifests import model_configmap, service, triton_deployment

__all__ = ["main", "markdown", "sustained"]

NS = "default"
RATES = (250, 500, 1000, 2000, 3000, 4000, 6000)


def wait_ready(kube: Kube, app: str, n: int, timeout: float = 180) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        pods = [p for p in kube.pods(NS, f"app={app}") if pod_is_live(p)]
        return pods if len(pods) == n and all(map(pod_is_ready, pods)) else None

    return wait_for(f"{n} ready {app} pods", ready, timeout=timeout, interval=0.1)


def loadgen(c: Cluster, *args: str) -> dict[str, Any]:
    out = subprocess.run(in_cluster(c, *args), cwd=REPO, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def sustained(run: dict[str, Any]) -> bool:
    """A rate the load generator sustained: 95% of it achieved, sends at most 100 ms late, no error. Pure."""
    return run["achieved_rps"] >= 0.95 * run["offered_rps"] and run["max_send_lag_ms"] <= 100 and not run["errors"]


def _pulled_seconds(kube: Kube, pod: str) -> float | None:
    """The pull time the runtime reported for ``pod`` (its Pulled event), None when the image was present."""
    for e in kube.get("events", "-n", NS, "--field-selector", f"involvedObject.name={pod}")["items"]:
        m = re.search(r"Successfully pulled image .* in ([0-9.]+)s", e.get("message", ""))
        if e.get("reason") == "Pulled" and m:
            return float(m.group(1))
    return None


def start_to_ready(kube: Kube, cm: dict[str, Any], starts: int) -> list[dict[str, float]]:
    """Create -> scheduled -> (image pulled) -> container started -> Ready of one Triton pod, ``starts`` times;
    the first start in a fresh cluster pulls the image, the others find it present."""
    out = []
    for i in range(starts):
        name = f"start{i}"
        marks: dict[str, float] = {}
        t0 = time.monotonic()
        kube.apply(triton_deployment(name, "emulated", cm, gpus=1), NS)
        while "ready" not in marks:
            for p in (p for p in kube.pods(NS, f"app={name}") if pod_is_live(p)):
                now = round(time.monotonic() - t0, 2)
                if p["spec"].get("nodeName"):
                    marks.setdefault("scheduled", now)
                if any("running" in c.get("state", {}) for c in p.get("status", {}).get("containerStatuses") or []):
                    marks.setdefault("started", now)
                if pod_is_ready(p):
                    marks["ready"] = now
                    marks["pull"] = _pulled_seconds(kube, p["metadata"]["name"]) or 0.0
            if time.monotonic() - t0 > 300:
                raise TimeoutError(f"pod of {name} not Ready in 300 s")
            time.sleep(0.1)
        out.append({"scheduled_s": marks["scheduled"], "pull_s": marks["pull"], "started_s": marks["started"], "ready_s": marks["ready"]})
        kube.kubectl("delete", "deployment", name, "-n", NS)
    return out


def latency_overhead(c: Cluster, ip: str) -> dict[str, Any]:
    low = loadgen(c, "--endpoints", f"{ip}:8000", "--model", "emulated", "--profile", "constant:rate=20", "--duration", "10")
    pa = tools.TOOLS_BY_NAME["perf_analyzer"].dir
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "pa.csv"
        cmd = perf_analyzer_cmd("emulated", f"{ip}:8000", 1, 5000, "http", 1, f)
        subprocess.run(c.exec_cmd(["env", f"LD_LIBRARY_PATH={pa}/lib", *cmd]), capture_output=True, text=True, check=True)
        with f.open() as fh:
            point = point_from_row(next(csv.DictReader(fh)), 1)
    return {
        "loadgen_p50_ms_at_20rps": low["p50_ms"],
        "loadgen_p99_ms_at_20rps": low["p99_ms"],
        "perf_analyzer_p50_ms_c1": point["p50_ms"],
        "perf_analyzer_p99_ms_c1": point["p99_ms"],
        "overhead_p50_ms": round(low["p50_ms"] - point["p50_ms"], 2),
    }


def markdown(res: dict[str, Any], starts: int) -> str:
    lo = res["latency_overhead"]
    first, rest = res["cold_start"][0], res["cold_start"][1:]
    mid = sorted(rest, key=lambda s: s["ready_s"])[len(rest) // 2]
    return "\n".join([
        "| figure | value |", "|---|---|",
        f"| Triton pod create -> scheduled / image pulled (pull) / started / Ready, first pod (cold image) | "
        f"{first['scheduled_s']} / {first['pull_s']} / {first['started_s']} / {first['ready_s']} s |",
        f"| the same, image present (median of {starts - 1} by Ready) | "
        f"{mid['scheduled_s']} / {mid['pull_s']} / {mid['started_s']} / {mid['ready_s']} s |",
        f"| load generator max sustained rate | {res['loadgen_max_sustained_rps']} rps at {res['loadgen_cpu_percent_at_max']}% CPU |",
        f"| p50 latency: load generator vs perf_analyzer (c=1, HTTP) | {lo['loadgen_p50_ms_at_20rps']} vs {lo['perf_analyzer_p50_ms_c1']} ms |",
    ]) + "\n"  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="hack.bench.runtime", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default=str(OUT / "bench/runtime.json"))
    p.add_argument("--starts", type=int, default=5)
    args = p.parse_args(argv)
    c = Cluster("bench")
    c.up()
    res: dict[str, Any] = {}
    try:
        kube = c.kube
        cm = model_configmap("models", ["emulated"])
        kube.apply(cm, NS)
        starts = start_to_ready(kube, cm, args.starts)
        ready = sorted(s["ready_s"] for s in starts[1:])
        res["cold_start"] = starts
        res["pod_start_to_ready_s"] = {"first_with_pull": starts[0]["ready_s"], "median_image_present": ready[len(ready) // 2]}
        fast = {"FORESAIL_EMULATED_BASE_MS": "1", "FORESAIL_EMULATED_PER_ITEM_MS": "0.05", "FORESAIL_EMULATED_COLD_REQUESTS": "0"}
        kube.apply([triton_deployment("fast", "emulated", cm, replicas=4, env=fast), service("fast")], NS)
        pods = wait_ready(kube, "fast", 4)
        rates = []
        for rate in RATES:
            s = loadgen(
                c, "--service", f"{NS}/fast", "--model", "emulated", "--profile", f"constant:rate={rate}", "--duration", "10"
            )
            rates.append({**s, "target_rps": rate})
            if not sustained(s):
                break
        best = max((r for r in rates if sustained(r)), key=lambda r: r["offered_rps"], default=None)
        res["loadgen_rates"] = rates
        res["loadgen_max_sustained_rps"] = best["offered_rps"] if best else 0.0
        res["loadgen_cpu_percent_at_max"] = best["cpu_percent"] if best else None
        res["latency_overhead"] = latency_overhead(c, pods[0]["status"]["podIP"])
    finally:
        c.down()
    out = Path(args.out)
    write_report(out.parent, out.stem, res, markdown(res, args.starts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
