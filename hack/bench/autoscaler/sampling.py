"""A cluster run: the load generator against the service while a sampler records, every second, its pods,
replicas, status and the machine's CPU; the files it leaves (per-request CSV, load summary, samples) and the
run reloaded from them (``--reanalyse``)."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foresail.api.objects import is_condition_true, pod_is_live
from hack.base.paths import REPO
from hack.bench.autoscaler.session import isvc_path
from hack.bench.autoscaler.settings import NS, log
from hack.loadgen import in_cluster
from hack.loadgen.records import read_csv
from hack.testbed.cluster import Cluster

__all__ = ["ClusterRun", "Sampler", "cold_and_lead", "cold_start", "initial_pods", "load_run", "run_load", "samples_of"]


def _cpu_times() -> tuple[float, float]:
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]


def sample_row(
    t: float, pods: list[dict[str, Any]], dep: dict[str, Any], isvc: dict[str, Any], cpu_busy: float
) -> dict[str, Any]:
    """One sample of the service: pods holding a GPU, terminating, warm; the Deployment's replicas; what the
    autoscaler observed and recommended. Pure."""
    st = isvc.get("status", {})
    rec, obs = st.get("recommendation") or {}, st.get("observed") or {}
    return {
        "unix": t,
        "pods": sum(1 for p in pods if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")),
        "terminating": sum(1 for p in pods if p["metadata"].get("deletionTimestamp")),
        "warm": sum(1 for p in pods if pod_is_live(p) and is_condition_true(p, "foresail.dev/warm")),
        "desired": int(dep["spec"].get("replicas", 0) or 0),
        "arrival_rps": obs.get("arrivalRps"),
        "p99_ms": obs.get("p99Ms"),
        "queue": obs.get("queueDepth"),
        "fast": rec.get("reason") in ("FastPath", "BurstOnset"),
        "reason": (rec.get("reason") or "")[:100],
        "cpu_busy": round(cpu_busy, 3),
    }


class Sampler(threading.Thread):
    """Every ``period`` seconds, a ``sample_row`` (wall-clock stamps)."""

    def __init__(self, c: Cluster, name: str, period: float = 1.0) -> None:
        super().__init__(daemon=True, name="sampler")
        self.c, self.name, self.period = c, name, period
        self.rows: list[dict[str, Any]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        last = _cpu_times()
        while not self.halt.is_set():
            t = time.time()
            try:
                pods = self.c.kube.pods(NS, f"foresail.dev/inferenceservice={self.name}")
                dep = self.c.kube.api("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/{self.name}")
                isvc = self.c.kube.api("GET", isvc_path(self.name))
            except Exception:
                self.halt.wait(self.period)
                continue
            now = _cpu_times()
            busy = 1.0 - (now[1] - last[1]) / max(now[0] - last[0], 1e-9)
            last = now
            self.rows.append(sample_row(t, pods, dep, isvc, busy))
            self.halt.wait(max(0.0, self.period - (time.time() - t)))


@dataclass
class ClusterRun:
    name: str
    summary: dict[str, Any]
    scheduled: list[float]  # loadgen seconds
    latencies: list[float]  # ms, inf for errors
    samples: list[dict[str, Any]]  # with "t" in loadgen seconds
    status: dict[str, Any]
    duration: float
    settle_s: float | None = None


def run_load(c: Cluster, name: str, out: Path, prefix: str, source: list[str], seconds: float, settle_s: float) -> ClusterRun:
    """The load generator in the client network namespace against the service, sampled while it runs."""
    out.mkdir(parents=True, exist_ok=True)
    sampler = Sampler(c, name)
    sampler.start()
    csv_path, summary_path = out / f"{prefix}-{name}-requests.csv", out / f"{prefix}-{name}-loadgen.json"
    cmd = in_cluster(
        c, "--service", f"{NS}/{name}", "--model", "emulated", *source, "--duration", f"{seconds:g}", "--max-requests", "1000000",
        "--max-inflight", "8192", "--timeout", "60", "--out", str(csv_path), "--summary", str(summary_path),
    )  # fmt: skip
    log(f"load: {' '.join(source)} for {seconds:g}s")
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=seconds + 300, check=False)
    finally:
        time.sleep(2)  # a last sample or two after the load
        sampler.halt.set()
        sampler.join(10)
    if proc.returncode != 0:
        raise SystemExit(f"bench-autoscaler: load generator failed ({proc.returncode}): {proc.stderr[-2000:]}")
    status = c.kube.api("GET", isvc_path(name)).get("status", {})
    # the raw samples next to the per-request CSV: `--reanalyse` recomputes every figure from these files
    raw = {"status": status, "samples": sampler.rows, "duration_s": seconds, "settle_s": settle_s}
    (out / f"{prefix}-{name}-samples.json").write_text(json.dumps(raw, default=str))
    return load_run(out, prefix, name, seconds)


def load_run(out: Path, prefix: str, name: str, seconds: float) -> ClusterRun:
    """A recorded cluster run: the load generator's CSV and summary, the samples and the final status."""
    records = read_csv(out / f"{prefix}-{name}-requests.csv")
    raw = json.loads((out / f"{prefix}-{name}-samples.json").read_text())
    samples: list[dict[str, Any]] = raw["samples"]
    offsets = [r.sent_unix - r.sent for r in records if r.sent_unix > 0]
    t0 = statistics.median(offsets) if offsets else samples[0]["unix"]
    for s in samples:
        s["t"] = round(s["unix"] - t0, 2)
    return ClusterRun(
        name=name,
        summary=json.loads((out / f"{prefix}-{name}-loadgen.json").read_text()),
        scheduled=[r.scheduled for r in records],
        latencies=[r.latency_ms if r.ok else math.inf for r in records],
        samples=samples,
        status=raw["status"],
        duration=float(raw.get("duration_s", seconds)),
        settle_s=raw.get("settle_s"),
    )


def cold_start(run: ClusterRun) -> dict[str, Any]:
    """The cold starts the operator measured (``status.coldStart``) and their median."""
    cs = run.status.get("coldStart") or {}
    recent = [float(x) for x in cs.get("recentSeconds", []) or []]
    return {
        "p50_s": cs.get("p50Seconds"),
        "p90_s": cs.get("p90Seconds"),
        "samples": cs.get("samples", 0),
        "recent_s": recent,
        "median_s": round(statistics.median(recent), 1) if recent else None,
    }


def cold_and_lead(cs: dict[str, Any]) -> tuple[float, float]:
    """The cold start to simulate (the measured median, else p50, else 10 s) and the forecast lead (p90)."""
    cold = float(cs["median_s"] or cs["p50_s"] or 10.0)
    return cold, float(cs["p90_s"] or cold)


def samples_of(run: ClusterRun, key: str = "pods") -> list[tuple[float, float]]:
    """(loadgen seconds, value) of one sampled figure: ``pods`` (holding GPUs) or ``desired``."""
    return [(s["t"], float(s[key])) for s in run.samples]


def initial_pods(run: ClusterRun) -> int:
    """The pods the service held when the load started."""
    before = [s for s in run.samples if s["t"] <= 0.5]
    return int((before[-1] if before else run.samples[0])["pods"]) if run.samples else 1
