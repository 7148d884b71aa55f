"""The local pod runtime: real Triton servers at their pod IPs, Prometheus discovery, the load generator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import http_in_cluster, prom_query
from foresail.api.objects import condition, parse_rfc3339, pod_is_live, pod_is_ready
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.loadgen import in_cluster
from hack.loadgen.records import read_csv
from hack.testbed.cluster import Cluster
from hack.testbed.manifests import model_configmap, service, triton_deployment
from hack.testbed.runtime.images import FORESAIL_IMAGE
from hack.testbed.runtime.sandbox import Sandbox


def _deploy(kube: Kube, ns: str, name: str, replicas: int = 1, env: dict[str, str] | None = None) -> None:
    cm = model_configmap(f"{name}-models", ["emulated"])
    kube.apply([cm, triton_deployment(name, "emulated", cm, replicas=replicas, env=env), service(name)], ns)


def _ready_pods(kube: Kube, ns: str, app: str, n: int, timeout: float = 240) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        pods = [p for p in kube.pods(ns, f"app={app}") if pod_is_live(p)]
        return pods if len(pods) == n and all(map(pod_is_ready, pods)) else None

    return wait_for(f"{n} Ready {app} pods", ready, timeout=timeout)


def _ready_addresses(kube: Kube, ns: str, service: str) -> list[tuple[str, bool]]:
    slices = kube.get("endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={service}")["items"]
    return sorted(
        (a, bool(ep["conditions"]["ready"])) for s in slices for ep in s.get("endpoints") or [] for a in ep["addresses"]
    )


def _endpoints_ready(kube: Kube, ns: str, service: str, pods: list[dict[str, Any]]) -> None:
    """The Service's EndpointSlices list exactly ``pods``, all ready (the EndpointSlice controller lags the pods)."""
    want = sorted((p["status"]["podIP"], True) for p in pods)
    wait_for(
        f"the EndpointSlices of {service} listing its {len(pods)} ready pods",
        lambda: _ready_addresses(kube, ns, service) == want,
        timeout=120,
    )


