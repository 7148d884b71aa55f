"""The runtime: watches every pod, hands those it runs to a worker each, allocates their IPs, provisions
volumes for the ``local`` StorageClass, and holds what containers share: the image store, runc's state and
the cgroups of the cluster's containers (``foresail/<cluster>/pod<uid>/`` below the runtime's own cgroup, when
the host lets it create them: otherwise containers run without CPU and memory limits)."""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
import threading
import time
from typing import Any

from hack import tools
from hack.base.kube import Kube, KubeError
from hack.base.log import logger
from hack.testbed.runtime.events import Events
from hack.testbed.runtime.images import is_kwok_pod
from hack.testbed.runtime.launch import ImageLauncher
from hack.testbed.runtime.provisioner import ensure_storage_class, provision_pending
from hack.testbed.runtime.runc import cgroup_parents, unmount_below
from hack.testbed.runtime.sandbox import Sandbox
from hack.testbed.runtime.store import ImageStore
from hack.testbed.runtime.volumes import Volumes
from hack.testbed.runtime.worker import PodWorker
from hack.testbed.state import FAKE_NODE_ANNOTATION, RunDir, State

__all__ = ["Runtime", "remove_cgroup_dirs", "sweep_containers"]

log = logger("runtime")


class Runtime:
    def __init__(self, run: RunDir, state: State, kube: Kube) -> None:
        self.run = run
        self.state = state
        self.kube = kube
        self.events = Events(kube)
        self.volumes = Volumes(kube, state.network.bridge_ip)
        self.workers: dict[str, PodWorker] = {}
        self.lock = threading.Lock()
        self.pool = [str(ip) for ip in ipaddress.IPv4Network(state.network.runtime_pod_cidr).hosts()]
        self.ips: dict[str, str] = {}
        self.fake_nodes: set[str] = set()
        self.stop = threading.Event()
        self.launcher: ImageLauncher | None = None  # None: the fast mode, containers as processes
        self.cgroups = False
        if state.runtime == "images":
            oci = tools.TOOLS_BY_NAME["oci"].dir / "bin"
            store = ImageStore(run.images, run.mirrors, oci / "umoci")
            self.launcher = ImageLauncher(store, oci / "runc", run.runc, self.events, self.volumes.secret)
            self.cgroups = self._make_cgroups()

    # ---------------------------------------------------------------- cgroups

    def _make_cgroups(self) -> bool:
        try:
            for d in cgroup_parents(f"foresail/{self.run.name}"):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            log(f"cgroups: cannot create {e.filename} ({e.strerror}): containers run without CPU and memory limits")
            return False
        return True

    def cgroups_path(self, uid: str, cid: str) -> str | None:
        """runc's (relative) cgroups path of a container; None when the host lets us set no limits."""
        return f"foresail/{self.run.name}/pod{uid[:8]}/{cid}" if self.cgroups else None

    def remove_cgroups(self, uid: str) -> None:
        if self.cgroups:
            remove_cgroup_dirs(f"foresail/{self.run.name}/pod{uid[:8]}")

    # ---------------------------------------------------------------- IPs

    def allocate_ip(self, uid: str) -> str:
        with self.lock:
            used = set(self.ips.values())
            for ip in self.pool:
                if ip not in used:
                    self.ips[uid] = ip
                    return ip
        raise RuntimeError("pod IP pool exhausted")

    def release_ip(self, uid: str) -> None:
        with self.lock:
            self.ips.pop(uid, None)

    def forget(self, uid: str) -> None:
        with self.lock:
            self.workers.pop(uid, None)

    # ---------------------------------------------------------------- pods

    def on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        spec, md = pod["spec"], pod["metadata"]
        if spec.get("nodeName") not in self.fake_nodes or is_kwok_pod(pod):
            return
        uid = md["uid"]
        with self.lock:
            w = self.workers.get(uid)
        if kind == "DELETED":
            if w:
                w.update(None)
            return
        if w is not None:
            w.update(pod)
            return
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            if md.get("deletionTimestamp"):  # finished before we saw it: just let it go
                with contextlib.suppress(KubeError):
                    self.kube.api("DELETE", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}", {"gracePeriodSeconds": 0})
            return
        w = PodWorker(self, pod)
        sandbox = Sandbox(uid)
        if sandbox.exists():  # left by an earlier runtime instance killed hard: its processes, then it
            sandbox.kill_processes()
            sandbox.remove()
        with self.lock:
            if w.ip:  # a pod from an earlier runtime instance keeps its IP
                self.ips[uid] = w.ip
            self.workers[uid] = w
        w.start()

    def headless_services(self) -> list[tuple[str, str, str]]:
        """(namespace, name, address) of every headless Service's ready endpoint addresses: the names a pod
        resolves through its /etc/hosts, in place of cluster DNS (``monitoring/prometheus-operated``)."""
        headless = {
            (s["metadata"]["namespace"], s["metadata"]["name"])
            for s in self.kube.api("GET", "/api/v1/services")["items"]
            if (s.get("spec") or {}).get("clusterIP") == "None"
        }
        return [
            (e["metadata"]["namespace"], e["metadata"]["name"], a["ip"])
            for e in self.kube.api("GET", "/api/v1/endpoints")["items"]
            if (e["metadata"]["namespace"], e["metadata"]["name"]) in headless
            for sub in e.get("subsets") or []
            for a in sub.get("addresses") or []
        ]

    def refresh_nodes(self) -> None:
        nodes = self.kube.api("GET", "/api/v1/nodes")["items"]
        self.fake_nodes = {
            n["metadata"]["name"] for n in nodes if (n["metadata"].get("annotations") or {}).get(FAKE_NODE_ANNOTATION) == "fake"
        }

    def watch_pods(self) -> None:
        while not self.stop.is_set():
            try:
                self.refresh_nodes()
                lst = self.kube.api("GET", "/api/v1/pods")
                seen = set()
                for p in lst["items"]:
                    seen.add(p["metadata"]["uid"])
                    self.on_pod("ADDED", p)
                with self.lock:
                    gone = [w for uid, w in self.workers.items() if uid not in seen]
                for w in gone:
                    w.update(None)
                for ev in self.kube.watch("/api/v1/pods", lst["metadata"]["resourceVersion"]):
                    if self.stop.is_set():
                        return
                    if ev["type"] == "ERROR":
                        break
                    if ev["type"] != "BOOKMARK":
                        self.on_pod(ev["type"], ev["object"])
            except Exception as e:
                if not self.stop.is_set():
                    log(f"pod watch: {e!r}; relisting")
                    time.sleep(1)

    def provision_loop(self) -> None:
        while not self.stop.wait(1.0):
            try:
                for what in provision_pending(self.kube, self.run.pvcs):
                    log(f"provisioned {what}")
            except Exception as e:
                log(f"provisioner: {e!r}")

    # ---------------------------------------------------------------- lifecycle

    def run_forever(self) -> None:
        ensure_storage_class(self.kube)
        threading.Thread(target=self.provision_loop, name="provisioner", daemon=True).start()
        threading.Thread(target=self.watch_pods, name="pod-watch", daemon=True).start()
        log(f"local pod runtime up: pod IPs from {self.state.network.runtime_pod_cidr}")
        self.stop.wait()

    def shutdown(self) -> None:
        log("shutting down: stopping all pods")
        self.stop.set()
        with self.lock:
            workers = list(self.workers.values())
        for w in workers:
            w.stopping = True
            w.wake.set()
        for w in workers:
            w.join(timeout=30)


def remove_cgroup_dirs(relative: str) -> None:
    """Remove the (empty) cgroup directories at ``relative`` in every hierarchy, deepest first."""
    for top in cgroup_parents(relative):
        if top.is_dir():
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()


def sweep_containers(run: RunDir) -> list[str]:
    """What a runtime stopped hard left behind: runc containers, mounts below the run directory (container root
    filesystems, memory-backed emptyDirs), the cluster's cgroups; returns what it removed."""
    runc = tools.TOOLS_BY_NAME["oci"].dir / "bin/runc"
    gone = []
    if run.runc.is_dir() and runc.exists():
        ids = subprocess.run([str(runc), "--root", str(run.runc), "list", "-q"], capture_output=True, text=True, check=False)
        for cid in ids.stdout.split():
            subprocess.run([str(runc), "--root", str(run.runc), "delete", "--force", cid], capture_output=True, check=False)
            gone.append(f"container {cid}")
    gone += [f"mount {m}" for m in unmount_below(run.path)]
    remove_cgroup_dirs(f"foresail/{run.name}")
    for top in cgroup_parents("foresail"):
        with contextlib.suppress(OSError):
            top.rmdir()  # only when no other cluster's containers are below it
    return gone
