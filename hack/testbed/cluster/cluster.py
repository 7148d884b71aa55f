"""One local cluster: ``up()`` starts it and records what it started, ``down()`` stops exactly that."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foresail.api.objects import is_condition_true
from hack import tools
from hack.base import netns
from hack.base.kube import Kube
from hack.base.log import logger
from hack.base.paths import REPO
from hack.base.proc import free_port, http_ok, pid_alive, stop_pid
from hack.base.wait import wait_for
from hack.images.build import BuiltImage
from hack.images.build import ensure as build_images
from hack.testbed.cluster import components, prometheus, registry, s3
from hack.testbed.cluster.network import choose_network, create_network, destroy_network, sweep_pod_sandboxes
from hack.testbed.cluster.nodes import DEFAULT_GPU_PRODUCT, node_manifests
from hack.testbed.cluster.pki import make_pki, make_secured_prometheus_pki, write_kubeconfigs
from hack.testbed.runtime.provisioner import STORAGE_CLASS
from hack.testbed.runtime.runtime import sweep_containers
from hack.testbed.state import Network, RunDir, State, runtime_mode

__all__ = ["Cluster", "SecuredPrometheus"]

log = logger("cluster")
PORTS = ("etcd", "etcd_peer", "apiserver", "kcm", "scheduler", "kwok")


@dataclass(frozen=True)
class SecuredPrometheus:
    """A second Prometheus of the cluster (same scrape config) requiring TLS, a client certificate and basic
    auth: the files a client needs, as a chart's Secrets would hold them."""

    url: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    username_file: Path
    password_file: Path


