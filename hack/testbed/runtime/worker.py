"""One pod's worker: its sandbox and volumes, its containers (pulled and run by runc, or processes in the fast
mode; started, probed, restarted, stopped) and the status it reports, on a thread of its own woken by the
pod's watch events."""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foresail.api.objects import format_rfc3339
from hack.base import netns
from hack.base.kube import KubeError
from hack.base.log import logger
from hack.testbed.runtime.containers import Container
from hack.testbed.runtime.env import container_env
from hack.testbed.runtime.launch import StartError, pod_files
from hack.testbed.runtime.mounts import Mount
from hack.testbed.runtime.probes import check
from hack.testbed.runtime.processes import UnsupportedCommand, start_process
from hack.testbed.runtime.runc import unmount_below
from hack.testbed.runtime.sandbox import Sandbox
from hack.testbed.runtime.status import Conditions, pod_status
from hack.testbed.runtime.volumes import VolumeNotReady

if TYPE_CHECKING:
    from hack.testbed.runtime.runtime import Runtime

__all__ = ["PodWorker"]

log = logger("runtime")


def now_iso() -> str:
    return format_rfc3339(time.time())


class PodWorker(threading.Thread):
    def __init__(self, rt: Runtime, pod: dict[str, Any]) -> None:
        md = pod["metadata"]
        super().__init__(name=f"pod-{md['namespace']}/{md['name']}", daemon=True)
        self.rt = rt
        self.uid: str = md["uid"]
        self.pod: dict[str, Any] | None = pod
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.sandbox = Sandbox(self.uid)
        self.has_sandbox = False
        self.dir: Path = rt.run.pods / self.uid
        self.logdir = rt.run.logs / "pods" / f"{md['namespace']}_{md['name']}"
        self.ip: str | None = pod.get("status", {}).get("podIP") or None
        self.containers = [Container(c) for c in pod["spec"]["containers"]]
        # init containers run one at a time, each to success, before the containers start (restarted on
        # failure unless the pod's restartPolicy is Never, as the kubelet does)
        self.init_containers = [Container(c) for c in pod["spec"].get("initContainers") or []]
        if self.init_containers:
            for c in self.containers:
                c.waiting("PodInitializing", "")
        self.volumes: dict[str, Path] = {}
        self.setup_done = False
        self.last_status = ""
        self.conditions = Conditions()
        self.start_time = now_iso()
        self.stopping = False

    # ---------------------------------------------------------------- event plumbing

    def update(self, pod: dict[str, Any] | None) -> None:
        with self.lock:
            self.pod = pod
        self.wake.set()

    def current(self) -> dict[str, Any] | None:
        with self.lock:
            return self.pod

    def run(self) -> None:
        try:
            self._loop()
        except Exception as e:
            log(f"{self.name}: worker crashed: {e!r}")
        finally:
            self.kill_all(grace=0)
            self.teardown()
            self.rt.forget(self.uid)

    def _sleep(self, seconds: float) -> None:
        self.wake.wait(seconds)
        self.wake.clear()

    def _loop(self) -> None:
        while not self.stopping:
            pod = self.current()
            if pod is None:  # deleted from the API: stop everything
                return
            if pod["metadata"].get("deletionTimestamp"):
                self.delete(pod)
                return
            if not self.setup_done:
                try:
                    self.setup(pod)
                except VolumeNotReady as e:
                    self.rt.events(pod, "FailedMount", str(e), "Warning")
                    self.sync_status(pod)
                    self._sleep(2.0)
                    continue
            pending = next((c for c in self.init_containers if not c.succeeded), None)
            if pending is not None:
                self.tick(pod, pending)
                if pending.done and not pending.succeeded:  # failed for good (restartPolicy Never): no container starts
                    for c in self.containers:
                        c.done = True
            else:
                for c in self.containers:
                    self.tick(pod, c)
            self.sync_status(pod)
            if all(c.done for c in self.containers) and self.has_sandbox:
                self.sandbox.remove()
                self.has_sandbox = False
            self._sleep(0.25)

    # ---------------------------------------------------------------- sandbox and volumes

    def setup(self, pod: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logdir.mkdir(parents=True, exist_ok=True)
        if self.ip is None:
            self.ip = self.rt.allocate_ip(self.uid)
        self.volumes = self.rt.volumes.materialise(pod, self.dir / "volumes", self.ip)
        self.sandbox.create(self.ip, self.rt.state.network)
        self.has_sandbox = self.setup_done = True
        log(f"{self.name}: sandbox {self.sandbox.netns} ip {self.ip}")

    @property
    def all_containers(self) -> list[Container]:
        return [*self.init_containers, *self.containers]

    def teardown(self) -> None:
        for c in self.all_containers:
            if c.handle is not None:
                c.handle.cleanup()
        if self.has_sandbox or self.sandbox.exists():
            self.sandbox.remove()
        self.has_sandbox = False
        unmount_below(self.dir)  # memory-backed emptyDirs, container root filesystems
        shutil.rmtree(self.dir, ignore_errors=True)
        self.rt.remove_cgroups(self.uid)
        if self.ip:
            self.rt.release_ip(self.uid)

    def mount_plan(self, c: Container) -> list[Mount]:
        mounts = []
        for vm in c.spec.get("volumeMounts") or []:
            src = self.volumes.get(vm["name"])
            if src is None:
                continue
            if vm.get("subPath"):
                src = src / vm["subPath"]
                if not src.exists():  # as the kubelet: a missing subPath becomes a directory
                    src.mkdir(parents=True)
            mounts.append(Mount(str(src), vm["mountPath"], bool(vm.get("readOnly")), is_dir=not src.is_file()))
        return mounts

    # ---------------------------------------------------------------- containers

    def tick(self, pod: dict[str, Any], c: Container) -> None:
        if c.done:
            return
        now = time.monotonic()
        waiting = c.state.get("waiting", {})
        if waiting.get("reason") == "ErrImagePull" and c.failed_at is not None and now - c.failed_at >= 1.0:
            msg = f'Back-off pulling image "{c.spec["image"]}"'
            c.waiting("ImagePullBackOff", msg)
            self.rt.events(pod, "BackOff", msg, "Normal")
        if c.proc is not None:
            rc = c.proc.poll()
            if rc is not None:
                # what the container left behind (Triton's python-backend stubs hold its sockets) goes with
                # it, as when a container's cgroup is torn down
                if c.handle is not None:
                    c.handle.kill()
                self.exited(pod, c, rc)
            else:
                self.probe(pod, c, now)
        if c.proc is None and not c.done and now >= c.next_start:
            self.start_container(pod, c)

    def termination_file(self, c: Container) -> Path:
        return self.dir / "termination" / c.name

    def termination_message(self, c: Container, rc: int) -> str:
        """What the container wrote to its terminationMessagePath (4 KiB at most, as the kubelet reads), or with
        ``FallbackToLogsOnError`` and a failure, the end of its log."""
        try:
            text = self.termination_file(c).read_bytes()[:4096].decode(errors="replace")
        except OSError:
            text = ""
        if not text.strip() and rc != 0 and c.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            try:
                lines = (self.logdir / f"{c.name}.log").read_bytes()[-2048:].decode(errors="replace").splitlines()
            except OSError:
                lines = []
            text = "\n".join(lines[-80:])
        return text

    def exited(self, pod: dict[str, Any], c: Container, rc: int, reason: str | None = None) -> None:
        policy = pod["spec"].get("restartPolicy", "Always")
        if any(c is i for i in self.init_containers) and policy == "Always":
            policy = "OnFailure"  # an init container that succeeded is never run again
        restart = c.exited(rc, policy, now_iso(), time.monotonic(), reason, self.termination_message(c, rc))
        if restart:
            term = c.last_state["terminated"]
            msg = f"container {c.name} exited ({term['reason']}, code {term['exitCode']}); restarting"
            self.rt.events(pod, "BackOff", msg, "Warning")
        log(f"{self.name}/{c.name}: exited rc={rc} restart={restart}")

    def start_container(self, pod: dict[str, Any], c: Container) -> None:
        apiserver = (self.rt.state.network.bridge_ip, self.rt.state.ports["apiserver"])
        vols = self.rt.volumes
        env = container_env(
            pod, c.spec, apiserver, lambda vf: vols.env_from(pod, vf, self.ip or ""), lambda e: vols.env_source(pod, e)
        )
        with open(self.logdir / f"{c.name}.log", "ab") as logf:
            logf.write(f"\n--- {now_iso()}".encode())
            try:
                handle = self.launch(pod, c, env, logf)
            except UnsupportedCommand as e:
                c.waiting("UnsupportedLocalImage", str(e), final=True)
                self.rt.events(pod, "UnsupportedLocalImage", f"container {c.name}: {e}", "Warning")
                return
            except StartError as e:
                if e.retry:
                    c.start_failed(e.reason, e.message, time.monotonic())
                else:
                    c.waiting(e.reason, e.message, final=False)
                    c.next_start = float("inf")
                log(f"{self.name}/{c.name}: {e.reason}: {e.message}")
                return
            except VolumeNotReady as e:
                self.rt.events(pod, "FailedMount", str(e), "Warning")
                c.start_failed("CreateContainerConfigError", str(e), time.monotonic())
                return
        assert handle.proc is not None
        c.started(handle.proc, handle, now_iso(), time.monotonic())
        self.rt.events(pod, "Started", f"Started container {c.name}")
        log(f"{self.name}/{c.name}: started (pid {handle.proc.pid})")

    def launch(self, pod: dict[str, Any], c: Container, env: dict[str, str], logf: Any) -> Any:
        """Start ``c``: from its image through runc, or as processes in the fast mode."""
        mounts = self.mount_plan(c)
        term = self.termination_file(c)
        term.parent.mkdir(parents=True, exist_ok=True)
        term.write_bytes(b"")
        term.chmod(0o666)  # the container's user writes it
        mounts.append(Mount(str(term), c.spec.get("terminationMessagePath") or "/dev/termination-log", is_dir=False))
        if self.rt.launcher is None:
            return start_process(c.spec, env, mounts, self.sandbox.netns, self.dir, logf)
        image = self.rt.launcher.pull(pod, c.spec)
        c.image_id = image.image_id
        cid = f"{self.uid[:8]}-{c.name}-{c.restart_count}"
        return self.rt.launcher.start(
            pod, c.spec, image, env, [*pod_files(self.dir, pod, self.ip or "", self.rt.headless_services()), *mounts], self.dir / "containers" / c.name, cid,
            f"/run/netns/{self.sandbox.netns}", self.rt.cgroups_path(self.uid, cid), logf,
        )  # fmt: skip

    def probe(self, pod: dict[str, Any], c: Container, now: float) -> None:
        for kind, p in c.probes():
            if not p.due(now, c.started_mono):
                continue
            was_ok = p.ok
            # probes dial the pod IP from the cluster network, like a kubelet on the pod network
            assert c.handle is not None
            run = functools.partial(check, p.spec, c.spec, self.ip or "", c.handle.exec)
            try:
                ok = netns.call_in(self.rt.state.network.client_ns, run, timeout=p.timeout_s + 5)
            except TimeoutError:
                ok = False
            if not p.record(ok, now):
                continue
            if was_ok or kind != "readiness":
                self.rt.events(pod, "Unhealthy", f"{kind.capitalize()} probe failed for container {c.name}", "Warning")
            if kind != "readiness" and c.proc is not None:
                log(f"{self.name}/{c.name}: {kind} probe failed {p.failures}x; killing")
                self.kill(c, grace=float(pod["spec"].get("terminationGracePeriodSeconds", 30)))
                self.exited(pod, c, 137, reason="Error")

    def kill(self, c: Container, grace: float) -> None:
        """As the kubelet stops a container: its preStop hook (the sleep action) first, then SIGTERM, then
        SIGKILL once the grace period (which counts the hook's time) is over."""
        proc, handle = c.proc, c.handle
        if proc is None or handle is None or proc.poll() is not None:
            return
        start = time.monotonic()
        if grace > 0 and (hook := pre_stop_sleep(c.spec)) > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=min(hook, grace))
            if proc.poll() is not None:
                handle.kill()
                return
        handle.signal(signal.SIGTERM)
        try:
            proc.wait(timeout=max(grace - (time.monotonic() - start), 0.0))
        except subprocess.TimeoutExpired:
            handle.kill()
            proc.wait(timeout=10)
        handle.kill()  # anything the container left behind

    def kill_all(self, grace: float) -> None:
        threads = [threading.Thread(target=self.kill, args=(c, grace)) for c in self.all_containers if c.proc]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.has_sandbox:  # stray processes that joined the namespace
            self.sandbox.kill_processes()

    def delete(self, pod: dict[str, Any]) -> None:
        grace = pod["metadata"].get("deletionGracePeriodSeconds")
        grace = float(grace if grace is not None else pod["spec"].get("terminationGracePeriodSeconds", 30))
        self.kill_all(grace)
        for c in self.all_containers:
            c.killed(c.proc.poll() if c.proc is not None else None, now_iso())
        self.teardown()
        # like the kubelet: a deleted pod reaches a terminal phase (with its containers' exit codes) before
        # it goes; controllers that hold a finalizer on it (Jobs) act on that phase
        with contextlib.suppress(Exception):
            self.sync_status(pod)
        md = pod["metadata"]
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}}
        with contextlib.suppress(KubeError):
            self.rt.kube.api("DELETE", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}", body)
        log(f"{self.name}: deleted after {grace:.0f}s grace")

    # ---------------------------------------------------------------- status

    def sync_status(self, pod: dict[str, Any]) -> None:
        status = pod_status(
            pod, self.uid, self.containers, self.conditions, sandbox=self.has_sandbox, ip=self.ip,
            host_ip=self.rt.state.network.bridge_ip, start_time=self.start_time, now=now_iso(),
            init_containers=self.init_containers,
        )  # fmt: skip
        text = json.dumps(status, sort_keys=True)
        if text == self.last_status:
            return
        md = pod["metadata"]
        try:
            self.rt.kube.api(
                "PATCH", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}/status", {"status": status},
                content_type="application/strategic-merge-patch+json",
            )  # fmt: skip
            self.last_status = text
        except KubeError as e:
            if e.code == 404:
                self.update(None)
            else:
                log(f"{self.name}: status patch failed: {e}")


def pre_stop_sleep(spec: dict[str, Any]) -> float:
    """The seconds of a container's ``lifecycle.preStop.sleep`` action (0 without one). The other actions
    (exec, httpGet) are not run: nothing the project deploys uses them."""
    hook = ((spec.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}
    return float(hook.get("seconds") or 0)
