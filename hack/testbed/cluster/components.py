"""The command lines of the cluster's processes: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kwok and Prometheus (which runs in the client network namespace, where pod IPs are reachable). Pure."""

from __future__ import annotations

from pathlib import Path

from hack.base.paths import HACK
from hack.testbed.cluster.pki import SERVICE_CIDR
from hack.testbed.state import FAKE_NODE_ANNOTATION, Network, RunDir

__all__ = [
    "STAGES",
    "apiserver",
    "controller_manager",
    "etcd",
    "etcd_url",
    "kwok",
    "prometheus",
    "scheduler",
]

STAGES = HACK / "kwok" / "stages.yaml"


def etcd_url(ports: dict[str, int]) -> str:
    return f"http://127.0.0.1:{ports['etcd']}"


def etcd(bin_dir: Path, run: RunDir, ports: dict[str, int]) -> list[str]:
    client, peer = etcd_url(ports), f"http://127.0.0.1:{ports['etcd_peer']}"
    return [
        str(bin_dir / "etcd"), "--name", "foresail", "--data-dir", str(run.data / "etcd"),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"foresail={peer}", "--unsafe-no-fsync", "--log-level", "warn",
        "--listen-metrics-urls", "", "--quota-backend-bytes", str(4 << 30),
    ]  # fmt: skip


def apiserver(bin_dir: Path, run: RunDir, net: Network, ports: dict[str, int]) -> list[str]:
    p = run.pki
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers={etcd_url(ports)}",
        f"--bind-address={net.bridge_ip}", f"--advertise-address={net.bridge_ip}",
        f"--secure-port={ports['apiserver']}",
        f"--tls-cert-file={p / 'apiserver.crt'}", f"--tls-private-key-file={p / 'apiserver.key'}",
        f"--client-ca-file={p / 'ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={p / 'sa.pub'}", f"--service-account-signing-key-file={p / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=RBAC", "--allow-privileged=true", "--profiling=false",
        "--endpoint-reconciler-type=lease", "--event-ttl=2h", "--v=1",
    ]  # fmt: skip


def controller_manager(bin_dir: Path, run: RunDir, ports: dict[str, int]) -> list[str]:
    p, kc = run.pki, str(run.component_kubeconfig("controller-manager"))
    return [
        str(bin_dir / "kube-controller-manager"), f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1", f"--secure-port={ports['kcm']}", "--leader-elect=false",
        f"--service-account-private-key-file={p / 'sa.key'}", f"--root-ca-file={p / 'ca.crt'}",
        f"--cluster-signing-cert-file={p / 'ca.crt'}", f"--cluster-signing-key-file={p / 'ca.key'}",
        "--use-service-account-credentials=true", "--controllers=*",
        "--kube-api-qps=200", "--kube-api-burst=400", "--concurrent-deployment-syncs=10",
        "--concurrent-replicaset-syncs=10", "--concurrent-gc-syncs=20", "--v=1",
    ]  # fmt: skip


def scheduler(bin_dir: Path, run: RunDir, ports: dict[str, int]) -> list[str]:
    kc = str(run.component_kubeconfig("scheduler"))
    return [
        str(bin_dir / "kube-scheduler"), f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1", f"--secure-port={ports['scheduler']}", "--leader-elect=false",
        "--kube-api-qps=200", "--kube-api-burst=400", "--v=1",
    ]  # fmt: skip


def kwok(bin_dir: Path, run: RunDir, net: Network, ports: dict[str, int]) -> list[str]:
    return [
        str(bin_dir / "kwok"), f"--kubeconfig={run.component_kubeconfig('kwok')}",
        "--manage-all-nodes=false", f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
        f"--cidr={net.pod_cidr}", f"--node-ip={net.bridge_ip}",
        f"--server-address=127.0.0.1:{ports['kwok']}", f"--config={STAGES}",
        "--node-lease-duration-seconds=40",
    ]  # fmt: skip


def prometheus(
    bin_dir: Path, run: RunDir, net: Network, config: Path, port: int = 9090, web_config: Path | None = None, name: str = "prometheus"
) -> list[str]:
    """The cluster's Prometheus (plain HTTP on 9090), or with ``web_config`` a secured one (its own data)."""
    return [
        "ip", "netns", "exec", net.client_ns, str(bin_dir / "prometheus"), f"--config.file={config}",
        f"--storage.tsdb.path={run.data / name}", f"--web.listen-address={net.client_ip}:{port}",
        "--storage.tsdb.retention.time=1d", "--web.enable-lifecycle", "--log.level=warn",
        *([f"--web.config.file={web_config}"] if web_config else []),
    ]  # fmt: skip
