"""A cluster's run directory and what ``up`` records there: its address plan, ports and PIDs.

The cluster package writes it; the pod runtime (a separate process) and every client read it.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hack import tools
from hack.base.kube import Credentials, Kube
from hack.base.paths import run_root

__all__ = ["FAKE_NODE_ANNOTATION", "RUNTIME_MODES", "Network", "RunDir", "State", "runtime_mode"]

# kwok simulates the nodes carrying this annotation (value "fake"); the pod runtime runs pods bound to them
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# how the pod runtime runs containers: from their images (runc), or, for quick development only, as processes
# from the checkout (FORESAIL_RUNTIME=processes)
RUNTIME_MODES = ("images", "processes")


def runtime_mode() -> str:
    mode = os.environ.get("FORESAIL_RUNTIME", "images")
    if mode not in RUNTIME_MODES:
        raise SystemExit(f"FORESAIL_RUNTIME={mode!r}: expected one of {', '.join(RUNTIME_MODES)}")
    return mode


@dataclass(frozen=True)
class Network:
    """The address plan: a bridge on a private /16 plus the client network namespace."""

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
    def client_if(self) -> str:
        """The host side of the client namespace's veth."""
        return f"{self.bridge}c"

    @property
    def pod_cidr(self) -> str:
        """What kwok allocates (simulated) pod IPs from: x.y.16.1/20 (x.y.16.1 - x.y.31.254)."""
        return f"{self.net.network_address + 16 * 256 + 1}/20"

    @property
    def runtime_pod_cidr(self) -> str:
        """What the local pod runtime allocates pod IPs from: x.y.32.0/20, disjoint from kwok's."""
        return f"{self.net.network_address + 32 * 256}/20"

    @property
    def registry(self) -> str:
        """The cluster's image registry (host:port), in the client namespace like Prometheus."""
        return f"{self.client_ip}:5000"

    @property
    def prometheus_url(self) -> str:
        """Prometheus listens in the client namespace (it scrapes pod IPs)."""
        return f"http://{self.client_ip}:9090"


@dataclass
class State:
    name: str
    nodes: int
    gpus_per_node: int
    gpu_products: list[str]
    network: Network
    ports: dict[str, int]
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0
    ready_seconds: float = 0.0
    runtime: str = "images"  # RUNTIME_MODES
    images: dict[str, str] = field(default_factory=dict)  # what up pushed to the registry: reference -> digest

    @property
    def api_url(self) -> str:
        return f"https://{self.network.bridge_ip}:{self.ports['apiserver']}"


class RunDir:
    """``<run root>/<name>/``: PKI, kubeconfigs, logs, data, pod sandboxes and ``state.json``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = run_root() / name

    @property
    def pki(self) -> Path:
        return self.path / "pki"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def pods(self) -> Path:
        """One directory per pod the runtime runs (by UID): its volumes."""
        return self.path / "pods"

    @property
    def pvcs(self) -> Path:
        """The ``local`` StorageClass's volumes: ``<namespace>/<claim>/``."""
        return self.path / "pvcs"

    @property
    def registry(self) -> Path:
        """The cluster registry's storage and configuration."""
        return self.path / "registry"

    @property
    def mirrors(self) -> Path:
        """The registry mirror configuration pulls follow: ``<registry host>/hosts.toml`` (containerd's format)."""
        return self.path / "certs.d"

    @property
    def images(self) -> Path:
        """The pod runtime's image store: pulled blobs, unpacked root filesystems."""
        return self.path / "images"

    @property
    def runc(self) -> Path:
        """runc's state directory for the cluster's containers."""
        return self.path / "runc"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (what ``KUBECONFIG`` points at)."""
        return self.path / "kubeconfig"

    def component_kubeconfig(self, user: str) -> Path:
        return self.kubeconfig if user == "admin" else self.path / f"{user}.kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    def load(self) -> State | None:
        if not self.state_file.is_file():
            return None
        raw = json.loads(self.state_file.read_text())
        return State(**{**raw, "network": Network(**raw["network"])})

    def save(self, state: State) -> None:
        self.state_file.write_text(json.dumps(asdict(state), indent=2))

    def admin_credentials(self, state: State) -> Credentials:
        return Credentials(state.api_url, self.pki / "ca.crt", self.pki / "admin.crt", self.pki / "admin.key")

    def kube(self, state: State) -> Kube:
        """The admin client of the cluster: REST with the admin certificate, the pinned kubectl."""
        return Kube(self.admin_credentials(state), self.kubeconfig, tools.TOOLS_BY_NAME["kubectl"].dir / "bin/kubectl")
