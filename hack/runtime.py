"""The local pod runtime: plays the kubelet on kwok's fake nodes for the images Foresail knows.

    python -m hack.runtime --name CLUSTER      (started and stopped by hack/cluster)

For every pod bound to a fake node whose containers are not all pause images (those are kwok's), it:

* gives the pod its own network namespace on the cluster bridge holding the pod IP it allocates;
* materialises volumes: configMap, secret, emptyDir, persistentVolumeClaim (a per-claim directory,
  provisioned by the ``local`` StorageClass this runtime serves), hostPath and projected volumes
  (service-account token via the TokenRequest API, the cluster CA, downward API), bind-mounted at the
  container's mountPath inside a private mount namespace;
* runs each container as local processes: Triton images (repository ending in ``tritonserver``) with
  the tritonserver binary of the nvidia-pytriton wheel, the Foresail image with ``python -m foresail``
  from the project's virtualenv; any other image waits with reason ``UnsupportedLocalImage``;
* reports status like the kubelet: container readiness from the real readiness probe, pod Ready only
  when every container is ready *and* every readiness gate is True, liveness failures and crashes
  restart the container with back-off and ``restartCount``, Job pods end Succeeded/Failed by exit
  code, deletion sends SIGTERM, waits the grace period, then SIGKILL, then removes the pod.

Container logs: ``<run dir>/logs/pods/<namespace>_<pod>/<container>.log`` (``kubectl logs`` does not
work: there is no kubelet API).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import ipaddress
import json
import os
import shlex
import shutil
import signal
import site
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hack import netns, tools
from hack.cluster import REPO, Cluster

# The Foresail image, named in one place: the chart's default image repository must match.
FORESAIL_IMAGE = "ghcr.io/foresail/foresail"
STORAGE_CLASS = "local"
PROVISIONER = "foresail.dev/local-runtime"
COMPONENT = "foresail-local-runtime"
BACKOFF_INITIAL_S = 2.0  # the kubelet starts at 10 s; shorter here so tests see restarts quickly
BACKOFF_MAX_S = 60.0
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def log(msg: str) -> None:
    print(f"[runtime {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_kind(image: str) -> str | None:
    """``triton``, ``foresail``, ``pause`` or None (unsupported) for a container image reference."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref = ref[: ref.rfind(":")]
    if ref.endswith("tritonserver"):
        return "triton"
    if ref == FORESAIL_IMAGE or ref.endswith("/foresail"):
        return "foresail"
    if ref.rsplit("/", 1)[-1] == "pause":
        return "pause"
    return None


def is_kwok_pod(pod: dict[str, Any]) -> bool:
    return all(image_kind(c["image"]) == "pause" for c in pod["spec"]["containers"])


