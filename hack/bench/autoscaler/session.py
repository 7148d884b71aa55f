"""The cluster a benchmark runs on (only when no other local cluster runs), Foresail installed by the chart,
and the benchmark's InferenceService: created and settled, deleted and gone."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from foresail.api.objects import is_condition_true
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.bench.autoscaler.settings import CLUSTER_CAPACITY_RPS, CLUSTER_NAME, CLUSTER_SLO_MS, NS, RATE_WINDOW_S, log
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import install_foresail, own_namespace, tenant_manifest

__all__ = ["cluster_session", "create_and_wait", "delete_and_wait", "isvc_manifest", "isvc_path"]


def wait_for_free_machine(timeout_s: float = 2400.0, poll_s: float = 30.0) -> None:
    """Other engineers' e2e clusters share these 2 cores: start only when no kube-apiserver runs."""
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
    """A fresh cluster with Foresail (autoscaler tick 1 s), the presets and the emulated model; stopped after,
    with a warning about any of its processes left behind."""
    wait_for_free_machine()
    before = set(_tritonservers())
    c = Cluster(CLUSTER_NAME)
    c.up()
    try:
        log("helm install foresail")
        install_foresail(c, {"prometheus.rateWindow": f"{RATE_WINDOW_S:.0f}s", "autoscaler.loopSeconds": "1"})
        c.kube.kubectl("apply", "-f", str(REPO / "crds/examples/emulated-model.yaml"))
        # tenancy mode strict: services only where a Tenant owns the namespace (the whole cluster, every priority)
        own_namespace(c, tenant_manifest("bench", [NS], limit=c.nodes * c.gpus_per_node))
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


def isvc_path(name: str) -> str:
    return f"/apis/foresail.dev/v1alpha1/namespaces/{NS}/inferenceservices/{name}"


def create_and_wait(
    c: Cluster, name: str, overrides: dict[str, Any] | None, max_replicas: int, cold_requests: int | None, min_replicas: int = 1
) -> float:
    """Create the service, wait until ``min_replicas`` are warm, then until the warm-up has left the p99 the
    operator sees (each new replica's warm-up requests stay in Triton's latency summary for a while, and
    with the emulated model's cold requests they are over the SLO): a running system, not a fresh one.
    Returns the seconds spent settling."""
    c.kube.create(isvc_manifest(name, overrides, max_replicas, cold_requests, min_replicas))

    def warm() -> bool:
        st = c.kube.api("GET", isvc_path(name))
        return is_condition_true(st, "Ready") and int(st.get("status", {}).get("warmReplicas", 0)) >= min_replicas

    wait_for(f"InferenceService {name} Ready with {min_replicas} warm replicas", warm, timeout=240, interval=1)
    t0, clear = time.monotonic(), 0
    while clear < 3 and time.monotonic() - t0 < 180:
        time.sleep(1)
        try:
            p99 = (c.kube.api("GET", isvc_path(name)).get("status", {}).get("observed") or {}).get("p99Ms")
        except Exception:
            continue
        clear = clear + 1 if p99 is None or (isinstance(p99, int | float) and p99 <= CLUSTER_SLO_MS) else 0
    waited = round(time.monotonic() - t0, 1)
    log(f"{name}: {min_replicas} warm; observed p99 {'clear' if clear >= 3 else 'still over the SLO'} after {waited}s")
    return waited


def delete_and_wait(c: Cluster, name: str) -> None:
    c.kube.kubectl("delete", "fisvc", name, "--wait=true", "--timeout=120s", check=False)
    wait_for(
        f"the pods of {name} gone", lambda: not c.kube.pods(NS, f"foresail.dev/inferenceservice={name}"), timeout=120, interval=1
    )
