"""The runtime: watches every pod, hands those it runs to a worker each, allocates their IPs and provisions
volumes for the ``local`` StorageClass."""

from __future__ import annotations

import contextlib
import ipaddress
import threading
import time
from typing import Any

from hack.base.kube import Kube, KubeError
from hack.base.log import logger
from hack.testbed.runtime.events import Events
from hack.testbed.runtime.images import is_kwok_pod
from hack.testbed.runtime.provisioner import ensure_storage_class, provision_pending
from hack.testbed.runtime.sandbox import Sandbox
from hack.testbed.runtime.volumes import Volumes
from hack.testbed.runtime.worker import PodWorker
from hack.testbed.state import FAKE_NODE_ANNOTATION, RunDir, State

__all__ = ["Runtime"]

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
