"""``python -m hack.demo`` (``make demo``): the run (see the package's description)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from foresail.api.objects import is_condition_true
from hack import demo
from hack.base.log import logger
from hack.base.paths import OUT, REPO, TRACES
from hack.base.wait import wait_for
from hack.demo.live import Display, display, display_mode
from hack.demo.report import demo_checks, plot, report_markdown
from hack.demo.setup import NAME, SLO_MS, TENANT, isvc
from hack.demo.timeline import timeline_row
from hack.loadgen import in_cluster
from hack.loadgen.records import read_csv
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import install_foresail, own_namespace

TRACE = TRACES / "AzureLLMInferenceTrace_conv.csv"
SAMPLE_S = 2.0
log = logger("demo")


def live_table(c: Cluster, gen: subprocess.Popen[str], seconds: float, show: Display) -> list[dict[str, Any]]:
    """Sample the service every 2 s while the load generator runs, showing each sample; return the rows."""
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    show.start()
    try:
        while gen.poll() is None and time.monotonic() - t0 < seconds + 60:
            try:
                ns = "/namespaces/default"
                r = timeline_row(
                    time.monotonic() - t0,
                    c.kube.api("GET", f"/apis/foresail.dev/v1alpha1{ns}/inferenceservices/{NAME}"),
                    c.kube.api("GET", f"/apis/apps/v1{ns}/deployments/{NAME}"),
                    time.time(),
                )
            except Exception:
                _wait(gen, show, t0, SAMPLE_S)
                continue
            rows.append(r)
            show.sample(f"default/{NAME}", r)
            _wait(gen, show, t0, SAMPLE_S)
    finally:
        show.stop()
    return rows


def _wait(gen: subprocess.Popen[str], show: Display, t0: float, seconds: float) -> None:
    """Sleep ``seconds`` in steps of 0.25 s, moving the replay's bar (until the load generator exits)."""
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end and gen.poll() is None:
        show.tick(now - t0)
        time.sleep(min(0.25, end - now))
    show.tick(time.monotonic() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hack.demo", description=demo.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=150, help="wall-clock seconds of load")
    p.add_argument("--compress", type=float, default=6.0, help="trace time compression")
    p.add_argument("--rate-scale", type=float, default=6.0)
    p.add_argument("--out", default=str(OUT / "demo"))
    p.add_argument("--plain", action="store_true", help="plain lines even on a terminal (they are the default elsewhere)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    c = Cluster("demo")
    t_start = time.monotonic()
    c.up()
    try:
        log("helm install foresail")
        install_foresail(c, {"prometheus.rateWindow": "10s", "autoscaler.loopSeconds": "2"})
        c.kube.kubectl("apply", "-f", str(REPO / "crds/examples/emulated-model.yaml"))
        own_namespace(c, TENANT)  # tenancy mode strict: services only where a Tenant owns the namespace
        c.kube.create(isvc())
        log("waiting for the InferenceService to be Ready (warm)")
        wait_for("the demo service Ready", lambda: is_condition_true(c.kube.get("fisvc", NAME), "Ready"), timeout=300, interval=1)
        gen = subprocess.Popen(
            in_cluster(c, "--service", f"default/{NAME}", "--model", "emulated", "--trace", str(TRACE), "--start", "600",
                       "--compress", str(args.compress), "--rate-scale", str(args.rate_scale), "--duration", str(args.seconds),
                       "--out", str(out / "requests.csv"), "--summary", str(out / "loadgen.json")),
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        mode = display_mode(sys.stdout.isatty(), args.plain, os.environ.get("TERM"))
        label = f"replay {TRACE.stem.rsplit('_', 1)[-1]} trace"
        rows = live_table(c, gen, args.seconds, display(mode, sys.stdout, args.seconds, SLO_MS, label, args.compress))
        _, err = gen.communicate(timeout=120)
        if gen.returncode != 0:
            raise SystemExit(f"demo: load generator failed: {err[-2000:]}")
        summary = json.loads((out / "loadgen.json").read_text())
        summary["tenants"] = c.kube.kubectl("get", "tenants").stdout
        records = read_csv(out / "requests.csv")
        plot(out / "demo.png", rows, records, SLO_MS)
        (out / "report.md").write_text(report_markdown(TRACE.name, rows, summary, records, SLO_MS, SAMPLE_S))
        (out / "checks.json").write_text(json.dumps(demo_checks(rows, records), indent=2) + "\n")
        log(f"report: {out / 'report.md'} and {out / 'demo.png'}")
    finally:
        c.down()
    log(f"done in {time.monotonic() - t_start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
