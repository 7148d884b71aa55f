"""Autoscaler benchmarks (figures, not tests; outside ``make test``).

    .venv/bin/python -m hack.bench_autoscaler [--out out/bench] [--only reaction-sim|reaction-cluster|closed-loop] [--quick]

* ``reaction-sim``: a 10x step of the arrival rate and a 5-minute linear ramp through the replay simulator
  (the operator's own decision code), with the README's replay conventions (a replica of 100 ms + 10 ms/item,
  max batch 32, SLO 4x a single request), cold starts 10 s and 60 s, for Foresail (``balanced``) and the
  baselines, plus ``instant`` (every replica the new rate needs, started at the step: the floor for any
  reactive policy). Step: seconds from the step until the p99 of the requests arriving in each 1 s (and 5 s)
  window is back within the SLO and stays there; goal: cold start + 2 ticks. Ramp: requests over the SLO;
  goal: none.
* ``reaction-cluster``: the same step (and ramp; ``--quick`` skips it) on a local cluster (``bench-as``):
  real Triton serving the emulated model, Prometheus, the operator installed by the chart, the load
  generator in the client network namespace; per-request latencies and replicas over time; next to it
  what the simulator predicts for the same arrivals, model and measured cold start. The load starts once
  the service is warm and its observed p99 is clear of the warm-up; ``--cluster-low-seconds 420`` starts
  the step from a settled service (past the 300 s scale-down delay).
* ``closed-loop``: a 15-minute slice of the shared conversation trace, compressed and rate-scaled so that
  the operator's plan at the busiest 10 s is ~8 replicas, through the operator on the local cluster and
  through the replay simulator configured like the cluster (same arrivals, emulated model, measured cold
  start, same capacity prior, tick and rate window, the same warm start); SLO share and replica-seconds side
  by side. The simulator counts as trustworthy when both agree within 2 points and 10%.

``--cold-requests 0`` removes the emulated model's slow first executions (their latencies stay in the
operator's p99 signal after each warm-up); output names then carry ``-coldreq0``. ``--reanalyse`` recomputes
the cluster figures from the files a run left in ``--out`` (per-request CSV, samples), without a cluster.

Each benchmark writes ``<name>.json`` and ``<name>.md`` into ``--out`` and prints the table. Cluster
benchmarks wait (up to 40 minutes, polling every 30 s) until no other local cluster runs on the machine,
and always stop their own cluster.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from foresail.api.objects import is_condition_true
from foresail.api.scalingpolicy import ResolvedBehavior, ScalingBehavior, ScalingPolicy
from foresail.replay import policies, traces
from foresail.replay.run import Scenario, run_scenario
from foresail.replay.sim import ReplicaModel, SimConfig, SimResult, p99_by_window, recovery_s, simulate
from foresail.scaling.capacity import Calibration
from hack import tools
from hack.cluster import REPO, Cluster

BENCHES = ("reaction-sim", "reaction-cluster", "closed-loop")
BALANCED = REPO / "policies/scaling/balanced.yaml"
REPLAY_MODEL = ReplicaModel(base_ms=100.0, per_item_ms=10.0, max_batch=32)  # the README's replay figures
EMULATED = ReplicaModel(base_ms=20.0, per_item_ms=2.0, max_batch=32)  # crds/examples/emulated-model.yaml
CALIBRATION = REPO / "out/bench/calibration-emulated.json"
TRACES = REPO.parent / "shared/traces"
CLUSTER_NAME = "bench-as"
NS = "default"
# the demo's settings for the emulated model (hack/demo.py): SLO, capacity prior, warm-up
CLUSTER_SLO_MS = 150.0
CLUSTER_CAPACITY_RPS = 100.0
RATE_WINDOW_S = 10.0  # prometheus.rateWindow, as the demo and the e2e suite install the chart
DEMO_OVERRIDES = {"tickSeconds": 2}


def log(msg: str) -> None:
    print(f"[bench-autoscaler] {msg}", file=sys.stderr, flush=True)


def balanced() -> ScalingBehavior:
    return ScalingPolicy.model_validate(yaml.safe_load(BALANCED.read_text())).behavior()


def resolved(overrides: dict[str, Any] | None = None) -> ResolvedBehavior:
    return ScalingBehavior().resolve(balanced(), ScalingBehavior.model_validate(overrides) if overrides else None)


# ------------------------------------------------------------------ figures common to simulated and real runs


def reaction_figures(
    times: list[float], lats: list[float], slo_ms: float, since: float, horizon: float, shape: str
) -> dict[str, Any]:
    """Recovery after a step (1 s and 5 s windows by arrival time) or violations along a ramp."""
    p1 = p99_by_window(times, lats, 1.0, horizon)
    p5 = p99_by_window(times, lats, 5.0, horizon)
    over = sum(1 for x in lats if not x <= slo_ms)
    after = [x for t, x in zip(times, lats, strict=True) if t >= since]
    out: dict[str, Any] = {
        "requests": len(lats),
        "over_slo": over,
        "over_slo_share": round(over / max(len(lats), 1), 5),
        "over_slo_after_change": sum(1 for x in after if not x <= slo_ms),
        "worst_p99_1s_ms": _round(max((p for p in p1 if p is not None), default=0.0)),
        "worst_p99_5s_ms": _round(max((p for p in p5 if p is not None), default=0.0)),
    }
    if shape == "step":
        out["recovery_1s_s"] = recovery_s(p1, 1.0, slo_ms, since)
        out["recovery_5s_s"] = recovery_s(p5, 5.0, slo_ms, since)
        out["recovery_5s_hold30_s"] = recovery_s(p5, 5.0, slo_ms, since, hold_s=30.0)
    out["windows_5s_over_slo"] = [k * 5 for k, p in enumerate(p5) if (k + 1) * 5 > since and p is not None and p > slo_ms]
    return out


def _round(x: float) -> float | None:
    return round(x, 1) if math.isfinite(x) else None


def integrate(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """Integral of a step function given as (time, value) samples (value holds until the next) over [start, end]."""
    total = 0.0
    pts = sorted(samples)
    for (t, v), (t_next, _) in zip(pts, [*pts[1:], (math.inf, 0.0)], strict=True):
        a, b = max(t, start), min(t_next, end)
        if b > a:
            total += v * (b - a)
    return total


def value_before(samples: list[tuple[float, float]], t: float) -> int | None:
    """The last sampled value strictly before ``t``."""
    before = [v for s, v in sorted(samples) if s < t]
    return int(before[-1]) if before else None


def sim_replicas(res: SimResult, initial: int) -> list[tuple[float, float]]:
    return [(0.0, float(initial)), *((t, float(n)) for t, n, _ in res.replicas_t)]


# ------------------------------------------------------------------ benchmark 3a: reaction in the simulator


@dataclass(frozen=True)
class Shape:
    kind: str  # step | ramp
    low: float
    high: float
    at: float
    duration: float

    def profile(self) -> tuple[str, dict[str, float]]:
        if self.kind == "step":
            return "step", {"from": self.low, "to": self.high, "at": self.at}
        return "ramp", {"from": self.low, "to": self.high, "over": 300.0, "at": self.at}

    def spec(self) -> str:
        kind, p = self.profile()
        return kind + ":" + ",".join(f"{k}={v:g}" for k, v in p.items())


def reaction_sim(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    behavior = balanced()
    tick = ScalingBehavior().resolve(behavior).tick_seconds
    slo = round(4 * REPLAY_MODEL.batch_ms(1), 2)
    cap = REPLAY_MODEL.capacity_rps(slo)
    low = round(1.5 * cap)
    shapes = [Shape("step", low, 10 * low, 120.0, 420.0), Shape("ramp", low, 10 * low, 120.0, 540.0)]
    colds = (10.0,) if args.quick else (10.0, 60.0)
    rows: list[dict[str, Any]] = []
    for cold in colds:
        for shape in shapes:
            kind, params = shape.profile()
            arr = traces.profile_arrivals(kind, params, shape.duration, seed=args.seed)
            sc = Scenario(f"{kind}-cold{cold:g}", arr, REPLAY_MODEL, slo, cold, behavior)
            log(f"reaction-sim: {sc.name} ({len(arr)} requests, {shape.spec()})")
            summary, results = run_scenario(sc, progress=False)
            if kind == "step":
                # reference, not a policy: every replica the new rate needs, started at the step itself; what is
                # left of the recovery is the cold start plus draining the backlog queued on the old replicas
                results["instant"] = instant = instant_reaction(arr, cap, slo, cold, shape, tick)
                summary["policies"]["instant"] = {
                    "gpu_seconds": round(instant.gpu_seconds, 1),
                    "gpu_vs_oracle": round(instant.gpu_seconds / summary["policies"]["oracle"]["gpu_seconds"], 3),
                    "peak_replicas": max(n for _, n, _ in instant.replicas_t),
                }
            for name, res in results.items():
                fig = reaction_figures(res.arrivals.tolist(), res.latencies_ms.tolist(), slo, shape.at, shape.duration, kind)
                pol = summary["policies"][name]
                rows.append(
                    {
                        "shape": kind,
                        "profile": shape.spec(),
                        "cold_start_s": cold,
                        "policy": name,
                        "goal_recovery_s": cold + 2 * tick if kind == "step" else None,
                        **fig,
                        "gpu_seconds": pol["gpu_seconds"],
                        "gpu_vs_oracle": pol["gpu_vs_oracle"],
                        "peak_replicas": pol["peak_replicas"],
                        "replicas_before": value_before([(t, float(n)) for t, n, _ in res.replicas_t], shape.at),
                    }
                )
    result = {
        "benchmark": "reaction-sim",
        "model": {"base_ms": REPLAY_MODEL.base_ms, "per_item_ms": REPLAY_MODEL.per_item_ms, "max_batch": REPLAY_MODEL.max_batch},
        "slo_p99_ms": slo,
        "capacity_rps_per_replica": round(cap, 1),
        "foresail_policy": "balanced",
        "foresail_tick_s": tick,
        "rows": rows,
    }
    _write(out, "reaction-sim", result, reaction_markdown(result))
    return result


def instant_reaction(arr: traces.Arrivals, cap: float, slo: float, cold: float, shape: Shape, tick: float) -> SimResult:
    """Start, at the step, the replicas the high rate needs at 70% (run_scenario's warm-start rule): the best any
    reactive policy can do with this cold start and per-replica queues."""
    before = policies.initial_replicas(shape.low, cap)
    after = policies.initial_replicas(shape.high, cap)
    cfg = SimConfig(model=REPLAY_MODEL, slo_ms=slo, cold_start_s=cold, tick_s=tick, initial_replicas=before)
    return simulate(arr, cfg, lambda v: after if v.now >= shape.at else before)


def _fmt_s(x: float | None) -> str:
    return "never" if x is None else f"{x:g} s"


def reaction_markdown(r: dict[str, Any]) -> str:
    head = (
        f"**Reaction ({r['benchmark']})**: SLO p99 {r['slo_p99_ms']} ms"
        + (f", {r['capacity_rps_per_replica']} rps per replica at the SLO" if "capacity_rps_per_replica" in r else "")
        + f"; Foresail `{r['foresail_policy']}` (tick {r['foresail_tick_s']:g} s). Step goal: p99 back within the SLO "
        "(and staying there) within cold start + 2 ticks; ramp goal: no request over the SLO."
        + (f" Emulated model's cold requests: {r['emulated_cold_requests']}." if "emulated_cold_requests" in r else "")
        + "\n"
    )
    lines = [
        head,
        "Recovery: from the step until the p99 of the requests arriving in each window is within the SLO and stays "
        "there to the end of the run, or (last recovery column) for at least 30 s, so that a later, unrelated stall "
        "does not count as the step's.\n",
        "| step | cold start | policy | replicas before / peak | recovery, 1 s windows | 5 s windows | 5 s windows, held 30 s "
        "| goal | met (to the end / held 30 s) | requests over SLO | worst 5 s p99 | GPU-s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in (x for x in r["rows"] if x["shape"] == "step"):
        met = [
            "yes" if v is not None and v <= x["goal_recovery_s"] else "no"
            for v in (x["recovery_5s_s"], x.get("recovery_5s_hold30_s"))
        ]
        lines.append(
            f"| {x['profile']} | {x['cold_start_s']:g} s | {x['policy']} | {x['replicas_before']} / {x['peak_replicas']} "
            f"| {_fmt_s(x['recovery_1s_s'])} | {_fmt_s(x['recovery_5s_s'])} | {_fmt_s(x.get('recovery_5s_hold30_s'))} "
            f"| {x['goal_recovery_s']:g} s | {met[0]} / {met[1]} | {x['over_slo']} ({100 * x['over_slo_share']:.2f}%) "
            f"| {x['worst_p99_5s_ms']} ms | {x['gpu_seconds']:.0f} |"
        )
    ramps = [x for x in r["rows"] if x["shape"] == "ramp"]
    if ramps:
        lines += [
            "",
            "| ramp (300 s) | cold start | policy | requests over SLO | goal met (none) | worst 5 s p99 | GPU-s | peak replicas |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for x in ramps:
            lines.append(
                f"| {x['profile']} | {x['cold_start_s']:g} s | {x['policy']} | {x['over_slo']} of {x['requests']} "
                f"({100 * x['over_slo_share']:.2f}%) | {'yes' if x['over_slo'] == 0 else 'no'} | {x['worst_p99_5s_ms']} ms "
                f"| {x['gpu_seconds']:.0f} | {x['peak_replicas']} |"
            )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the local cluster


def wait_for_free_machine(timeout_s: float = 2400.0, poll_s: float = 30.0) -> None:
    """Another engineer's e2e clusters share these 2 cores: start only when no kube-apiserver runs."""
    deadline = time.monotonic() + timeout_s
    while True:
        busy = subprocess.run(["pgrep", "-f", "kube-apiserver"], capture_output=True, text=True, check=False).stdout.split()
        if not busy:
            return
        if time.monotonic() >= deadline:
            raise SystemExit(f"bench-autoscaler: another cluster is still running after {timeout_s:.0f}s (pids {busy})")
        log(f"another cluster runs (kube-apiserver pids {busy}); waiting {poll_s:.0f}s")
        time.sleep(poll_s)


def _tritonservers() -> dict[int, int]:
    """pid -> parent pid of every tritonserver on the machine."""
    out = subprocess.run(["pgrep", "-x", "tritonserver"], capture_output=True, text=True, check=False).stdout.split()
    procs: dict[int, int] = {}
    for pid in map(int, out):
        try:
            procs[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return procs


@contextmanager
def cluster_session() -> Iterator[Cluster]:
    wait_for_free_machine()
    before = set(_tritonservers())
    c = Cluster(CLUSTER_NAME)
    c.up()
    try:
        helm = tools.TOOLS_BY_NAME["kubectl"].dir / "bin/helm"
        c.kubectl("create", "namespace", "foresail-system")
        log("helm install foresail")
        subprocess.run(
            [str(helm), f"--kubeconfig={c.kubeconfig}", "install", "foresail", str(REPO / "charts/foresail"), "-n", "foresail-system",
             "--wait", "--timeout=180s", f"--set=prometheus.url={c.network.prometheus_url}", f"--set=prometheus.rateWindow={RATE_WINDOW_S:.0f}s",
             "--set=autoscaler.tickSeconds=1"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        c.kubectl("apply", "-f", str(REPO / "policies/scaling"))
        c.kubectl("apply", "-f", str(REPO / "crds/examples/emulated-model.yaml"))
        yield c
    finally:
        c.down()
        mine = subprocess.run(
            ["pgrep", "-af", f"\\.run/{CLUSTER_NAME}/"], capture_output=True, text=True, check=False
        ).stdout.strip()
        orphans = [pid for pid, ppid in _tritonservers().items() if pid not in before and ppid == 1]
        if mine or orphans:
            log(f"after down, processes of cluster {CLUSTER_NAME!r} remain (check them): {mine} orphaned tritonservers {orphans}")


def isvc_manifest(
    name: str, overrides: dict[str, Any] | None, max_replicas: int, cold_requests: int | None, min_replicas: int = 1
) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["metadata"]["name"] = name
    obj["spec"]["slo"] = {"p99LatencyMs": CLUSTER_SLO_MS}
    scaling: dict[str, Any] = {
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "policyRef": "balanced",
        "capacityPerReplicaRps": CLUSTER_CAPACITY_RPS,
    }
    if overrides:
        scaling["overrides"] = overrides
    obj["spec"]["scaling"] = scaling
    obj["spec"]["warmup"] = {"requests": 5, "timeoutSeconds": 120}
    if cold_requests is not None:  # the model's first N executions pay cold_extra_ms (20 in its config)
        obj["spec"]["triton"]["env"] = [{"name": "FORESAIL_EMULATED_COLD_REQUESTS", "value": str(cold_requests)}]
    return obj


def _isvc_path(name: str) -> str:
    return f"/apis/foresail.dev/v1alpha1/namespaces/{NS}/inferenceservices/{name}"


def create_and_wait(
    c: Cluster, name: str, overrides: dict[str, Any] | None, max_replicas: int, cold_requests: int | None, min_replicas: int = 1
) -> float:
    """Create the service, wait until ``min_replicas`` are warm, then until the warm-up has left the p99 the
    operator sees (each new replica's warm-up requests stay in Triton's latency summary for a while, and
    with the emulated model's cold requests they are over the SLO): a running system, not a fresh one.
    Returns the seconds spent settling."""
    manifest = isvc_manifest(name, overrides, max_replicas, cold_requests, min_replicas)
    c.kubectl("create", "-f", "-", input=yaml.safe_dump(manifest))
    deadline = time.monotonic() + 240
    while True:
        try:
            st = c.api("GET", _isvc_path(name))
            if is_condition_true(st, "Ready") and int(st.get("status", {}).get("warmReplicas", 0)) >= min_replicas:
                break
        except Exception:
            pass
        if time.monotonic() >= deadline:
            raise SystemExit(f"bench-autoscaler: InferenceService {name} not Ready with {min_replicas} warm replicas within 240s")
        time.sleep(1)
    t0, clear = time.monotonic(), 0
    while clear < 3 and time.monotonic() - t0 < 180:
        time.sleep(1)
        try:
            p99 = (c.api("GET", _isvc_path(name)).get("status", {}).get("observed") or {}).get("p99Ms")
        except Exception:
            continue
        clear = clear + 1 if p99 is None or (isinstance(p99, int | float) and p99 <= CLUSTER_SLO_MS) else 0
    waited = round(time.monotonic() - t0, 1)
    log(f"{name}: {min_replicas} warm; observed p99 {'clear' if clear >= 3 else 'still over the SLO'} after {waited}s")
    return waited


def delete_and_wait(c: Cluster, name: str) -> None:
    c.kubectl("delete", "fisvc", name, "--wait=true", "--timeout=120s", check=False)
    sel = urllib.parse.quote(f"foresail.dev/inferenceservice={name}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if not c.api("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector={sel}")["items"]:
                return
        except Exception:
            pass
        time.sleep(1)


def _cpu_times() -> tuple[float, float]:
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields), idle


class Sampler(threading.Thread):
    """Every second: the service's pods (existing = holding a GPU, warm), the Deployment's replicas, the
    service's status, and the machine's CPU use (wall-clock stamps)."""

    def __init__(self, c: Cluster, name: str, period: float = 1.0) -> None:
        super().__init__(daemon=True, name="sampler")
        self.c, self.name, self.period = c, name, period
        self.rows: list[dict[str, Any]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        sel = urllib.parse.quote(f"foresail.dev/inferenceservice={self.name}")
        last = _cpu_times()
        while not self.halt.is_set():
            t = time.time()
            try:
                pods = self.c.api("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector={sel}")["items"]
                dep = self.c.api("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/{self.name}")
                isvc = self.c.api("GET", _isvc_path(self.name))
            except Exception:
                self.halt.wait(self.period)
                continue
            now = _cpu_times()
            busy = 1.0 - (now[1] - last[1]) / max(now[0] - last[0], 1e-9)
            last = now
            st = isvc.get("status", {})
            rec = st.get("recommendation") or {}
            obs = st.get("observed") or {}
            self.rows.append(
                {
                    "unix": t,
                    "pods": sum(1 for p in pods if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")),
                    "terminating": sum(1 for p in pods if p["metadata"].get("deletionTimestamp")),
                    "warm": sum(
                        1
                        for p in pods
                        if not p["metadata"].get("deletionTimestamp")
                        and any(
                            x.get("type") == "foresail.dev/warm" and x.get("status") == "True"
                            for x in p.get("status", {}).get("conditions", []) or []
                        )
                    ),
                    "desired": int(dep["spec"].get("replicas", 0) or 0),
                    "arrival_rps": obs.get("arrivalRps"),
                    "p99_ms": obs.get("p99Ms"),
                    "queue": obs.get("queueDepth"),
                    "fast": rec.get("reason") in ("FastPath", "BurstOnset"),
                    "reason": (rec.get("reason") or "")[:100],
                    "cpu_busy": round(busy, 3),
                }
            )
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
    cmd = c.exec_cmd(
        [sys.executable, "-m", "hack.loadgen", "--service", f"{NS}/{name}", "--model", "emulated", *source,
         "--duration", f"{seconds:g}", "--max-requests", "1000000", "--max-inflight", "8192", "--timeout", "60",
         "--out", str(csv_path), "--summary", str(summary_path)]
    )  # fmt: skip
    log(f"load: {' '.join(source)} for {seconds:g}s")
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=seconds + 300, check=False)
    finally:
        time.sleep(2)
        sampler.halt.set()
        sampler.join(10)
    if proc.returncode != 0:
        raise SystemExit(f"bench-autoscaler: load generator failed ({proc.returncode}): {proc.stderr[-2000:]}")
    status = c.api("GET", _isvc_path(name)).get("status", {})
    # the raw samples next to the per-request CSV: `--reanalyse` recomputes every figure from these files
    raw = {"status": status, "samples": sampler.rows, "duration_s": seconds, "settle_s": settle_s}
    (out / f"{prefix}-{name}-samples.json").write_text(json.dumps(raw, default=str))
    return load_run(out, prefix, name, seconds)


def load_run(out: Path, prefix: str, name: str, seconds: float) -> ClusterRun:
    """A recorded cluster run: the load generator's CSV and summary, the samples and the final status."""
    rows = list(csv.DictReader((out / f"{prefix}-{name}-requests.csv").open()))
    raw = json.loads((out / f"{prefix}-{name}-samples.json").read_text())
    samples: list[dict[str, Any]] = raw["samples"]
    offsets = [float(r["sent_unix"]) - float(r["sent_s"]) for r in rows if float(r["sent_unix"]) > 0]
    t0 = statistics.median(offsets) if offsets else samples[0]["unix"]
    for s in samples:
        s["t"] = round(s["unix"] - t0, 2)
    return ClusterRun(
        name=name,
        summary=json.loads((out / f"{prefix}-{name}-loadgen.json").read_text()),
        scheduled=[float(r["scheduled_s"]) for r in rows],
        latencies=[float(r["latency_ms"]) if r["status"] == "ok" else math.inf for r in rows],
        samples=samples,
        status=raw["status"],
        duration=float(raw.get("duration_s", seconds)),
        settle_s=raw.get("settle_s"),
    )


def cold_start(run: ClusterRun) -> dict[str, Any]:
    cs = run.status.get("coldStart") or {}
    recent = [float(x) for x in cs.get("recentSeconds", []) or []]
    return {
        "p50_s": cs.get("p50Seconds"),
        "p90_s": cs.get("p90Seconds"),
        "samples": cs.get("samples", 0),
        "recent_s": recent,
        "median_s": round(statistics.median(recent), 1) if recent else None,
    }


def cluster_replicas(run: ClusterRun, key: str = "pods") -> list[tuple[float, float]]:
    return [(s["t"], float(s[key])) for s in run.samples]


def _initial(run: ClusterRun) -> int:
    before = [s for s in run.samples if s["t"] <= 0.5]
    return int((before[-1] if before else run.samples[0])["pods"]) if run.samples else 1


def sim_models() -> dict[str, ReplicaModel]:
    """The replica models the predictions use: the emulated model's own parameters, and the fit to its
    measured calibration curve (``python -m hack.calibrate``; slower: Python-backend and HTTP overheads)."""
    models = {"emulated 20+2 ms/item": EMULATED}
    if CALIBRATION.is_file():
        models["fitted to the calibration curve"] = ReplicaModel.from_curve(json.loads(CALIBRATION.read_text())["points"], 32)
    return models


def predict(
    run: ClusterRun, model: ReplicaModel, behavior: ResolvedBehavior, cold: float, lead_cold: float, max_replicas: int
) -> SimResult:
    """The replay simulator configured like the cluster: its arrivals, model, cold start, prior, tick and windows."""
    order = sorted(range(len(run.scheduled)), key=run.scheduled.__getitem__)
    arr = traces.Arrivals(tuple(run.scheduled[i] for i in order), tuple(1.0 for _ in order))
    pol = policies.foresail_policy(behavior, Calibration(capacity_rps=CLUSTER_CAPACITY_RPS), CLUSTER_SLO_MS, lead_cold, 1, max_replicas)
    cfg = SimConfig(
        model=model,
        slo_ms=CLUSTER_SLO_MS,
        cold_start_s=cold,
        tick_s=behavior.tick_seconds,
        rate_window_s=RATE_WINDOW_S,
        initial_replicas=_initial(run),
        min_replicas=1,
        max_replicas=max_replicas,
    )
    return simulate(arr, cfg, pol, horizon=run.duration)


# ------------------------------------------------------------------ benchmark 3b: reaction on the cluster


def reaction_cluster(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    low, high = args.cluster_low_rps, 10 * args.cluster_low_rps
    at = args.cluster_low_seconds
    shapes = [Shape("step", low, high, at, at + 150.0)]
    if not args.quick:
        shapes.append(Shape("ramp", low, high, at, at + 360.0))
    behavior = resolved()
    rows: list[dict[str, Any]] = []
    timelines: dict[str, Any] = {}
    prefix = _stem("reaction-cluster", args)
    runs: dict[str, ClusterRun] = {}
    if args.reanalyse:
        runs = {shape.kind: load_run(out, prefix, shape.kind, shape.duration) for shape in shapes}
    else:
        with cluster_session() as c:
            for shape in shapes:
                settle = create_and_wait(c, shape.kind, None, 12, args.cold_requests)
                source = ["--profile", shape.spec(), "--seed", str(args.seed)]
                runs[shape.kind] = run_load(c, shape.kind, out, prefix, source, shape.duration, settle)
                delete_and_wait(c, shape.kind)
    for shape in shapes:
        name, run = shape.kind, runs[shape.kind]
        cs = cold_start(run)
        fig = reaction_figures(run.scheduled, run.latencies, CLUSTER_SLO_MS, shape.at, shape.duration, shape.kind)
        cold = float(cs["median_s"] or cs["p50_s"] or 10.0)
        lead = float(cs["p90_s"] or cold)
        common = {"shape": shape.kind, "profile": shape.spec(), "cold_start_s": round(cold, 1)}
        rows.append(
            {
                **common,
                "policy": "foresail (cluster)",
                "goal_recovery_s": round(cold + 2 * behavior.tick_seconds, 1) if shape.kind == "step" else None,
                **fig,
                "gpu_seconds": round(integrate(cluster_replicas(run), 0.0, shape.duration), 1),
                "gpu_vs_oracle": None,
                "peak_replicas": max((s["pods"] for s in run.samples), default=0),
                "replicas_before": value_before(cluster_replicas(run), shape.at),
                "loadgen": run.summary,
                "cold_start": cs,
                "cpu_busy_mean": round(statistics.fmean(s["cpu_busy"] for s in run.samples), 3) if run.samples else None,
                "settle_s": run.settle_s,
            }
        )
        goal = rows[-1]["goal_recovery_s"]
        for label, model in sim_models().items():
            sim = predict(run, model, behavior, cold, lead, 12)
            sfig = reaction_figures(sim.arrivals.tolist(), sim.latencies_ms.tolist(), CLUSTER_SLO_MS, shape.at, shape.duration, shape.kind)
            rows.append(
                {
                    **common,
                    "policy": f"simulated: {label}",
                    "goal_recovery_s": goal,
                    **sfig,
                    "gpu_seconds": round(integrate(sim_replicas(sim, _initial(run)), 0.0, shape.duration), 1),
                    "gpu_vs_oracle": None,
                    "peak_replicas": max((n for _, n, _ in sim.replicas_t), default=1),
                    "replicas_before": value_before(sim_replicas(sim, _initial(run)), shape.at),
                }
            )
        timelines[name] = run.samples
        log(f"reaction-cluster {name}: {json.dumps({k: v for k, v in rows[-1 - len(sim_models())].items() if k != 'loadgen'})}")
    result = {
        "benchmark": "reaction-cluster",
        "emulated_cold_requests": 20 if args.cold_requests is None else args.cold_requests,
        "model": "emulated (20 ms + 2 ms/item, max batch 32), real Triton",
        "slo_p99_ms": CLUSTER_SLO_MS,
        "capacity_prior_rps": CLUSTER_CAPACITY_RPS,
        "foresail_policy": "balanced",
        "foresail_tick_s": behavior.tick_seconds,
        "rate_window_s": RATE_WINDOW_S,
        "rows": rows,
        "timelines": timelines,
    }
    _write(out, _stem("reaction-cluster", args), result, reaction_markdown(result))
    return result


# ------------------------------------------------------------------ benchmark 2: closed loop


def closed_loop(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    trace = TRACES / f"AzureLLMInferenceTrace_{args.trace}.csv"
    compress = 6.0 if args.quick else args.compress
    seconds = 900.0 / compress
    behavior = resolved(DEMO_OVERRIDES)
    cut = traces.reshape(traces.load_trace(str(trace)), compress=compress, start=600.0, duration=900.0, seed=args.seed)
    per = traces.per_second(cut)
    busiest = max(sum(per[i : i + 10]) / 10 for i in range(max(1, len(per) - 9)))
    peak_rps = args.peak_replicas * CLUSTER_CAPACITY_RPS
    scale = peak_rps / busiest
    max_replicas = math.ceil(2.5 * args.peak_replicas)  # room above the plan: the replica count is measured, not capped
    # a running system, as `foresail replay` assumes: the replicas the first 10 s need at 70% of the capacity prior
    warm = policies.initial_replicas(sum(per[:10]) / 10 * scale, CLUSTER_CAPACITY_RPS)
    log(
        f"closed-loop: {trace.name} 600-1500 s, compress {compress:g} ({seconds:g} s), rate x{scale:.2f} (busiest 10 s {peak_rps:.0f} rps)"
    )
    prefix = _stem("closed-loop", args)
    if args.reanalyse:
        run = load_run(out, prefix, "closed", seconds)
    else:
        with cluster_session() as c:
            settle = create_and_wait(c, "closed", DEMO_OVERRIDES, max_replicas, args.cold_requests, min_replicas=warm)
            c.kubectl("patch", "fisvc", "closed", "--type=merge", "-p", json.dumps({"spec": {"scaling": {"minReplicas": 1}}}))
            source = ["--trace", str(trace), "--start", "600", "--compress", f"{compress:g}", "--rate-scale", f"{scale:.4f}", "--seed", str(args.seed)]  # fmt: skip
            run = run_load(c, "closed", out, prefix, source, seconds, settle)
    cs = cold_start(run)
    cold = float(cs["median_s"] or cs["p50_s"] or 10.0)
    lead = float(cs["p90_s"] or cold)
    real: dict[str, Any] = {
        "within_slo": round(sum(1 for x in run.latencies if x <= CLUSTER_SLO_MS) / max(len(run.latencies), 1), 5),
        "replica_seconds": round(integrate(cluster_replicas(run), 0.0, seconds), 1),
        "desired_replica_seconds": round(integrate(cluster_replicas(run, "desired"), 0.0, seconds), 1),
        "peak_replicas": max((s["pods"] for s in run.samples), default=0),
        "requests": len(run.latencies),
        "loadgen": run.summary,
        "cpu_busy_mean": round(statistics.fmean(s["cpu_busy"] for s in run.samples), 3) if run.samples else None,
        "cpu_busy_max": max((s["cpu_busy"] for s in run.samples), default=None),
        "cold_start": cs,
    }
    predictions: dict[str, Any] = {}
    for label, model in sim_models().items():
        sim = predict(run, model, behavior, cold, lead, max_replicas)
        rs = integrate(sim_replicas(sim, _initial(run)), 0.0, seconds)
        share = sim.within_slo(CLUSTER_SLO_MS)
        predictions[label] = {
            "model": {
                "base_ms": round(model.base_ms, 2),
                "per_item_ms": round(model.per_item_ms, 3),
                "max_batch": model.max_batch,
            },
            "within_slo": round(share, 5),
            "replica_seconds": round(rs, 1),
            "peak_replicas": max((n for _, n, _ in sim.replicas_t), default=1),
            "slo_points_apart": round(100 * abs(share - real["within_slo"]), 2),
            "replica_seconds_apart": round(abs(rs - real["replica_seconds"]) / max(real["replica_seconds"], 1e-9), 3),
        }
        p = predictions[label]
        p["agrees"] = p["slo_points_apart"] <= 2.0 and p["replica_seconds_apart"] <= 0.10
    # what the stock `foresail replay` makes of the same arrivals with its own conventions (capacity at the SLO
    # from the model instead of the operator's prior, a 30 s rate window, a warm start), with the oracle
    order = sorted(range(len(run.scheduled)), key=run.scheduled.__getitem__)
    arr = traces.Arrivals(tuple(run.scheduled[i] for i in order), tuple(1.0 for _ in order))
    stock, _ = run_scenario(
        Scenario("closed-loop", arr, EMULATED, CLUSTER_SLO_MS, cold, balanced().merged(ScalingBehavior.model_validate(DEMO_OVERRIDES)),
                 1, max_replicas),
        ("foresail", "hpa", "kpa", "oracle"), progress=False,
    )  # fmt: skip
    result = {
        "benchmark": "closed-loop",
        "emulated_cold_requests": 20 if args.cold_requests is None else args.cold_requests,
        "trace": trace.name,
        "slice": {"start_s": 600, "duration_s": 900, "compress": compress, "wall_s": seconds, "rate_scale": round(scale, 3)},
        "busiest_10s_rps": round(peak_rps, 1),
        "target_peak_replicas": args.peak_replicas,
        "warm_start_replicas": warm,
        "max_replicas": max_replicas,
        "settle_s": run.settle_s,
        "slo_p99_ms": CLUSTER_SLO_MS,
        "capacity_prior_rps": CLUSTER_CAPACITY_RPS,
        "behavior": behavior.model_dump(),
        "rate_window_s": RATE_WINDOW_S,
        "real": real,
        "predicted": predictions,
        "replay_stock": stock,
        "timeline": run.samples,
    }
    _write(out, _stem("closed-loop", args), result, closed_loop_markdown(result))
    return result


def closed_loop_markdown(r: dict[str, Any]) -> str:
    s, real = r["slice"], r["real"]
    lines = [
        f"**Closed loop**: {r['trace']} {s['start_s']}-{s['start_s'] + s['duration_s']} s compressed {s['compress']:g}x "
        f"({s['wall_s']:g} s), rate x{s['rate_scale']} (busiest 10 s {r['busiest_10s_rps']} rps, planned for "
        f"~{r['target_peak_replicas']} replicas); SLO p99 {r['slo_p99_ms']} ms, capacity prior {r['capacity_prior_rps']:g} rps; "
        f"warm start with {r['warm_start_replicas']} replicas, at most {r['max_replicas']}; emulated model's cold requests "
        f"{r['emulated_cold_requests']}; "
        f"measured cold start median {real['cold_start']['median_s']} s (p90 {real['cold_start']['p90_s']} s); "
        f"machine CPU busy {100 * (real['cpu_busy_mean'] or 0):.0f}% mean, {100 * (real['cpu_busy_max'] or 0):.0f}% max.\n",
        "| run | requests within SLO | replica-seconds | peak replicas | SLO points apart | replica-seconds apart | agrees (2 points, 10%) |",
        "|---|---|---|---|---|---|---|",
        f"| cluster (real Triton, operator) | {100 * real['within_slo']:.2f}% | {real['replica_seconds']:.0f} | {real['peak_replicas']} | - | - | - |",
    ]
    for label, p in r["predicted"].items():
        lines.append(
            f"| simulator, {label} | {100 * p['within_slo']:.2f}% | {p['replica_seconds']:.0f} | {p['peak_replicas']} "
            f"| {p['slo_points_apart']} | {100 * p['replica_seconds_apart']:.1f}% | {'yes' if p['agrees'] else 'no'} |"
        )
    st = r["replay_stock"]
    lines += [
        "",
        f"Stock `foresail replay` conventions on the same arrivals (capacity {st['capacity_rps_per_replica']} rps per replica "
        "from the model at the SLO, 30 s rate window, warm start):",
        "",
        "| policy | within SLO | GPU-seconds | vs oracle | peak replicas |",
        "|---|---|---|---|---|",
        *[
            f"| {n} | {100 * p['within_slo']:.2f}% | {p['gpu_seconds']:.0f} | {p['gpu_vs_oracle']}x | {p['peak_replicas']} |"
            for n, p in st["policies"].items()
        ],
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ main


def _stem(bench: str, args: argparse.Namespace) -> str:
    """Output name: the cluster runs name their non-default settings."""
    if bench == "reaction-sim":
        return bench
    stem = bench if args.cold_requests is None else f"{bench}-coldreq{args.cold_requests}"
    if bench == "reaction-cluster" and args.cluster_low_seconds != 60.0:
        stem += f"-low{args.cluster_low_seconds:g}s"
    return stem


def _write(out: Path, stem: str, result: dict[str, Any], md: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str))
    (out / f"{stem}.md").write_text(md)
    print(md, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "out/bench"))
    p.add_argument("--only", choices=BENCHES, help="run one benchmark (default: all, the cluster ones one after the other)")
    p.add_argument(
        "--quick", action="store_true", help="cold start 10 s only in the simulator, no ramp on the cluster, 6x compression"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--reanalyse",
        action="store_true",
        help="cluster benchmarks: recompute the figures from the recorded files in --out (same other options), no cluster",
    )
    p.add_argument("--cluster-low-rps", type=float, default=40.0, help="reaction-cluster: the rate before the 10x step")
    p.add_argument(
        "--cluster-low-seconds",
        type=float,
        default=60.0,
        help="reaction-cluster: seconds at the low rate first (past the 300 s scale-down delay to start from a settled service)",
    )
    p.add_argument("--trace", choices=("conv", "code"), default="conv", help="closed-loop: which shared trace")
    p.add_argument("--compress", type=float, default=3.0, help="closed-loop: time compression of the 15-minute slice")
    p.add_argument(
        "--cold-requests",
        type=int,
        help="cluster: override the emulated model's cold requests (its first 20 executions take 200 ms more; 0 = none)",
    )
    p.add_argument("--peak-replicas", type=int, default=8, help="closed-loop: replicas the operator plans at the busiest 10 s")
    args = p.parse_args(argv)
    if args.compress < 1.0 or args.peak_replicas < 1 or args.cluster_low_rps <= 0 or not 0 < args.cluster_low_seconds <= 600:
        p.error(
            "--compress must be >= 1 (15 minutes of wall time at most), --peak-replicas >= 1, --cluster-low-rps > 0, --cluster-low-seconds in (0, 600]"
        )
    out = Path(args.out)
    for bench in [args.only] if args.only else list(BENCHES):
        t0 = time.monotonic()
        {"reaction-sim": reaction_sim, "reaction-cluster": reaction_cluster, "closed-loop": closed_loop}[bench](args, out)
        log(f"{bench} done in {time.monotonic() - t0:.0f}s; {out / (_stem(bench, args) + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
