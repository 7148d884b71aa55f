"""End-to-end fixtures: one real local cluster for the whole session, stopped whatever happens."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from e2e.helpers import Kube
from hack import tools
from hack.cluster import REPO, Cluster

SYSTEM_NS = "foresail-system"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    c = Cluster(name=os.environ.get("FORESAIL_E2E_CLUSTER", "e2e"))
    c.up()
    try:
        yield c
    finally:
        # FORESAIL_KEEP_LOGS=1 keeps the run directory's logs (component and pod logs) for a post-mortem
        c.down(keep_logs=os.environ.get("FORESAIL_KEEP_LOGS") == "1")


def helm(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    h = tools.TOOLS_BY_NAME["kubectl"].dir / "bin/helm"
    return subprocess.run([str(h), f"--kubeconfig={cluster.kubeconfig}", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def operator(cluster: Cluster) -> Iterator[Kube]:
    kube = Kube(cluster)
    kube.kubectl("create", "namespace", SYSTEM_NS)
    kube.kubectl(
        "label",
        "namespace",
        SYSTEM_NS,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    out = helm(
        cluster, "install", "foresail", str(REPO / "charts/foresail"), "-n", SYSTEM_NS, "--wait", "--timeout=120s",
        f"--set=prometheus.url={cluster.network.prometheus_url}", "--set=prometheus.rateWindow=10s", "--set=autoscaler.loopSeconds=2",
        "--set=tenants.batchMinRuntimeSeconds=0",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    kube.kubectl("apply", "-f", str(REPO / "policies/scaling"))
    yield kube
    helm(cluster, "uninstall", "foresail", "-n", SYSTEM_NS, "--wait")
    kube.kubectl("delete", "namespace", SYSTEM_NS, "--wait=false", check=False)


@pytest.fixture
def kube(cluster: Cluster) -> Kube:
    return Kube(cluster)


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    """A fresh namespace per test, deleted (and waited for) afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", name)
    kube.cluster.wait_default_service_account(name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)
