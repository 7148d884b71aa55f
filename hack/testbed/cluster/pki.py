"""The cluster's PKI (an EC CA, the apiserver's serving certificate, one client certificate per component,
the service-account signing keys) and the kubeconfigs that carry them. openssl does the cryptography."""

from __future__ import annotations

import base64
import ipaddress
import json
from pathlib import Path

from hack.base.proc import sh
from hack.testbed.state import RunDir

__all__ = ["CLIENTS", "SERVICE_CIDR", "make_pki", "make_secured_prometheus_pki", "write_kubeconfigs"]

SERVICE_CIDR = "10.96.0.0/16"
# client certificates: the file name and the subject (O= is the group, CN= the user)
CLIENTS = {
    "admin": "/O=system:masters/CN=foresail-admin",
    "controller-manager": "/CN=system:kube-controller-manager",
    "scheduler": "/CN=system:kube-scheduler",
    "kwok": "/O=system:masters/CN=kwok",
    "prometheus": "/CN=foresail-prometheus",
}
KUBECONFIG_USERS = ("admin", "controller-manager", "scheduler", "kwok")


def _key(path: Path) -> None:
    sh(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(path)])


def _leaf(pki: Path, name: str, subj: str, ext: str) -> None:
    (pki / f"{name}.ext").write_text(ext + "\n")
    _key(pki / f"{name}.key")
    sh(["openssl", "req", "-new", "-key", str(pki / f"{name}.key"), "-subj", subj, "-out", str(pki / f"{name}.csr")])
    sh(["openssl", "x509", "-req", "-in", str(pki / f"{name}.csr"), "-CA", str(pki / "ca.crt"),
        "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "3650", "-sha256",
        "-extfile", str(pki / f"{name}.ext"), "-out", str(pki / f"{name}.crt")])  # fmt: skip


def make_pki(pki: Path, cluster: str, apiserver_ip: str) -> None:
    _key(pki / "ca.key")
    sh(["openssl", "req", "-x509", "-new", "-key", str(pki / "ca.key"), "-sha256", "-days", "3650",
        "-subj", f"/CN=foresail-local-ca-{cluster}", "-out", str(pki / "ca.crt")])  # fmt: skip
    sans = [
        f"IP:{apiserver_ip}",
        "IP:127.0.0.1",
        f"IP:{ipaddress.IPv4Network(SERVICE_CIDR).network_address + 1}",
        "DNS:localhost",
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local",
    ]
    _leaf(pki, "apiserver", "/CN=kube-apiserver", f"subjectAltName={','.join(sans)}\nextendedKeyUsage=serverAuth")
    for name, subj in CLIENTS.items():
        _leaf(pki, name, subj, "extendedKeyUsage=clientAuth")
    _key(pki / "sa.key")
    sh(["openssl", "ec", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub")])


def make_secured_prometheus_pki(pki: Path, ip: str) -> None:
    """For a Prometheus with a web config (``--web.config.file``): its serving certificate for ``ip`` and a
    client certificate for whoever queries it (the cluster CA signs both)."""
    _leaf(pki, "prometheus-server", "/CN=foresail-prometheus-secured", f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth")
    _leaf(pki, "prometheus-client", "/CN=foresail-operator", "extendedKeyUsage=clientAuth")


def kubeconfig(cluster: str, server: str, user: str, pki: Path) -> dict[str, object]:
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": b64(pki / "ca.crt")}}],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(pki / f"{user}.crt"), "client-key-data": b64(pki / f"{user}.key")},
            }
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
    }


def write_kubeconfigs(run: RunDir, server: str) -> None:
    """The admin kubeconfig and one per component that talks to the apiserver with its own identity."""
    for user in KUBECONFIG_USERS:
        target = run.component_kubeconfig(user)
        target.write_text(json.dumps(kubeconfig(run.name, server, user, run.pki), indent=1))
        target.chmod(0o600)
