"""A real local Kubernetes control plane, from pinned binaries, with fake GPU nodes.

    hack/cluster up [--name N] [--nodes 4] [--gpus-per-node 8] [--gpu-product P[,P...]]
    hack/cluster down | status
    hack/cluster kubectl ARGS...      the pinned kubectl against this cluster
    hack/cluster exec -- CMD...       CMD inside the cluster network, with KUBECONFIG set

Processes: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake nodes with
``nvidia.com/gpu`` capacity). Networking: a Linux bridge holding the first address of a private /16;
the apiserver listens on that bridge address (reachable from the host and from every network
namespace on the bridge); pod IPs come from the same /16, and a "client" network namespace on the
bridge is where everything that dials pod IPs runs (``exec``). Nothing listens on any other address
except loopback (etcd, component health ports).

State lives in a run directory (``.run/<name>/`` in the repository unless ``FORESAIL_RUN_DIR`` says
otherwise): PKI, kubeconfig, logs, the etcd data dir and ``state.json`` with the PIDs this module
started. ``down`` stops exactly those PIDs, removes the network it created and the data dir.

The same module is the e2e pytest fixture (``Cluster``). Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `hack` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from foresail.api.objects import is_condition_true
from hack import tools

REPO = Path(__file__).resolve().parent.parent
HACK = REPO / "hack"
STAGES = HACK / "kwok" / "stages.yaml"
SERVICE_CIDR = "10.96.0.0/16"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
DEFAULT_GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"


# Prometheus relabelling for Triton pods: keep the container port named "metrics" (8002) of running
# pods and add namespace, pod and foresail_dev_inferenceservice (from the pod label
# foresail.dev/inferenceservice). The Helm chart documents the same rules for production.
TRITON_RELABEL: list[dict[str, Any]] = [
    {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "action": "keep", "regex": "metrics"},
    {"source_labels": ["__meta_kubernetes_pod_phase"], "action": "keep", "regex": "Running"},
    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    {
        "source_labels": ["__meta_kubernetes_pod_label_foresail_dev_inferenceservice"],
        "target_label": "foresail_dev_inferenceservice",
    },
]


def log(msg: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_dir_for(name: str) -> Path:
    root = Path(os.environ.get("FORESAIL_RUN_DIR", REPO / ".run"))
    return root / name


def _sh(cmd: list[str], check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, text=True, capture_output=True, check=False, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return proc


@dataclass
class Network:
    """A bridge plus the client namespace, on a private /16 chosen free at start."""

    bridge: str
    subnet: str
    client_ns: str

    @property
    def net(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def bridge_ip(self) -> str:
        return str(self.net.network_address + 1)

    @property
    def client_ip(self) -> str:
        return str(self.net.network_address + 2)

    @property
    def pod_cidr(self) -> str:
        """What kwok allocates (simulated) pod IPs from: x.y.16.1/20 (x.y.16.1 - x.y.31.254)."""
        return f"{self.net.network_address + 16 * 256 + 1}/20"

    @property
    def runtime_pod_cidr(self) -> str:
        """What the local pod runtime allocates pod IPs from: x.y.32.0/20, disjoint from kwok's."""
        return f"{self.net.network_address + 32 * 256}/20"

    @property
    def prometheus_url(self) -> str:
        """Prometheus listens in the client namespace (it scrapes pod IPs)."""
        return f"http://{self.client_ip}:9090"

    @staticmethod
    def choose(name: str) -> Network:
        used = _sh(["ip", "-o", "-4", "addr", "show"]).stdout
        h = zlib.crc32(name.encode()) & 0xFFFF
        for i in range(50):
            octet = 200 + (h + i) % 50
            subnet = f"10.{octet}.0.0/16"
            if f" 10.{octet}." not in used:
                return Network(bridge=f"fsbr{h:04x}{i:02d}"[:15], subnet=subnet, client_ns=f"fs-{name}-client")
        raise RuntimeError("no free 10.2xx.0.0/16 subnet for the cluster bridge")

    def create(self) -> None:
        _sh(["ip", "link", "add", self.bridge, "type", "bridge"])
        _sh(["ip", "addr", "add", f"{self.bridge_ip}/16", "dev", self.bridge])
        _sh(["ip", "link", "set", self.bridge, "up"])
        self.attach(self.client_ns, self.client_ip, f"{self.bridge}c")

    def attach(self, ns: str, ip: str, host_if: str) -> None:
        """Create namespace ``ns`` with eth0=ip on the bridge (host side of the veth: ``host_if``)."""
        _sh(["ip", "netns", "add", ns])
        _sh(["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns])
        _sh(["ip", "link", "set", host_if, "master", self.bridge, "up"])
        _sh(["ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/16", "dev", "eth0"])
        _sh(["ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up"])
        _sh(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
        _sh(["ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", self.bridge_ip])

    def destroy(self) -> None:
        _sh(["ip", "netns", "del", self.client_ns], check=False)
        _sh(["ip", "link", "del", f"{self.bridge}c"], check=False)
        _sh(["ip", "link", "del", self.bridge], check=False)


@dataclass
class State:
    name: str
    nodes: int
    gpus_per_node: int
    gpu_products: list[str]
    network: dict[str, str]
    ports: dict[str, int]
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0
    ready_seconds: float = 0.0


class Cluster:
    """One local cluster. ``up()`` starts it, ``down()`` stops exactly what ``up()`` started."""

    def __init__(
        self,
        name: str = "foresail",
        nodes: int = 4,
        gpus_per_node: int = 8,
        gpu_products: list[str] | None = None,
    ) -> None:
        self.name = name
        self.dir = run_dir_for(name)
        self.nodes = nodes
        self.gpus_per_node = gpus_per_node
        self.gpu_products = gpu_products or [DEFAULT_GPU_PRODUCT]
        self.state: State | None = self._load()

    # ------------------------------------------------------------ paths and state

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.dir / "pki"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def network(self) -> Network:
        assert self.state is not None, "cluster is not up"
        return Network(**self.state.network)

    @property
    def api_url(self) -> str:
        assert self.state is not None, "cluster is not up"
        return f"https://{self.network.bridge_ip}:{self.state.ports['apiserver']}"

    def _load(self) -> State | None:
        f = self.dir / "state.json"
        if not f.is_file():
            return None
        return State(**json.loads(f.read_text()))

    def _save(self) -> None:
        assert self.state is not None
        (self.dir / "state.json").write_text(json.dumps(asdict(self.state), indent=2))

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
        tools_dirs = {n: tools.TOOLS_BY_NAME[n].ensure() for n in ("etcd", "kubernetes", "kwok", "kubectl")}
        t0 = time.monotonic()
        shutil.rmtree(self.dir, ignore_errors=True)
        for d in (self.dir, self.pki, self.logs, self.dir / "data"):
            d.mkdir(parents=True, exist_ok=True)
        net = Network.choose(self.name)
        ports = {k: free_port() for k in ("etcd", "etcd_peer", "apiserver", "kcm", "scheduler", "kwok")}
        tools_dirs["prometheus"] = tools.TOOLS_BY_NAME["prometheus"].ensure()
        tools.TOOLS_BY_NAME["triton"].ensure()
        self.state = State(
            name=self.name,
            nodes=self.nodes,
            gpus_per_node=self.gpus_per_node,
            gpu_products=self.gpu_products,
            network=asdict(net),
            ports=ports,
            started_at=time.time(),
        )
        self._save()
        try:
            log(f"network: bridge {net.bridge} {net.bridge_ip}/16, pods {net.pod_cidr}, client netns {net.client_ns}")
            net.create()
            self._pki(net)
            self._kubeconfigs(net, ports["apiserver"])
            self._start_etcd(tools_dirs["etcd"], ports)
            self._start_apiserver(tools_dirs["kubernetes"], net, ports)
            self._start_controller_manager(tools_dirs["kubernetes"], ports)
            self._start_scheduler(tools_dirs["kubernetes"], ports)
            self._start_kwok(tools_dirs["kwok"], net, ports)
            self._create_nodes()
            self.wait_nodes_ready()
            self._start_runtime()
            self._start_prometheus(tools_dirs["prometheus"], net)
            self.wait_default_service_account("default")
        except BaseException:
            log(f"start failed; logs in {self.logs}")
            self.down(keep_logs=True)
            raise
        self.state.ready_seconds = round(time.monotonic() - t0, 1)
        self._save()
        gpus = f"{self.nodes} nodes x {self.gpus_per_node} GPUs"
        log(f"cluster {self.name!r} ready in {self.state.ready_seconds}s: {gpus}")
        return self.state.ready_seconds

    def alive(self) -> bool:
        return self.state is not None and bool(self.state.pids) and all(_pid_alive(p) for p in self.state.pids.values())

    def down(self, keep_logs: bool = False) -> None:
        state = self.state or self._load()
        if state is None:
            log(f"cluster {self.name!r} is not up")
            return
        for comp, pid in reversed(list(state.pids.items())):
            _stop_pid(pid, comp, grace=30.0 if comp == "runtime" else 10.0)
        self._sweep_pod_sandboxes()
        Network(**state.network).destroy()
        if keep_logs:
            shutil.rmtree(self.dir / "data", ignore_errors=True)
            (self.dir / "state.json").unlink(missing_ok=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.state = None
        log(f"cluster {state.name!r} down")

    def _sweep_pod_sandboxes(self) -> None:
        """Pod network namespaces the runtime could not remove (it was killed): their processes, then them."""
        for pod_dir in (self.dir / "pods").glob("*"):
            ns, host_if = f"fsp-{pod_dir.name[:8]}", f"fsv{pod_dir.name[:8]}"
            if Path(f"/run/netns/{ns}").exists():
                for pid in _sh(["ip", "netns", "pids", ns], check=False).stdout.split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
                _sh(["ip", "netns", "del", ns], check=False)
                log(f"removed leftover pod sandbox {ns}")
            _sh(["ip", "link", "del", host_if], check=False)

    # ------------------------------------------------------------ PKI and kubeconfigs

    def _pki(self, net: Network) -> None:
        p = self.pki
        ossl = ["openssl"]
        _sh([*ossl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(p / "ca.key")])
        _sh([*ossl, "req", "-x509", "-new", "-key", str(p / "ca.key"), "-sha256", "-days", "3650",
             "-subj", f"/CN=foresail-local-ca-{self.name}", "-out", str(p / "ca.crt")])  # fmt: skip
        sans = ",".join(
            [
                f"IP:{net.bridge_ip}",
                "IP:127.0.0.1",
                f"IP:{ipaddress.IPv4Network(SERVICE_CIDR).network_address + 1}",
                "DNS:localhost",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
            ]
        )
        self._leaf("apiserver", "/CN=kube-apiserver", f"subjectAltName={sans}\nextendedKeyUsage=serverAuth")
        for name, subj in (
            ("admin", "/O=system:masters/CN=foresail-admin"),
            ("controller-manager", "/CN=system:kube-controller-manager"),
            ("scheduler", "/CN=system:kube-scheduler"),
            ("kwok", "/O=system:masters/CN=kwok"),
            ("prometheus", "/CN=foresail-prometheus"),
        ):
            self._leaf(name, subj, "extendedKeyUsage=clientAuth")
        _sh([*ossl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(p / "sa.key")])
        _sh([*ossl, "ec", "-in", str(p / "sa.key"), "-pubout", "-out", str(p / "sa.pub")])

    def _leaf(self, name: str, subj: str, ext: str) -> None:
        p = self.pki
        (p / f"{name}.ext").write_text(ext + "\n")
        _sh(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(p / f"{name}.key")])
        _sh(["openssl", "req", "-new", "-key", str(p / f"{name}.key"), "-subj", subj, "-out", str(p / f"{name}.csr")])
        _sh(["openssl", "x509", "-req", "-in", str(p / f"{name}.csr"), "-CA", str(p / "ca.crt"),
             "-CAkey", str(p / "ca.key"), "-CAcreateserial", "-days", "3650", "-sha256",
             "-extfile", str(p / f"{name}.ext"), "-out", str(p / f"{name}.crt")])  # fmt: skip

    def _kubeconfigs(self, net: Network, port: int) -> None:
        import base64

        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        server = f"https://{net.bridge_ip}:{port}"
        for user in ("admin", "controller-manager", "scheduler", "kwok"):
            cfg = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": self.name,
                        "cluster": {"server": server, "certificate-authority-data": b64(self.pki / "ca.crt")},
                    }
                ],
                "users": [
                    {
                        "name": user,
                        "user": {
                            "client-certificate-data": b64(self.pki / f"{user}.crt"),
                            "client-key-data": b64(self.pki / f"{user}.key"),
                        },
                    }
                ],
                "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": user}}],
                "current-context": self.name,
            }
            target = self.kubeconfig if user == "admin" else self.dir / f"{user}.kubeconfig"
            target.write_text(json.dumps(cfg, indent=1))
            target.chmod(0o600)

    # ------------------------------------------------------------ components

    def _spawn(self, comp: str, cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
        assert self.state is not None
        logf = open(self.logs / f"{comp}.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, **(env or {})}, cwd=cwd,
        )  # fmt: skip
        logf.close()
        self.state.pids[comp] = proc.pid
        self._save()
        log(f"started {comp} (pid {proc.pid})")
        return proc.pid

    def _wait(self, what: str, check: Any, timeout: float = 60.0, comp: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if comp and self.state and not _pid_alive(self.state.pids[comp]):
                tail = (self.logs / f"{comp}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{comp} exited while waiting for {what}:\n{tail}")
            try:
                if check():
                    return
            except Exception as e:
                last = e
            time.sleep(0.2)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last})")

    def _start_etcd(self, d: Path, ports: dict[str, int]) -> None:
        client = f"http://127.0.0.1:{ports['etcd']}"
        peer = f"http://127.0.0.1:{ports['etcd_peer']}"
        self._spawn("etcd", [
            str(d / "bin/etcd"), "--name", "foresail", "--data-dir", str(self.dir / "data/etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"foresail={peer}", "--unsafe-no-fsync", "--log-level", "warn",
            "--listen-metrics-urls", "", "--quota-backend-bytes", str(4 << 30),
        ])  # fmt: skip
        self._wait("etcd health", lambda: _http_ok(f"{client}/health"), comp="etcd")

    def _start_apiserver(self, d: Path, net: Network, ports: dict[str, int]) -> None:
        p = self.pki
        self._spawn("kube-apiserver", [
            str(d / "bin/kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            f"--bind-address={net.bridge_ip}", f"--advertise-address={net.bridge_ip}",
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={p / 'apiserver.crt'}", f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p / 'sa.pub'}", f"--service-account-signing-key-file={p / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC", "--allow-privileged=true", "--profiling=false",
            "--endpoint-reconciler-type=lease", "--event-ttl=2h", "--v=1",
        ])  # fmt: skip
        self._wait(
            "kube-apiserver /readyz",
            lambda: self.api("GET", "/readyz", raw=True) == "ok",
            timeout=90,
            comp="kube-apiserver",
        )

    def _start_controller_manager(self, d: Path, ports: dict[str, int]) -> None:
        p = self.pki
        kc = str(self.dir / "controller-manager.kubeconfig")
        self._spawn("kube-controller-manager", [
            str(d / "bin/kube-controller-manager"), f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['kcm']}", "--leader-elect=false",
            f"--service-account-private-key-file={p / 'sa.key'}", f"--root-ca-file={p / 'ca.crt'}",
            f"--cluster-signing-cert-file={p / 'ca.crt'}", f"--cluster-signing-key-file={p / 'ca.key'}",
            "--use-service-account-credentials=true", "--controllers=*",
            "--kube-api-qps=200", "--kube-api-burst=400", "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10", "--concurrent-gc-syncs=20", "--v=1",
        ])  # fmt: skip

    def _start_scheduler(self, d: Path, ports: dict[str, int]) -> None:
        kc = str(self.dir / "scheduler.kubeconfig")
        self._spawn("kube-scheduler", [
            str(d / "bin/kube-scheduler"), f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['scheduler']}", "--leader-elect=false",
            "--kube-api-qps=200", "--kube-api-burst=400", "--v=1",
        ])  # fmt: skip

    def _start_kwok(self, d: Path, net: Network, ports: dict[str, int]) -> None:
        self._spawn("kwok", [
            str(d / "bin/kwok"), f"--kubeconfig={self.dir / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false", f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
            f"--cidr={net.pod_cidr}", f"--node-ip={net.bridge_ip}",
            f"--server-address=127.0.0.1:{ports['kwok']}", f"--config={STAGES}",
            "--node-lease-duration-seconds=40",
        ])  # fmt: skip

    def _start_runtime(self) -> None:
        self._spawn("runtime", [sys.executable, "-m", "hack.runtime", "--name", self.name], cwd=REPO)
        self._wait(
            "the local runtime's StorageClass",
            lambda: (
                "local" in [sc["metadata"]["name"] for sc in self.api("GET", "/apis/storage.k8s.io/v1/storageclasses")["items"]]
            ),
            comp="runtime",
        )

    def prometheus_config(self) -> dict[str, Any]:
        """The scrape config: Kubernetes pod discovery, Triton's metrics port, the three labels."""
        assert self.state is not None
        p = self.pki
        return {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {
                    "job_name": "triton",
                    "kubernetes_sd_configs": [
                        {
                            "role": "pod",
                            "api_server": self.api_url,
                            "tls_config": {
                                "ca_file": str(p / "ca.crt"),
                                "cert_file": str(p / "prometheus.crt"),
                                "key_file": str(p / "prometheus.key"),
                            },
                        }
                    ],
                    "relabel_configs": TRITON_RELABEL,
                }
            ],
        }

    def _start_prometheus(self, d: Path, net: Network) -> None:
        rbac_api = "/apis/rbac.authorization.k8s.io/v1"
        role = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "foresail-local-prometheus"}
        user = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "foresail-prometheus"}
        rbac = [
            (
                f"{rbac_api}/clusterroles",
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": role["name"]},
                    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
                },
            ),
            (
                f"{rbac_api}/clusterrolebindings",
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": role["name"]},
                    "roleRef": role,
                    "subjects": [user],
                },
            ),
        ]
        for path, obj in rbac:
            self.api("POST", path, obj)
        cfg = self.dir / "prometheus.yml"
        cfg.write_text(json.dumps(self.prometheus_config(), indent=1))  # JSON is YAML
        self._spawn("prometheus", [
            "ip", "netns", "exec", net.client_ns, str(d / "bin/prometheus"), f"--config.file={cfg}",
            f"--storage.tsdb.path={self.dir / 'data/prometheus'}", f"--web.listen-address={net.client_ip}:9090",
            "--storage.tsdb.retention.time=1d", "--web.enable-lifecycle", "--log.level=warn",
        ])  # fmt: skip
        from hack import netns

        self._wait(
            "Prometheus ready",
            lambda: netns.call_in(net.client_ns, lambda: _http_ok(f"{net.prometheus_url}/-/ready"), timeout=5),
            comp="prometheus",
        )

    def node_manifests(self) -> list[dict[str, Any]]:
        nodes = []
        for i in range(self.nodes):
            name = f"gpu-node-{i}"
            product = self.gpu_products[i % len(self.gpu_products)]
            res = {
                "cpu": "64",
                "memory": "512Gi",
                "pods": "110",
                "ephemeral-storage": "1Ti",
                "nvidia.com/gpu": str(self.gpus_per_node),
            }
            nodes.append({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                        "type": "kwok", "nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": product,
                        "nvidia.com/gpu.count": str(self.gpus_per_node),
                        "topology.kubernetes.io/zone": f"local-{'abcd'[i % 4]}",
                    },
                },
                "status": {"capacity": res, "allocatable": res},
            })  # fmt: skip
        return nodes

    def _create_nodes(self) -> None:
        for node in self.node_manifests():
            self.api("POST", "/api/v1/nodes", node)
        log(f"created {self.nodes} fake GPU nodes ({self.gpus_per_node} x nvidia.com/gpu each)")

    def wait_nodes_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            items = self.api("GET", "/api/v1/nodes")["items"]
            return sum(1 for n in items if is_condition_true(n, "Ready")) == self.nodes

        self._wait("all nodes Ready", ready, timeout=timeout, comp="kwok")

    def wait_default_service_account(self, namespace: str, timeout: float = 60.0) -> None:
        self._wait(
            f"service account {namespace}/default",
            lambda: self.api("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default") is not None,
            timeout=timeout,
            comp="kube-controller-manager",
        )

    # ------------------------------------------------------------ clients

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def api(self, method: str, path: str, body: Any = None, raw: bool = False, content_type: str = "application/json") -> Any:
        """A minimal admin API call (stdlib only): returns parsed JSON (or text with raw=True)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.api_url + path, data=data, method=method, headers={"Content-Type": content_type})
        with urllib.request.urlopen(req, context=self._ssl(), timeout=15) as resp:
            text = resp.read().decode()
        return text if raw else json.loads(text)

    def kubectl_cmd(self, *args: str) -> list[str]:
        return [str(tools.TOOLS_BY_NAME["kubectl"].dir / "bin/kubectl"), f"--kubeconfig={self.kubeconfig}", *args]

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.kubectl_cmd(*args), text=True, capture_output=True, input=input, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def exec_cmd(self, cmd: list[str]) -> list[str]:
        """``cmd`` run inside the client network namespace with this cluster's KUBECONFIG."""
        return ["ip", "netns", "exec", self.network.client_ns, "env", f"KUBECONFIG={self.kubeconfig}", *cmd]

    def status(self) -> dict[str, Any]:
        if self.state is None:
            return {"name": self.name, "up": False}
        comps = {c: ("running" if _pid_alive(p) else "DEAD") + f" (pid {p})" for c, p in self.state.pids.items()}
        out: dict[str, Any] = {
            "name": self.name,
            "up": self.alive(),
            "api": self.api_url,
            "kubeconfig": str(self.kubeconfig),
            "components": comps,
        }
        with contextlib.suppress(Exception):
            out["nodes"] = self.kubectl("get", "nodes", "-o", "wide").stdout
        return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of this process counts as dead
    with contextlib.suppress(FileNotFoundError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True


def _stop_pid(pid: int, what: str, grace: float = 10.0) -> None:
    if not _pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)
    if _pid_alive(pid):
        log(f"{what} (pid {pid}) ignored SIGTERM for {grace}s; SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    log(f"stopped {what} (pid {pid})")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # kubectl/exec pass everything after them through untouched
    for passthrough in ("kubectl", "exec"):
        if passthrough in argv:
            i = argv.index(passthrough)
            head, rest = argv[:i], argv[i + 1 :]
            if passthrough == "exec" and rest[:1] == ["--"]:
                rest = rest[1:]
            ns = _common(argparse.ArgumentParser(prog="hack/cluster")).parse_args(head)
            c = Cluster(ns.name)
            if c.state is None:
                raise SystemExit(f"hack/cluster: cluster {ns.name!r} is not up (run: hack/cluster up)")
            cmd = c.kubectl_cmd(*rest) if passthrough == "kubectl" else c.exec_cmd(rest)
            return subprocess.call(cmd)

    parser = _common(
        argparse.ArgumentParser(prog="hack/cluster", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start the cluster")
    p_up.add_argument("--nodes", type=int, default=int(os.environ.get("FORESAIL_NODES", 4)))
    p_up.add_argument("--gpus-per-node", type=int, default=int(os.environ.get("FORESAIL_GPUS_PER_NODE", 8)))
    p_up.add_argument(
        "--gpu-product",
        default=os.environ.get("FORESAIL_GPU_PRODUCT", DEFAULT_GPU_PRODUCT),
        help="comma-separated; cycled over nodes",
    )
    sub.add_parser("down", help="stop what up started and remove its data")
    sub.add_parser("status", help="show components and nodes")
    sub.add_parser("kubectl", help="run the pinned kubectl against the cluster")
    sub.add_parser("exec", help="run a command in the cluster network with KUBECONFIG set")
    args = parser.parse_args(argv)

    if args.cmd == "up":
        if args.nodes < 1 or args.gpus_per_node < 0:
            raise SystemExit("hack/cluster: --nodes must be >= 1 and --gpus-per-node >= 0")
        c = Cluster(args.name, args.nodes, args.gpus_per_node, [p for p in args.gpu_product.split(",") if p])
        c.up()
        print(f"export KUBECONFIG={c.kubeconfig}")
        return 0
    c = Cluster(args.name)
    if args.cmd == "down":
        c.down()
    elif args.cmd == "status":
        st = c.status()
        nodes = st.pop("nodes", "")
        print(json.dumps(st, indent=2))
        print(nodes, end="")
        return 0 if st["up"] else 1
    return 0


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--name", default=os.environ.get("FORESAIL_CLUSTER", "foresail"), help="cluster name (default: foresail)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