class Api:
    """The few API calls the runtime makes (stdlib, admin credentials of the cluster)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def call(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        return self.cluster.api(method, path, body, content_type=content_type)

    def get(self, path: str) -> Any | None:
        try:
            return self.call("GET", path)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def patch_status(self, ns: str, name: str, status: dict[str, Any]) -> None:
        self.call(
            "PATCH",
            f"/api/v1/namespaces/{ns}/pods/{name}/status",
            {"status": status},
            content_type="application/strategic-merge-patch+json",
        )

    def event(self, pod: dict[str, Any], reason: str, message: str, type_: str = "Normal") -> None:
        md = pod["metadata"]
        ev = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{md['name']}.{uuid.uuid4().hex[:12]}", "namespace": md["namespace"]},
            "involvedObject": {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": md["name"],
                "namespace": md["namespace"],
                "uid": md["uid"],
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": COMPONENT, "host": pod["spec"].get("nodeName", "")},
            "firstTimestamp": now_iso(),
            "lastTimestamp": now_iso(),
            "count": 1,
            "reportingComponent": COMPONENT,
        }
        with contextlib.suppress(Exception):
            self.call("POST", f"/api/v1/namespaces/{md['namespace']}/events", ev)


@dataclass
class Probe:
    spec: dict[str, Any]
    successes: int = 0
    failures: int = 0
    last: float = 0.0
    ok: bool = False


@dataclass
class Container:
    spec: dict[str, Any]
    kind: str | None
    proc: subprocess.Popen[bytes] | None = None
    restart_count: int = 0
    started_at: str | None = None
    started_mono: float = 0.0
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    next_start: float = 0.0
    backoff: float = BACKOFF_INITIAL_S
    readiness: Probe | None = None
    liveness: Probe | None = None
    startup: Probe | None = None
    done: bool = False  # terminated and will not restart

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def ready(self) -> bool:
        if self.proc is None or "running" not in self.state:
            return False
        return self.readiness.ok if self.readiness else True


class PodWorker(threading.Thread):
    def __init__(self, rt: Runtime, pod: dict[str, Any]) -> None:
        md = pod["metadata"]
        super().__init__(name=f"pod-{md['namespace']}/{md['name']}", daemon=True)
        self.rt = rt
        self.uid: str = md["uid"]
        self.pod: dict[str, Any] | None = pod
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.ns = f"fsp-{self.uid[:8]}"
        self.host_if = f"fsv{self.uid[:8]}"
        self.dir = rt.cluster.dir / "pods" / self.uid
        self.logdir = rt.cluster.logs / "pods" / f"{md['namespace']}_{md['name']}"
        self.ip: str | None = pod.get("status", {}).get("podIP") or None
        self.containers = [Container(c, image_kind(c["image"])) for c in pod["spec"]["containers"]]
        self.mounts: dict[str, Path] = {}
        self.setup_done = False
        self.sandbox = False
        self.last_status: str = ""
        self.transitions: dict[str, tuple[str, str]] = {}
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
                    self.rt.api.event(pod, "FailedMount", str(e), "Warning")
                    self.sync_status(pod)
                    self.wake.wait(2.0)
                    self.wake.clear()
                    continue
            for c in self.containers:
                self.tick(pod, c)
            self.sync_status(pod)
            if all(c.done for c in self.containers) and self.sandbox:
                self.teardown_sandbox()
            self.wake.wait(0.25)
            self.wake.clear()

    # ---------------------------------------------------------------- sandbox: IP, netns, volumes

    def setup(self, pod: dict[str, Any]) -> None:
        unsupported = [c for c in self.containers if c.kind not in ("triton", "foresail")]
        for c in unsupported:
            msg = f"image {c.spec['image']!r} cannot run on the local runtime (it runs Triton and Foresail images)"
            c.state = {"waiting": {"reason": "UnsupportedLocalImage", "message": msg}}
            self.rt.api.event(pod, "UnsupportedLocalImage", f"container {c.name}: {msg}", "Warning")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.mounts = self.rt.volumes.materialise(pod, self.dir / "volumes")
        if self.ip is None:
            self.ip = self.rt.allocate_ip(self.uid)
        net = self.rt.cluster.network
        _ip(["netns", "add", self.ns])
        _ip(["link", "add", self.host_if, "type", "veth", "peer", "name", "eth0", "netns", self.ns])
        _ip(["link", "set", self.host_if, "master", net.bridge, "up"])
        for args in (
            ["addr", "add", f"{self.ip}/{net.net.prefixlen}", "dev", "eth0"],
            ["link", "set", "eth0", "up"],
            ["link", "set", "lo", "up"],
            ["route", "add", "default", "via", net.bridge_ip],
        ):
            _ip(["-n", self.ns, *args])
        self.sandbox = True
        self.setup_done = True
        for c in self.containers:
            c.readiness = Probe(c.spec["readinessProbe"]) if c.spec.get("readinessProbe") else None
            c.liveness = Probe(c.spec["livenessProbe"]) if c.spec.get("livenessProbe") else None
            c.startup = Probe(c.spec["startupProbe"]) if c.spec.get("startupProbe") else None
        log(f"{self.name}: sandbox {self.ns} ip {self.ip}")

    def teardown_sandbox(self) -> None:
        # also when setup failed half way (the namespace exists, the flag was never set)
        if self.sandbox or Path(f"/run/netns/{self.ns}").exists():
            _ip(["netns", "del", self.ns], check=False)
            _ip(["link", "del", self.host_if], check=False)
        self.sandbox = False

    def teardown(self) -> None:
        self.teardown_sandbox()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.ip:
            self.rt.release_ip(self.uid)

    # ---------------------------------------------------------------- containers

    def tick(self, pod: dict[str, Any], c: Container) -> None:
        if c.kind not in ("triton", "foresail") or c.done:
            return
        now = time.monotonic()
        if c.proc is not None:
            rc = c.proc.poll()
            if rc is not None:
                # what the container left behind in its process group (Triton's python-backend stubs
                # hold its sockets) goes with it, as when a container's cgroup is torn down
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(c.proc.pid, signal.SIGKILL)
                self.on_exit(pod, c, rc)
            else:
                self.probe(pod, c, now)
        if c.proc is None and not c.done and now >= c.next_start:
            self.start_container(pod, c)

    def on_exit(self, pod: dict[str, Any], c: Container, rc: int, reason: str | None = None) -> None:
        term = {
            "exitCode": rc if rc >= 0 else 128 - rc,
            "reason": reason or ("Completed" if rc == 0 else "Error"),
            "startedAt": c.started_at,
            "finishedAt": now_iso(),
        }
        c.proc = None
        policy = pod["spec"].get("restartPolicy", "Always")
        restart = policy == "Always" or (policy == "OnFailure" and rc != 0)
        if restart:
            c.last_state = {"terminated": term}
            # back-off resets after 10 minutes of good running, as the kubelet does
            c.backoff = BACKOFF_INITIAL_S if time.monotonic() - c.started_mono > 600 else c.backoff
            c.next_start = time.monotonic() + c.backoff
            c.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {c.backoff:.0f}s restarting failed container={c.name}",
                }
            }
            c.backoff = min(c.backoff * 2, BACKOFF_MAX_S)
            c.restart_count += 1
            self.rt.api.event(
                pod, "BackOff", f"container {c.name} exited ({term['reason']}, code {term['exitCode']}); restarting", "Warning"
            )
        else:
            c.state = {"terminated": term}
            c.done = True
        log(f"{self.name}/{c.name}: exited rc={rc} restart={restart}")

    def command(self, pod: dict[str, Any], c: Container) -> tuple[list[str], dict[str, str]]:
        spec = c.spec
        argv = list(spec.get("command") or []) + list(spec.get("args") or [])
        env = self.env(pod, c)
        venv = REPO / ".venv"
        if c.kind == "triton":
            t = tools.TOOLS_BY_NAME["triton"].dir
            if not argv or not argv[0].startswith("-"):
                if argv and Path(argv[0]).name == "tritonserver":
                    argv = argv[1:]
                elif argv:
                    raise UnsupportedCommand(f"Triton image command {argv[0]!r}: only tritonserver runs locally")
            argv = [a for a in argv if not a.startswith("--backend-directory")]
            argv = [str(t / "bin/tritonserver"), f"--backend-directory={t / 'backends'}", *argv]
            env["LD_LIBRARY_PATH"] = f"{t}/lib:{t}/pytriton/nvidia_pytriton.libs"
            env["PYTHONPATH"] = ":".join(site.getsitepackages() if sys.prefix == str(venv) else _venv_site(venv))
        else:
            python = str(venv / "bin/python")
            if argv and Path(argv[0]).name == "foresail":
                argv = [python, "-m", "foresail", *argv[1:]]
            elif argv and Path(argv[0]).name.startswith("python"):
                argv = [python, *argv[1:]]
            else:
                argv = [python, "-m", "foresail", *argv]
        return argv, env

    def env(self, pod: dict[str, Any], c: Container) -> dict[str, str]:
        md = pod["metadata"]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "HOSTNAME": md["name"],
            "KUBERNETES_SERVICE_HOST": self.rt.cluster.network.bridge_ip,
            "KUBERNETES_SERVICE_PORT": str(self.rt.cluster.state.ports["apiserver"]) if self.rt.cluster.state else "443",
        }
        for e in c.spec.get("env") or []:
            if "value" in e:
                env[e["name"]] = str(e["value"])
            elif "valueFrom" in e:
                v = self.rt.volumes.env_from(pod, e["valueFrom"], self.ip or "")
                if v is not None:
                    env[e["name"]] = v
        return env

    def start_container(self, pod: dict[str, Any], c: Container) -> None:
        try:
            argv, env = self.command(pod, c)
        except UnsupportedCommand as e:
            c.state = {"waiting": {"reason": "UnsupportedLocalImage", "message": str(e)}}
            c.done = True
            self.rt.api.event(pod, "UnsupportedLocalImage", f"container {c.name}: {e}", "Warning")
            return
        mounts = []
        for vm in c.spec.get("volumeMounts") or []:
            src = self.mounts.get(vm["name"])
            if src is None:
                continue
            if vm.get("subPath"):
                src = src / vm["subPath"]
            mp = vm["mountPath"]
            mounts.append(f"mkdir -p {shlex.quote(mp)} && mount --bind {shlex.quote(str(src))} {shlex.quote(mp)}")
            if vm.get("readOnly"):
                mounts.append(f"mount -o remount,bind,ro {shlex.quote(mp)}")
        script = " && ".join([*mounts, 'exec "$@"'])
        cwd = c.spec.get("workingDir") or str(self.dir)
        logf = open(self.logdir / f"{c.name}.log", "ab")  # noqa: SIM115 - handed to the child
        logf.write(f"\n--- {now_iso()} starting {shlex.join(argv)}\n".encode())
        logf.flush()
        c.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "sh", "-c", script, "sh", *argv],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=cwd if Path(cwd).is_dir() else str(self.dir), start_new_session=True,
        )  # fmt: skip
        logf.close()
        c.started_at = now_iso()
        c.started_mono = time.monotonic()
        c.state = {"running": {"startedAt": c.started_at}}
        for p in (c.readiness, c.liveness, c.startup):
            if p:
                p.successes = p.failures = 0
                p.ok = False
                p.last = 0.0
        self.rt.api.event(pod, "Started", f"Started container {c.name} (pid {c.proc.pid})")
        log(f"{self.name}/{c.name}: started pid {c.proc.pid}: {shlex.join(argv)}")

    def probe(self, pod: dict[str, Any], c: Container, now: float) -> None:
        # until the startup probe succeeds, it is the only probe (as in the kubelet)
        probes: list[tuple[str, Probe | None]]
        if c.startup is not None and not c.startup.ok:
            probes = [("startup", c.startup)]
        else:
            probes = [("readiness", c.readiness), ("liveness", c.liveness)]
        for kind, p in probes:
            if p is None:
                continue
            s = p.spec
            if now - c.started_mono < float(s.get("initialDelaySeconds", 0)):
                continue
            if now - p.last < float(s.get("periodSeconds", 10)):
                continue
            p.last = now
            # probes dial the pod IP from the cluster network, like a kubelet on the pod network
            client_ns = self.rt.cluster.network.client_ns
            try:
                ok = netns.call_in(
                    client_ns, functools.partial(self.run_probe, c, s), timeout=float(s.get("timeoutSeconds", 1)) + 5
                )
            except TimeoutError:
                ok = False
            if ok:
                p.successes += 1
                p.failures = 0
                if p.successes >= int(s.get("successThreshold", 1)):
                    p.ok = True
            else:
                p.failures += 1
                p.successes = 0
                if p.failures >= int(s.get("failureThreshold", 3)):
                    if p.ok or kind != "readiness":
                        self.rt.api.event(pod, "Unhealthy", f"{kind.capitalize()} probe failed for container {c.name}", "Warning")
                    p.ok = False
                    if kind != "readiness" and c.proc is not None:
                        log(f"{self.name}/{c.name}: liveness failed {p.failures}x; killing")
                        self.kill(c, grace=float(pod["spec"].get("terminationGracePeriodSeconds", 30)))
                        self.on_exit(pod, c, 137, reason="Error")

    def run_probe(self, c: Container, s: dict[str, Any]) -> bool:
        timeout = float(s.get("timeoutSeconds", 1))
        if "httpGet" in s:
            g = s["httpGet"]
            port = _port(c.spec, g["port"])
            url = f"{g.get('scheme', 'HTTP').lower()}://{self.ip}:{port}{g.get('path', '/')}"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    return 200 <= int(r.status) < 400
            except (urllib.error.URLError, OSError, ValueError):
                return False
        if "tcpSocket" in s:
            try:
                with socket.create_connection((str(self.ip), _port(c.spec, s["tcpSocket"]["port"])), timeout=timeout):
                    return True
            except OSError:
                return False
        if "exec" in s:
            cmd = ["ip", "netns", "exec", self.ns, *s["exec"]["command"]]
            try:
                return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False).returncode == 0
            except subprocess.TimeoutExpired:
                return False
        return True

    def kill(self, c: Container, grace: float) -> None:
        proc = c.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=max(grace, 0.0))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # anything the container left in its process group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def kill_all(self, grace: float) -> None:
        threads = [threading.Thread(target=self.kill, args=(c, grace)) for c in self.containers if c.proc]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.sandbox:  # stray processes that joined the namespace
            pids = _ip(["netns", "pids", self.ns], check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)

    def delete(self, pod: dict[str, Any]) -> None:
        grace = pod["metadata"].get("deletionGracePeriodSeconds")
        grace = float(grace if grace is not None else pod["spec"].get("terminationGracePeriodSeconds", 30))
        self.kill_all(grace)
        for c in self.containers:
            if c.proc is not None or "running" in c.state:
                rc = c.proc.poll() if c.proc is not None else None
                code = 137 if rc is None else (128 - rc if rc < 0 else rc)  # killed by signal N: 128 + N
                reason = "Completed" if code == 0 else "Error"
                c.state = {"terminated": {"exitCode": code, "reason": reason, "finishedAt": now_iso()}}
                c.proc = None
            c.done = True
        self.teardown()
        # like the kubelet: a deleted pod reaches a terminal phase (with its containers' exit codes) before
        # it goes; controllers that hold a finalizer on it (Jobs) act on that phase
        with contextlib.suppress(Exception):
            self.sync_status(pod)
        md = pod["metadata"]
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}}
        with contextlib.suppress(urllib.error.HTTPError):
            self.rt.api.call("DELETE", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}", body)
        log(f"{self.name}: deleted after {grace:.0f}s grace")

    # ---------------------------------------------------------------- status

    def _cond(self, type_: str, status: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        s = "True" if status else "False"
        prev = self.transitions.get(type_)
        if prev is None or prev[0] != s:
            self.transitions[type_] = (s, now_iso())
        c = {"type": type_, "status": s, "lastTransitionTime": self.transitions[type_][1], "lastProbeTime": None}
        c["reason"] = reason
        c["message"] = message
        return c

    def sync_status(self, pod: dict[str, Any]) -> None:
        conds = {c["type"]: c for c in pod.get("status", {}).get("conditions", []) or []}
        gates = [g["conditionType"] for g in pod["spec"].get("readinessGates") or []]
        gates_false = [g for g in gates if conds.get(g, {}).get("status") != "True"]
        runnable = [c for c in self.containers]
        containers_ready = bool(runnable) and all(c.ready for c in runnable)
        not_ready = [c.name for c in runnable if not c.ready]
        if all(c.done for c in self.containers) and self.containers:
            ok = all(c.state.get("terminated", {}).get("exitCode", 1) == 0 for c in self.containers)
            phase = "Succeeded" if ok else "Failed"
        elif any("running" in c.state or c.restart_count for c in self.containers):
            phase = "Running"
        else:
            phase = "Pending"
        ready = containers_ready and not gates_false
        if not containers_ready:
            r_reason, r_msg = "ContainersNotReady", f"containers with unready status: [{' '.join(not_ready)}]"
        elif gates_false:
            r_reason, r_msg = (
                "ReadinessGatesNotReady",
                f"corresponding condition of pod readiness gate {gates_false[0]!r} does not exist or is not True",
            )
        else:
            r_reason, r_msg = "", ""
        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": self.rt.cluster.network.bridge_ip,
            "hostIPs": [{"ip": self.rt.cluster.network.bridge_ip}],
            "startTime": self.start_time,
            "conditions": [
                self._cond("PodReadyToStartContainers", self.sandbox or phase in ("Succeeded", "Failed")),
                self._cond("Initialized", True),
                self._cond("ContainersReady", containers_ready, "" if containers_ready else "ContainersNotReady"),
                self._cond("Ready", ready, r_reason, r_msg),
                self._cond("PodScheduled", True),
            ],
            "containerStatuses": [
                {
                    "name": c.name,
                    "image": c.spec["image"],
                    "imageID": "",
                    "containerID": f"local://{self.uid[:8]}-{c.name}-{c.restart_count}" if c.started_at else None,
                    "ready": c.ready,
                    "started": "running" in c.state,
                    "restartCount": c.restart_count,
                    "state": c.state,
                    "lastState": c.last_state,
                }
                for c in self.containers
            ],
        }
        if self.ip:
            status["podIP"] = self.ip
            status["podIPs"] = [{"ip": self.ip}]
        text = json.dumps(status, sort_keys=True)
        if text == self.last_status:
            return
        md = pod["metadata"]
        try:
            self.rt.api.patch_status(md["namespace"], md["name"], status)
            self.last_status = text
        except urllib.error.HTTPError as e:
            if e.code == 404:
                self.update(None)
            else:
                log(f"{self.name}: status patch failed: {e} {e.read()[:300]!r}")


class VolumeNotReady(Exception):
    pass


class UnsupportedCommand(Exception):
    pass


class Volumes:
    """Volume sources as local directories."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def materialise(self, pod: dict[str, Any], root: Path) -> dict[str, Path]:
        ns = pod["metadata"]["namespace"]
        out: dict[str, Path] = {}
        for v in pod["spec"].get("volumes") or []:
            d = root / v["name"]
            if "persistentVolumeClaim" in v:
                out[v["name"]] = self.claim_dir(ns, v["persistentVolumeClaim"]["claimName"])
                continue
            if "hostPath" in v:
                out[v["name"]] = Path(v["hostPath"]["path"])
                continue
            d.mkdir(parents=True, exist_ok=True)
            if "emptyDir" in v:
                pass
            elif "configMap" in v:
                self._keys(d, self._configmap(ns, v["configMap"]), v["configMap"])
            elif "secret" in v:
                src = v["secret"]
                self._keys(d, self._secret(ns, src.get("secretName", ""), src.get("optional", False)), src)
            elif "projected" in v:
                for s in v["projected"].get("sources", []):
                    if "serviceAccountToken" in s:
                        t = s["serviceAccountToken"]
                        (d / t.get("path", "token")).write_text(self.token(pod, t))
                    elif "configMap" in s:
                        self._keys(d, self._configmap(ns, s["configMap"]), s["configMap"])
                    elif "secret" in s:
                        self._keys(d, self._secret(ns, s["secret"]["name"], s["secret"].get("optional", False)), s["secret"])
                    elif "downwardAPI" in s:
                        for item in s["downwardAPI"].get("items", []):
                            (d / item["path"]).write_text(self.field(pod, item.get("fieldRef", {}).get("fieldPath", ""), ""))
            elif "downwardAPI" in v:
                for item in v["downwardAPI"].get("items", []):
                    (d / item["path"]).write_text(self.field(pod, item.get("fieldRef", {}).get("fieldPath", ""), ""))
            out[v["name"]] = d
        return out

    def _configmap(self, ns: str, src: dict[str, Any]) -> dict[str, bytes]:
        cm = self.rt.api.get(f"/api/v1/namespaces/{ns}/configmaps/{src.get('name', '')}")
        if cm is None:
            if src.get("optional"):
                return {}
            raise VolumeNotReady(f"configmap {src.get('name')!r} not found")
        data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
        return data

    def _secret(self, ns: str, name: str, optional: bool) -> dict[str, bytes]:
        sec = self.rt.api.get(f"/api/v1/namespaces/{ns}/secrets/{name}")
        if sec is None:
            if optional:
                return {}
            raise VolumeNotReady(f"secret {name!r} not found")
        return {k: base64.b64decode(v) for k, v in (sec.get("data") or {}).items()}

    @staticmethod
    def _keys(d: Path, data: dict[str, bytes], src: dict[str, Any]) -> None:
        items = src.get("items")
        pairs = [(i["key"], i["path"]) for i in items] if items else [(k, k) for k in data]
        for key, rel in pairs:
            if key not in data:
                raise VolumeNotReady(f"key {key!r} not found in {src.get('name')!r}")
            target = d / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data[key])

    def token(self, pod: dict[str, Any], src: dict[str, Any]) -> str:
        md = pod["metadata"]
        sa = pod["spec"].get("serviceAccountName", "default")
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [src["audience"]] if src.get("audience") else None,
                "expirationSeconds": int(src.get("expirationSeconds", 3607)),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": md["name"], "uid": md["uid"]},
            },
        }
        try:
            out = self.rt.api.call("POST", f"/api/v1/namespaces/{md['namespace']}/serviceaccounts/{sa}/token", body)
        except urllib.error.HTTPError as e:
            raise VolumeNotReady(f"token for service account {sa!r}: HTTP {e.code}") from e
        return str(out["status"]["token"])

    def claim_dir(self, ns: str, claim: str) -> Path:
        pvc = self.rt.api.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}")
        if pvc is None:
            raise VolumeNotReady(f"persistentvolumeclaim {claim!r} not found")
        if pvc.get("status", {}).get("phase") != "Bound":
            raise VolumeNotReady(f"persistentvolumeclaim {claim!r} is not bound")
        pv = self.rt.api.get(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
        path = (pv or {}).get("spec", {}).get("hostPath", {}).get("path")
        if not path:
            raise VolumeNotReady(f"volume of claim {claim!r} has no local path")
        Path(path).mkdir(parents=True, exist_ok=True)
        return Path(path)

    def field(self, pod: dict[str, Any], path: str, ip: str) -> str:
        md = pod["metadata"]
        simple = {
            "metadata.name": md["name"],
            "metadata.namespace": md["namespace"],
            "metadata.uid": md["uid"],
            "spec.nodeName": pod["spec"].get("nodeName", ""),
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
            "status.podIP": ip,
            "status.hostIP": self.rt.cluster.network.bridge_ip,
        }
        if path in simple:
            return str(simple[path])
        for prefix, src in (("metadata.labels", md.get("labels") or {}), ("metadata.annotations", md.get("annotations") or {})):
            if path == prefix:
                return "\n".join(f'{k}="{v}"' for k, v in sorted(src.items()))
            if path.startswith(prefix + "['"):
                return str(src.get(path[len(prefix) + 2 : -2], ""))
        return ""

    def env_from(self, pod: dict[str, Any], vf: dict[str, Any], ip: str) -> str | None:
        ns = pod["metadata"]["namespace"]
        if "fieldRef" in vf:
            return self.field(pod, vf["fieldRef"]["fieldPath"], ip)
        if "configMapKeyRef" in vf:
            r = vf["configMapKeyRef"]
            return self._configmap(ns, {"name": r["name"], "optional": r.get("optional")}).get(r["key"], b"").decode() or None
        if "secretKeyRef" in vf:
            r = vf["secretKeyRef"]
            return self._secret(ns, r["name"], bool(r.get("optional"))).get(r["key"], b"").decode() or None
        return None


class Runtime:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.api = Api(cluster)
        self.volumes = Volumes(self)
        self.workers: dict[str, PodWorker] = {}
        self.lock = threading.Lock()
        net = cluster.network
        self.pool = [str(ip) for ip in ipaddress.IPv4Network(net.runtime_pod_cidr).hosts()]
        self.ips: dict[str, str] = {}
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
        if not spec.get("nodeName") or spec["nodeName"] not in self.fake_nodes or is_kwok_pod(pod):
            return
        uid = md["uid"]
        with self.lock:
            w = self.workers.get(uid)
        if kind == "DELETED":
            if w:
                w.update(None)
            return
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") and w is None:
            if md.get("deletionTimestamp"):  # finished before we saw it: just let it go
                with contextlib.suppress(urllib.error.HTTPError):
                    self.api.call("DELETE", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}", {"gracePeriodSeconds": 0})
            return
        if w is None:
            w = PodWorker(self, pod)
            if w.ip:  # a pod from an earlier runtime instance keeps its IP
                with self.lock:
                    self.ips[uid] = w.ip
            _cleanup_stale_sandbox(w.ns, w.host_if)
            with self.lock:
                self.workers[uid] = w
            w.start()
        else:
            w.update(pod)

    def refresh_nodes(self) -> None:
        nodes = self.api.call("GET", "/api/v1/nodes")["items"]
        self.fake_nodes = {
            n["metadata"]["name"] for n in nodes if (n["metadata"].get("annotations") or {}).get("kwok.x-k8s.io/node") == "fake"
        }

    def watch_pods(self) -> None:
        while not self.stop.is_set():
            try:
                self.refresh_nodes()
                lst = self.api.call("GET", "/api/v1/pods")
                seen = set()
                for p in lst["items"]:
                    seen.add(p["metadata"]["uid"])
                    self.on_pod("ADDED", p)
                with self.lock:
                    gone = [w for uid, w in self.workers.items() if uid not in seen]
                for w in gone:
                    w.update(None)
                rv = lst["metadata"]["resourceVersion"]
                url = (
                    f"{self.cluster.api_url}/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=300"
                )
                with urllib.request.urlopen(urllib.request.Request(url), context=self.cluster._ssl(), timeout=330) as resp:
                    for line in resp:
                        if self.stop.is_set():
                            return
                        ev = json.loads(line)
                        if ev["type"] == "ERROR":
                            break
                        if ev["type"] == "BOOKMARK":
                            continue
                        self.on_pod(ev["type"], ev["object"])
            except Exception as e:
                if not self.stop.is_set():
                    log(f"pod watch: {e!r}; relisting")
                    time.sleep(1)

    # ---------------------------------------------------------------- storage

    def ensure_storage_class(self) -> None:
        sc = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Retain",
            "volumeBindingMode": "Immediate",
        }
        if self.api.get(f"/apis/storage.k8s.io/v1/storageclasses/{STORAGE_CLASS}") is None:
            self.api.call("POST", "/apis/storage.k8s.io/v1/storageclasses", sc)

    def provision_loop(self) -> None:
        """Give each pending claim of the ``local`` class a hostPath volume under the run directory."""
        while not self.stop.wait(1.0):
            try:
                for pvc in self.api.call("GET", "/api/v1/persistentvolumeclaims")["items"]:
                    md, spec = pvc["metadata"], pvc["spec"]
                    if spec.get("volumeName") or spec.get("storageClassName") != STORAGE_CLASS:
                        continue
                    name = f"pvc-{md['uid']}"
                    path = self.cluster.dir / "pvcs" / md["namespace"] / md["name"]
                    path.mkdir(parents=True, exist_ok=True)
                    pv = {
                        "apiVersion": "v1",
                        "kind": "PersistentVolume",
                        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
                        "spec": {
                            "capacity": {"storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")},
                            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                            "persistentVolumeReclaimPolicy": "Retain",
                            "storageClassName": STORAGE_CLASS,
                            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
                            "claimRef": {"namespace": md["namespace"], "name": md["name"], "uid": md["uid"]},
                        },
                    }
                    if self.api.get(f"/api/v1/persistentvolumes/{name}") is None:
                        self.api.call("POST", "/api/v1/persistentvolumes", pv)
                        log(f"provisioned {name} for {md['namespace']}/{md['name']} at {path}")
            except Exception as e:
                log(f"provisioner: {e!r}")

    # ---------------------------------------------------------------- main

    def run(self) -> None:
        self.ensure_storage_class()
        threading.Thread(target=self.provision_loop, name="provisioner", daemon=True).start()
        threading.Thread(target=self.watch_pods, name="pod-watch", daemon=True).start()
        log(f"local pod runtime up: pod IPs from {self.cluster.network.runtime_pod_cidr}")
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


def _venv_site(venv: Path) -> list[str]:
    return [str(p) for p in (venv / "lib").glob("python3*/site-packages")]


def _port(spec: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in spec.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"no container port named {port!r}")


def _ip(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _cleanup_stale_sandbox(ns: str, host_if: str) -> None:
    """A sandbox left by an earlier runtime instance (killed hard): kill its processes, remove it."""
    if not Path(f"/run/netns/{ns}").exists():
        return
    for pid in _ip(["netns", "pids", ns], check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip(["netns", "del", ns], check=False)
    _ip(["link", "del", host_if], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hack.runtime", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", required=True, help="cluster name")
    args = parser.parse_args(argv)
    cluster = Cluster(args.name)
    if cluster.state is None:
        raise SystemExit(f"runtime: cluster {args.name!r} has no state")
    rt = Runtime(cluster)

    def on_term(signum: int, _frame: object) -> None:
        rt.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    rt.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