def _loadgen(cluster: Cluster, *args: str, timeout: float = 300) -> dict[str, Any]:
    out = subprocess.run(in_cluster(cluster, *args), cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    summary: dict[str, Any] = json.loads(out.stdout)
    return summary


def test_triton_pod_ready_only_when_triton_is_ready(kube: Kube, cluster: Cluster, namespace: str) -> None:
    _deploy(kube, namespace, "slowload", env={"FORESAIL_EMULATED_INIT_DELAY_S": "3"})
    (pod,) = _ready_pods(kube, namespace, "slowload", 1)
    started = parse_rfc3339(pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"])
    ready_at = parse_rfc3339(condition(pod, "Ready")["lastTransitionTime"])  # type: ignore[index]
    assert ready_at - started >= 3.0, "Ready must wait for the model to load (3 s)"
    ip = pod["status"]["podIP"]
    code, _ = http_in_cluster(cluster, f"http://{ip}:8000/v2/health/ready")
    assert code == 200
    out = subprocess.run(
        cluster.exec_cmd(
            ["curl", "-s", "-m", "30", "-o", "/dev/null", "-w", "%{http_code}", f"http://{ip}:8000/v2/health/ready"]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.stdout == "200", out
    _endpoints_ready(kube, namespace, "slowload", [pod])


def test_prometheus_scrapes_triton_with_labels(kube: Kube, cluster: Cluster, namespace: str) -> None:
    _deploy(kube, namespace, "scraped", replicas=2)
    pods = _ready_pods(kube, namespace, "scraped", 2)
    names = sorted(p["metadata"]["name"] for p in pods)

    def up() -> list[dict[str, Any]] | None:
        r = prom_query(cluster, f'up{{job="triton",namespace="{namespace}"}} == 1')
        return r if sorted(x["metric"]["pod"] for x in r) == names else None

    wait_for("up == 1 for both Triton pods", up, timeout=90)
    _endpoints_ready(kube, namespace, "scraped", pods)
    summary = _loadgen(
        cluster,
        "--service",
        f"{namespace}/scraped",
        "--model",
        "emulated",
        "--profile",
        "constant:rate=20",
        "--duration",
        "5",
    )
    assert summary["errors"] == 0, summary
    for metric in ("nv_inference_request_success", "nv_inference_pending_request_count"):

        def labelled(metric: str = metric) -> list[dict[str, Any]] | None:
            r = prom_query(cluster, f'{metric}{{namespace="{namespace}",model="emulated"}}')
            ok = [
                x for x in r if x["metric"].get("foresail_dev_inferenceservice") == "scraped" and x["metric"].get("pod") in names
            ]
            return ok if len(ok) == 2 else None

        wait_for(f"{metric} with namespace, pod and foresail_dev_inferenceservice", labelled, timeout=90)
    wait_for(
        "all requests counted",
        lambda: (
            float(prom_query(cluster, f'sum(nv_inference_request_success{{namespace="{namespace}"}})')[0]["value"][1])
            >= summary["ok"]
        ),
        timeout=90,
    )


def test_crash_restarts_and_delete_cleans_up(kube: Kube, namespace: str) -> None:
    _deploy(kube, namespace, "crashy")
    (pod,) = _ready_pods(kube, namespace, "crashy", 1)
    name = pod["metadata"]["name"]
    ns_name = Sandbox(pod["metadata"]["uid"]).netns
    pids = subprocess.run(["ip", "netns", "pids", ns_name], capture_output=True, text=True, check=True).stdout.split()
    triton = [p for p in pids if "tritonserver" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
    assert triton, pids
    os.kill(int(triton[0]), signal.SIGKILL)
    wait_for("pod NotReady after the crash", lambda: not pod_is_ready(kube.get("pod", "-n", namespace, name)), timeout=90)

    def back_ready() -> dict[str, Any] | None:
        p = kube.get("pod", "-n", namespace, name)
        return p if pod_is_ready(p) and p["status"]["containerStatuses"][0]["restartCount"] >= 1 else None

    back = wait_for("pod Ready again after a restart", back_ready, timeout=240)
    assert back["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 137
    kube.kubectl("delete", "pod", "-n", namespace, name, "--wait=true", "--timeout=180s")
    assert not Path(f"/run/netns/{ns_name}").exists(), "the pod's network namespace is removed"
    for p in pids:
        assert not Path(f"/proc/{p}").exists() or "zombie" in Path(f"/proc/{p}/status").read_text().lower(), (
            f"process {p} survived"
        )


@pytest.mark.parametrize(
    ("name", "image", "says"),
    [
        ("a tag the cluster registry does not hold", "ghcr.io/foresail/foresail:no-such-tag", "manifest unknown"),
        ("a registry out of reach, no mirror", "nginx:1.27", "registry-1.docker.io"),
    ],
)
def test_image_pull_errors_are_reported_as_the_kubelet_does(kube: Kube, namespace: str, name: str, image: str, says: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "puller"}, "spec": {"containers": [{"name": "web", "image": image}]}}
    kube.create(pod, namespace)

    def backing_off() -> dict[str, Any] | None:
        st = kube.get("pod", "-n", namespace, "puller")["status"].get("containerStatuses") or [{}]
        w: dict[str, Any] | None = st[0].get("state", {}).get("waiting")
        if w and w.get("reason") == "ErrImagePull":
            assert says in w["message"], (name, w)
        return w if w and w.get("reason") == "ImagePullBackOff" else None

    w = wait_for("ImagePullBackOff", backing_off, timeout=120)
    assert f'Back-off pulling image "{image}"' in w["message"]
    assert kube.get("pod", "-n", namespace, "puller")["status"]["phase"] == "Pending"
    events = kube.get("events", "-n", namespace)["items"]
    failed = [e["message"] for e in events if e["reason"] == "Failed" and e["type"] == "Warning"]
    assert any(m.startswith(f'Failed to pull image "{image}"') and says in m for m in failed), failed
    assert "Error: ErrImagePull" in failed, failed


def test_two_replicas_share_load_and_scale_to_zero_and_back(kube: Kube, cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    _deploy(kube, namespace, "shared", replicas=2)
    pods = _ready_pods(kube, namespace, "shared", 2)
    _endpoints_ready(kube, namespace, "shared", pods)
    out = tmp_path / "requests.csv"
    summary = _loadgen(
        cluster,
        "--service",
        f"{namespace}/shared",
        "--model",
        "emulated",
        "--profile",
        "constant:rate=40",
        "--duration",
        "5",
        "--out",
        str(out),
    )
    assert summary["errors"] == 0, summary
    by_ep: dict[str, int] = {}
    for r in read_csv(out):
        by_ep[r.endpoint.split(":")[0]] = by_ep.get(r.endpoint.split(":")[0], 0) + 1
    assert sorted(by_ep) == sorted(p["status"]["podIP"] for p in pods), by_ep
    assert min(by_ep.values()) >= 0.3 * summary["requests"], by_ep
    kube.kubectl("scale", "deployment", "-n", namespace, "shared", "--replicas=0")
    wait_for("no pods left", lambda: not kube.pods(namespace, "app=shared"), timeout=180)
    kube.kubectl("scale", "deployment", "-n", namespace, "shared", "--replicas=2")
    _ready_pods(kube, namespace, "shared", 2)


def test_cluster_down_leaves_nothing_behind() -> None:
    c = Cluster(name="e2e-down", nodes=1, gpus_per_node=2)
    c.up()
    try:
        kube = c.kube
        kube.apply(
            [model_configmap("m", ["emulated"]), triton_deployment("t", "emulated", model_configmap("m", ["emulated"]))],
            "default",
        )
        pods = _ready_pods(kube, "default", "t", 1)
        sandboxes = [Sandbox(p["metadata"]["uid"]).netns for p in pods]
        assert all(Path(f"/run/netns/{n}").exists() for n in sandboxes)
        assert c.state is not None
        pids = list(c.state.pids.values())
        run_dir = c.dir
    finally:
        c.down()
    for pid in pids:  # down() waited for each to exit (and reaped it)
        assert not Path(f"/proc/{pid}").exists(), f"component pid {pid} survived"
    leftovers = subprocess.run(["pgrep", "-af", str(run_dir)], capture_output=True, text=True, check=False).stdout
    assert not leftovers.strip(), leftovers
    for proc in Path("/proc").glob("[0-9]*"):  # no container process still runs in a pod directory
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        assert not cwd.startswith(str(run_dir)), f"pid {proc.name} still runs in {cwd}"
    assert not [n for n in sandboxes if Path(f"/run/netns/{n}").exists()], "pod sandboxes removed"
    assert not [n for n in os.listdir("/run/netns") if n.startswith("fs-e2e-down")], os.listdir("/run/netns")
    assert not run_dir.exists()


def _job(name: str, script: str, volumes: list[dict[str, Any]], mounts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": f"{FORESAIL_IMAGE}:0.1.0",
                            "command": ["python", "-c", script],
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                }
            },
        },
    }


def test_jobs_pvcs_and_secrets_with_the_foresail_image(kube: Kube, namespace: str) -> None:
    kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            },
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "stringData": {"word": "s3cret"}},
        ],
        namespace,
    )
    vols: list[dict[str, Any]] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "sec", "secret": {"secretName": "token"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "data", "mountPath": "/data"},
        {"name": "sec", "mountPath": "/etc/token", "readOnly": True},
    ]
    write = "import pathlib; pathlib.Path('/data/out.txt').write_text(pathlib.Path('/etc/token/word').read_text())"
    read = "import pathlib, sys; sys.exit(0 if pathlib.Path('/data/out.txt').read_text() == 's3cret' else 4)"
    kube.apply([_job("writer", write, vols, mounts)], namespace)

    def finished(name: str) -> str | None:
        st = kube.get("job", "-n", namespace, name).get("status", {})
        return "Complete" if st.get("succeeded") else "Failed" if st.get("failed") else None

    assert wait_for("the writer Job", lambda: finished("writer"), timeout=240) == "Complete"
    kube.apply([_job("reader", read, vols, mounts)], namespace)
    assert wait_for("the reader Job", lambda: finished("reader"), timeout=240) == "Complete", "a second pod sees the claim's data"
    kube.apply([_job("failer", "import sys; sys.exit(3)", [], [])], namespace)
    assert wait_for("the failing Job", lambda: finished("failer"), timeout=240) == "Failed"
    (pod,) = kube.pods(namespace, "job-name=failer")
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