class Cluster:
    def __init__(
        self, name: str = "foresail", nodes: int = 4, gpus_per_node: int = 8, gpu_products: list[str] | None = None
    ) -> None:
        self.name = name
        self.run = RunDir(name)
        self.nodes = nodes
        self.gpus_per_node = gpus_per_node
        self.gpu_products = gpu_products or [DEFAULT_GPU_PRODUCT]
        self.state: State | None = self.run.load()
        self._kube: Kube | None = None

    # ------------------------------------------------------------ what clients need

    @property
    def dir(self) -> Path:
        return self.run.path

    @property
    def kubeconfig(self) -> Path:
        return self.run.kubeconfig

    @property
    def network(self) -> Network:
        assert self.state is not None, f"cluster {self.name!r} is not up"
        return self.state.network

    @property
    def kube(self) -> Kube:
        """The admin client (REST and kubectl)."""
        assert self.state is not None, f"cluster {self.name!r} is not up"
        if self._kube is None:
            self._kube = self.run.kube(self.state)
        return self._kube

    def exec_cmd(self, cmd: list[str]) -> list[str]:
        """``cmd`` run inside the client network namespace with this cluster's KUBECONFIG."""
        return ["ip", "netns", "exec", self.network.client_ns, "env", f"KUBECONFIG={self.kubeconfig}", *cmd]

    # ------------------------------------------------------------ lifecycle

    def up(self) -> float:
        """Start the cluster; return seconds from start to all nodes Ready."""
        if self.state is not None and self.alive():
            log(f"cluster {self.name!r} already up ({self.dir})")
            return 0.0
        if self.state is not None:
            log(f"cluster {self.name!r} has stale state; cleaning up first")
            self.down()
        if os.geteuid() != 0:
            raise SystemExit("hack/cluster: needs root (network namespaces and a bridge)")
        bins = {n: tools.TOOLS_BY_NAME[n].ensure() / "bin" for n in ("etcd", "kubernetes", "kwok", "kubectl", "prometheus")}
        mode = runtime_mode()
        if mode == "processes":
            tools.TOOLS_BY_NAME["triton"].ensure()
        built = list(build_images().values()) if mode == "images" else []
        t0 = time.monotonic()
        shutil.rmtree(self.dir, ignore_errors=True)
        for d in (self.dir, self.run.pki, self.run.logs, self.run.data):
            d.mkdir(parents=True, exist_ok=True)
        net = choose_network(self.name)
        ports = {k: free_port() for k in PORTS}
        self.state = State(
            self.name, self.nodes, self.gpus_per_node, self.gpu_products, net, ports, started_at=time.time(), runtime=mode
        )
        self._kube = None
        self.run.save(self.state)
        try:
            self._start(bins, net, ports, built)
        except BaseException:
            log(f"start failed; logs in {self.run.logs}")
            self.down(keep_logs=True)
            raise
        self.state.ready_seconds = round(time.monotonic() - t0, 1)
        self.run.save(self.state)
        log(f"cluster {self.name!r} ready in {self.state.ready_seconds}s: {self.nodes} nodes x {self.gpus_per_node} GPUs")
        return self.state.ready_seconds

    def _start(self, bins: dict[str, Path], net: Network, ports: dict[str, int], built: list[BuiltImage]) -> None:
        run, kube = self.run, self.kube
        log(f"network: bridge {net.bridge} {net.bridge_ip}/16, pods {net.pod_cidr}, client netns {net.client_ns}")
        create_network(net)
        make_pki(run.pki, self.name, net.bridge_ip)
        write_kubeconfigs(run, kube.creds.server)
        pushing = self._start_registry(net, built) if built else None
        self._spawn("etcd", components.etcd(bins["etcd"], run, ports))
        self._wait("etcd health", lambda: http_ok(f"{components.etcd_url(ports)}/health"), comp="etcd")
        self._spawn("kube-apiserver", components.apiserver(bins["kubernetes"], run, net, ports))
        self._wait("kube-apiserver /readyz", lambda: kube.api("GET", "/readyz", raw=True) == "ok", 90, "kube-apiserver")
        self._spawn("kube-controller-manager", components.controller_manager(bins["kubernetes"], run, ports))
        self._spawn("kube-scheduler", components.scheduler(bins["kubernetes"], run, ports))
        self._spawn("kwok", components.kwok(bins["kwok"], run, net, ports))
        for node in node_manifests(self.nodes, self.gpus_per_node, self.gpu_products):
            kube.api("POST", "/api/v1/nodes", node)
        log(f"created {self.nodes} fake GPU nodes ({self.gpus_per_node} x nvidia.com/gpu each)")
        self.wait_nodes_ready()
        if pushing is not None:
            pushing.join()
            if not self.state or len(self.state.images) != len(built):
                raise RuntimeError(f"pushing the images to the cluster's registry failed; see {run.logs}/registry.log")
        self._spawn("runtime", [sys.executable, "-m", "hack.testbed.runtime", "--name", self.name], cwd=REPO)
        self._wait(
            "the local runtime's StorageClass",
            lambda: kube.api_get(f"/apis/storage.k8s.io/v1/storageclasses/{STORAGE_CLASS}"),
            comp="runtime",
        )
        for path, obj in [*prometheus.rbac(), *prometheus.operated_service(net.client_ip)]:
            kube.api("POST", path, obj)
        cfg = run.path / "prometheus.yml"
        cfg.write_text(json.dumps(prometheus.scrape_config(run, kube.creds.server), indent=1))  # JSON is YAML
        self._start_prometheus(bins["prometheus"])
        self.wait_default_service_account("default")

    def _start_prometheus(self, bin_dir: Path) -> None:
        run, net = self.run, self.network
        self._spawn("prometheus", components.prometheus(bin_dir, run, net, run.path / "prometheus.yml"))
        self._wait(
            "Prometheus ready",
            lambda: netns.call_in(net.client_ns, lambda: http_ok(f"{net.prometheus_url}/-/ready"), timeout=5),
            comp="prometheus",
        )

    def stop_prometheus(self) -> None:
        """Stop the cluster's Prometheus (a fault: its clients see connections refused); its data stays for
        ``start_prometheus()``. ``alive()`` does not count a stopped Prometheus."""
        assert self.state is not None, f"cluster {self.name!r} is not up"
        pid = self.state.pids.pop("prometheus", None)
        self.run.save(self.state)
        if pid is not None and pid_alive(pid):
            if stop_pid(pid, 10.0):
                log(f"prometheus (pid {pid}) ignored SIGTERM for 10s; killed")
            log(f"stopped prometheus (pid {pid})")

    def restart_apiserver(self, down_s: float = 0.0) -> float:
        """Stop kube-apiserver (SIGTERM, then SIGKILL after 10 s), leave it down ``down_s`` seconds, start it again
        with the same flags and wait for /readyz; return the seconds it did not answer. Its clients see their
        connections (watches included) end and new ones refused meanwhile."""
        assert self.state is not None, f"cluster {self.name!r} is not up"
        t0 = time.monotonic()
        pid = self.state.pids.get("kube-apiserver")
        if pid is not None and pid_alive(pid):
            stop_pid(pid, 10.0)
            log(f"stopped kube-apiserver (pid {pid})")
        time.sleep(down_s)
        bins = tools.TOOLS_BY_NAME["kubernetes"].ensure() / "bin"
        self._spawn("kube-apiserver", components.apiserver(bins, self.run, self.network, self.state.ports))
        self._wait("kube-apiserver /readyz", lambda: self.kube.api("GET", "/readyz", raw=True) == "ok", 90, "kube-apiserver")
        return round(time.monotonic() - t0, 1)

    def black_hole_apiserver(self, pod: dict[str, Any], on: bool = True) -> None:
        """Drop (``on``) or pass again the TCP between a pod's network namespace and kube-apiserver (a dead link:
        the pod's requests and watches hang, nothing is refused)."""
        assert self.state is not None, f"cluster {self.name!r} is not up"
        ns = f"fsp-{pod['metadata']['uid'][:8]}"  # the local runtime's sandbox of the pod
        netns.black_hole(ns, self.network.bridge_ip, self.state.ports["apiserver"], on)
        log(f"{'black-holed' if on else 'restored'} {pod['metadata']['name']} <-> kube-apiserver")

    def start_prometheus(self) -> None:
        """Start the cluster's Prometheus again (same configuration, address and data) after ``stop_prometheus()``;
        a no-op when it runs."""
        assert self.state is not None, f"cluster {self.name!r} is not up"
        pid = self.state.pids.get("prometheus")
        if pid is not None and pid_alive(pid):
            return
        self._start_prometheus(tools.TOOLS_BY_NAME["prometheus"].ensure() / "bin")

    def start_secured_prometheus(self) -> SecuredPrometheus:
        """Start (once) a Prometheus with ``--web.config.file`` on the client address's port 9443; ``down()`` stops it."""
        assert self.state is not None, f"cluster {self.name!r} is not up"
        run, net = self.run, self.network
        url = f"https://{net.client_ip}:{prometheus.SECURED_PORT}"
        creds = SecuredPrometheus(
            url,
            run.pki / "ca.crt",
            run.pki / "prometheus-client.crt",
            run.pki / "prometheus-client.key",
            run.pki / "prometheus-secured.username",
            run.pki / "prometheus-secured.password",
        )
        if "prometheus-secured" in self.state.pids and pid_alive(self.state.pids["prometheus-secured"]):
            return creds
        make_secured_prometheus_pki(run.pki, net.client_ip)
        password = secrets.token_urlsafe(24)
        creds.username_file.write_text(prometheus.SECURED_USER + "\n")
        creds.password_file.write_text(password + "\n")
        web = run.path / "prometheus-web.yml"
        web.write_text(json.dumps(prometheus.web_config(run, _bcrypt(password)), indent=1))
        bin_dir = tools.TOOLS_BY_NAME["prometheus"].ensure() / "bin"
        cmd = components.prometheus(bin_dir, run, net, run.path / "prometheus.yml", prometheus.SECURED_PORT, web, "prometheus-secured")
        self._spawn("prometheus-secured", cmd)

        def listening() -> bool:
            ctx = ssl.create_default_context(cafile=str(creds.ca_file))
            ctx.load_cert_chain(str(creds.cert_file), str(creds.key_file))
            req = urllib.request.Request(f"{url}/-/ready")
            try:
                urllib.request.urlopen(req, context=ctx, timeout=2)
            except urllib.error.HTTPError as e:
                return e.code == 401  # up, and asking for the basic auth it requires
            return False

        self._wait("the secured Prometheus", lambda: netns.call_in(net.client_ns, listening, timeout=5), comp="prometheus-secured")
        return creds

    def start_s3(self) -> s3.S3Server:
        """Start (once) the cluster's S3-compatible object store (SeaweedFS, built from its Go module) in the
        client namespace; ``down()`` stops it with the rest. Its endpoint is reachable from pods and, through
        ``netns.call_in(network.client_ns, ...)``, from tests."""
        assert self.state is not None, f"cluster {self.name!r} is not up"
        run, net = self.run, self.network
        keys = run.path / "s3-keys.json"
        if not keys.is_file():
            keys.write_text(json.dumps({"access": "AKID" + secrets.token_hex(8).upper(), "secret": secrets.token_urlsafe(24)}))
        k = json.loads(keys.read_text())
        server = s3.S3Server(f"http://{net.client_ip}:{s3.S3_PORT}", f"http://{net.client_ip}:{s3.FILER_PORT}", k["access"], k["secret"])
        if "seaweedfs" in self.state.pids and pid_alive(self.state.pids["seaweedfs"]):
            return server
        config = run.path / "s3.json"
        s3.write_config(config, server.access_key, server.secret_key)
        t0 = time.monotonic()
        bin_dir = tools.TOOLS_BY_NAME["seaweedfs"].ensure() / "bin"
        self._spawn("seaweedfs", s3.seaweedfs_command(bin_dir, run, net, config))

        def answering() -> bool:  # the S3 gateway answers (an anonymous request is refused: it is up)
            try:
                urllib.request.urlopen(f"{server.endpoint}/", timeout=2)
            except urllib.error.HTTPError as e:
                return e.code == 403
            except OSError:
                return False
            return True

        self._wait("SeaweedFS's S3 gateway", lambda: netns.call_in(net.client_ns, answering, timeout=5), timeout=120, comp="seaweedfs")
        log(f"SeaweedFS S3 at {server.endpoint} in {time.monotonic() - t0:.1f}s")
        return server

    def _start_registry(self, net: Network, built: list[BuiltImage]) -> threading.Thread:
        """Start the registry and, on a thread, push the images and write the mirror configuration."""
        self._spawn("registry", registry.registry_command(self.run, net))

        def push() -> None:
            try:
                self._wait("the registry", lambda: http_ok(f"http://{net.registry}/v2/"), comp="registry")
                t0 = time.monotonic()
                pushed = registry.push_all(built, net)
                registry.write_mirrors(self.run, net, [img.repository.split("/", 1)[0] for img in built])
                assert self.state is not None
                self.state.images = pushed
                log(f"pushed {len(pushed)} images to {net.registry} in {time.monotonic() - t0:.1f}s")
            except Exception as e:
                with open(self.run.logs / "registry.log", "a") as f:
                    f.write(f"push failed: {e}\n")
                log(f"pushing images failed: {e}")

        t = threading.Thread(target=push, name="push-images", daemon=True)
        t.start()
        return t

    def alive(self) -> bool:
        return self.state is not None and bool(self.state.pids) and all(pid_alive(p) for p in self.state.pids.values())

    def down(self, keep_logs: bool = False) -> None:
        state = self.state or self.run.load()
        if state is None:
            log(f"cluster {self.name!r} is not up")
            return
        for comp, pid in reversed(list(state.pids.items())):
            if pid_alive(pid):
                # SeaweedFS waits out SIGTERM for 10 s and holds nothing worth a clean stop (throwaway test data)
                grace = 30.0 if comp == "runtime" else 1.0 if comp == "seaweedfs" else 10.0
                if stop_pid(pid, grace):
                    log(f"{comp} (pid {pid}) ignored SIGTERM for {grace:g}s; killed")
                log(f"stopped {comp} (pid {pid})")
        for what in sweep_containers(self.run):
            log(f"removed leftover {what}")
        for ns in sweep_pod_sandboxes(self.run):
            log(f"removed leftover pod sandbox {ns}")
        destroy_network(state.network)
        if keep_logs:
            shutil.rmtree(self.run.data, ignore_errors=True)
            self.run.state_file.unlink(missing_ok=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.state = None
        self._kube = None
        log(f"cluster {state.name!r} down")

    # ------------------------------------------------------------ processes and waits

    def _spawn(self, comp: str, cmd: list[str], cwd: Path | None = None) -> int:
        assert self.state is not None
        with open(self.run.logs / f"{comp}.log", "ab") as logf:
            proc = subprocess.Popen(
                cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=cwd
            )
        self.state.pids[comp] = proc.pid
        self.run.save(self.state)
        log(f"started {comp} (pid {proc.pid})")
        return proc.pid

    def _wait(self, what: str, check: Callable[[], Any], timeout: float = 60.0, comp: str | None = None) -> None:
        """Wait for ``check``; give up at once, with the end of its log, when component ``comp`` exits."""

        def died() -> str | None:
            if comp is None or self.state is None or pid_alive(self.state.pids[comp]):
                return None
            return f"{comp} exited:\n" + (self.run.logs / f"{comp}.log").read_text(errors="replace")[-3000:]

        wait_for(what, check, timeout=timeout, interval=0.2, abort=died)

    def wait_nodes_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            items = self.kube.api("GET", "/api/v1/nodes")["items"]
            return sum(1 for n in items if is_condition_true(n, "Ready")) == self.nodes

        self._wait("all nodes Ready", ready, timeout=timeout, comp="kwok")

    def wait_default_service_account(self, namespace: str, timeout: float = 60.0) -> None:
        """Pods of a new namespace can be created once the controller manager made its default ServiceAccount."""
        self._wait(
            f"service account {namespace}/default",
            lambda: self.kube.api_get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default"),
            timeout=timeout,
            comp="kube-controller-manager",
        )

    def status(self) -> dict[str, Any]:
        if self.state is None:
            return {"name": self.name, "up": False}
        comps = {c: ("running" if pid_alive(p) else "DEAD") + f" (pid {p})" for c, p in self.state.pids.items()}
        out: dict[str, Any] = {
            "name": self.name,
            "up": self.alive(),
            "api": self.state.api_url,
            "kubeconfig": str(self.kubeconfig),
            "components": comps,
        }
        with contextlib.suppress(Exception):
            out["nodes"] = self.kube.kubectl("get", "nodes", "-o", "wide").stdout
        return out


def _bcrypt(password: str) -> str:
    """A bcrypt hash for Prometheus' basic_auth_users (libcrypt through the standard library)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return str(crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10)))
