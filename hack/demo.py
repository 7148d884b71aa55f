"""``make demo``: Foresail end to end on a local cluster, in a few minutes.

Starts a cluster (``demo``), installs the chart, applies the scaling presets, the example model and an
InferenceService, replays a compressed slice of a shared trace through the load generator while a live
table shows replicas, warm replicas, queue, p99 and the autoscaler's reason, then writes a report
(markdown + PNG + the load generator's per-request CSV) to ``out/demo/`` and shuts everything down.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from e2e.helpers import Kube
from foresail.api.objects import condition
from hack import tools
from hack.cluster import REPO, Cluster

TRACE = REPO.parent / "shared/traces/AzureLLMInferenceTrace_conv.csv"


# the demo's namespace belongs to a tenant: its GPUs are arbitrated and shown by `kubectl get tenants`
TENANT: dict[str, Any] = {
    "apiVersion": "foresail.dev/v1alpha1",
    "kind": "Tenant",
    "metadata": {"name": "demo"},
    "spec": {
        "namespaces": ["default"],
        "gpus": [{"resource": "nvidia.com/gpu", "guaranteed": 8, "limit": 16}],
        "allowedPriorities": ["critical", "standard", "batch"],
    },
}


def _isvc() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["metadata"]["name"] = "demo"
    obj["spec"]["slo"] = {"p99LatencyMs": 150}
    obj["spec"]["scaling"] = {
        "minReplicas": 1,
        "maxReplicas": 8,
        "policyRef": "balanced",
        "capacityPerReplicaRps": 100,
        "overrides": {"tickSeconds": 2},
    }
    obj["spec"]["warmup"] = {"requests": 5, "timeoutSeconds": 120}
    return obj


def _row(kube: Kube, t0: float) -> dict[str, Any]:
    isvc = kube.get("fisvc", "demo")
    dep = kube.get("deploy", "demo")
    st = isvc.get("status", {})
    obs = st.get("observed", {})
    rec = st.get("recommendation", {})
    return {
        "t": round(time.monotonic() - t0, 1),
        "replicas": dep["spec"].get("replicas", 0),
        "warm": st.get("warmReplicas", 0),
        "ready": st.get("readyReplicas", 0),
        "arrival_rps": obs.get("arrivalRps"),
        "queue": obs.get("queueDepth"),
        "p99_ms": obs.get("p99Ms"),
        "fast": rec.get("reason") in ("FastPath", "BurstOnset"),
        "reason": (rec.get("reason") or (condition(isvc, "MetricsAvailable") or {}).get("message") or "")[:70],
    }


def _report(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any], slo: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reqs = list(csv.DictReader((out / "requests.csv").open()))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    secs: dict[int, int] = {}
    for r in reqs:
        secs[int(float(r["sent_s"]))] = secs.get(int(float(r["sent_s"])), 0) + 1
    a1.plot(list(secs), list(secs.values()), color="0.6", lw=0.8, label="requests/s")
    ax = a1.twinx()
    ax.step([r["t"] for r in rows], [r["replicas"] for r in rows], where="post", color="C0", label="replicas")
    ax.step([r["t"] for r in rows], [r["warm"] for r in rows], where="post", color="C2", label="warm")
    a1.legend(loc="upper left")
    ax.legend(loc="upper right")
    by10: dict[int, list[float]] = {}
    for r in reqs:
        if r["status"] == "ok":
            by10.setdefault(int(float(r["sent_s"]) // 10) * 10, []).append(float(r["latency_ms"]))
    xs = sorted(by10)
    a2.plot(xs, [sorted(by10[x])[int(0.99 * (len(by10[x]) - 1))] for x in xs], marker="o", label="p99 per 10 s (load generator)")
    a2.axhline(slo, color="C3", ls="--", label="SLO")
    a2.set_xlabel("seconds")
    a2.set_ylabel("ms")
    a2.legend()
    fig.tight_layout()
    fig.savefig(out / "demo.png", dpi=90)
    ok = [float(r["latency_ms"]) for r in reqs if r["status"] == "ok"]
    within = sum(1 for x in ok if x <= slo) / max(len(reqs), 1)
    lines = [
        "# Foresail demo report",
        "",
        f"Trace: {TRACE.name}, a compressed slice, through the load generator; SLO p99 {slo} ms.",
        "",
        f"- requests: {summary['requests']}, errors: {summary['errors']}, within SLO: {100 * within:.2f}%",
        f"- p50 / p95 / p99: {summary['p50_ms']} / {summary['p95_ms']} / {summary['p99_ms']} ms",
        f"- peak replicas: {max(r['replicas'] for r in rows)}, replica-seconds: {sum(r['replicas'] for r in rows) * 2:.0f} (2 s samples)",
        "",
        "![timeline](demo.png)",
        "",
        "Tenant at the end (`kubectl get tenants`):",
        "",
        "```",
        summary.get("tenants", "").rstrip(),
        "```",
        "",
        "| t (s) | replicas | warm | arrival rps | queue | p99 ms | reason |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {r['t']} | {r['replicas']} | {r['warm']} | {r['arrival_rps']} | {r['queue']} | {r['p99_ms']} | {r['reason']} |"
            for r in rows[::5]
        ],
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=150, help="wall-clock seconds of load")
    p.add_argument("--compress", type=float, default=6.0, help="trace time compression")
    p.add_argument("--rate-scale", type=float, default=6.0)
    p.add_argument("--out", default=str(REPO / "out/demo"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    c = Cluster("demo")
    t_start = time.monotonic()
    c.up()
    try:
        kube = Kube(c)
        helm = tools.TOOLS_BY_NAME["kubectl"].dir / "bin/helm"
        kube.kubectl("create", "namespace", "foresail-system")
        print("[demo] helm install foresail", flush=True)
        subprocess.run(
            [str(helm), f"--kubeconfig={c.kubeconfig}", "install", "foresail", str(REPO / "charts/foresail"), "-n", "foresail-system",
             "--wait", "--timeout=180s", f"--set=prometheus.url={c.network.prometheus_url}", "--set=prometheus.rateWindow=10s",
             "--set=autoscaler.tickSeconds=2"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        kube.kubectl("apply", "-f", str(REPO / "policies/scaling"))
        kube.kubectl("apply", "-f", str(REPO / "crds/examples/emulated-model.yaml"))
        kube.apply(TENANT)
        kube.create(_isvc())
        print("[demo] waiting for the InferenceService to be Ready (warm)", flush=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            c_ready = condition(kube.get("fisvc", "demo"), "Ready")
            if c_ready and c_ready["status"] == "True":
                break
            time.sleep(1)
        gen = subprocess.Popen(
            c.exec_cmd([sys.executable, "-m", "hack.loadgen", "--service", "default/demo", "--model", "emulated", "--trace", str(TRACE),
                        "--start", "600", "--compress", str(args.compress), "--rate-scale", str(args.rate_scale),
                        "--duration", str(args.seconds), "--out", str(out / "requests.csv"), "--summary", str(out / "loadgen.json")]),
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        t0 = time.monotonic()
        rows: list[dict[str, Any]] = []
        print(f"{'t':>6} {'replicas':>8} {'warm':>5} {'rps':>7} {'queue':>6} {'p99ms':>7}  reason", flush=True)
        while gen.poll() is None and time.monotonic() - t0 < args.seconds + 60:
            try:
                r = _row(kube, t0)
            except Exception:
                time.sleep(2)
                continue
            rows.append(r)
            print(
                f"{r['t']:>6} {r['replicas']:>8} {r['warm']:>5} {r['arrival_rps']!s:>7} {r['queue']!s:>6} {r['p99_ms']!s:>7}  {r['reason']}",
                flush=True,
            )
            time.sleep(2)
        _, err = gen.communicate(timeout=120)
        if gen.returncode != 0:
            raise SystemExit(f"demo: load generator failed: {err[-2000:]}")
        summary = json.loads((out / "loadgen.json").read_text())
        summary["tenants"] = kube.kubectl("get", "tenants").stdout
        _report(out, rows, summary, 150.0)
        print(f"[demo] report: {out / 'report.md'} and {out / 'demo.png'}", flush=True)
    finally:
        c.down()
    print(f"[demo] done in {time.monotonic() - t_start:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
