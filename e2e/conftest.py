"""End-to-end fixtures: one real local cluster for the whole session, stopped whatever happens."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from hack.base.kube import Kube
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import install_foresail, own_namespace, tenant_manifest, uninstall_foresail


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


# the session operator's values (e2e/test_chart_upgrade.py reinstalls it with them)
OPERATOR_VALUES = {"prometheus.rateWindow": "10s", "autoscaler.loopSeconds": "2", "tenants.batchMinRuntimeSeconds": "0"}


@pytest.fixture(scope="session")
def operator(cluster: Cluster) -> Iterator[Kube]:
    """The operator installed by the chart (two replicas, loop every 2 s) in a namespace enforcing Pod Security
    Standards ``restricted``; the admin client."""
    install_foresail(cluster, OPERATOR_VALUES, restricted=True)
    yield cluster.kube
    uninstall_foresail(cluster)


@pytest.fixture
def kube(cluster: Cluster) -> Kube:
    return cluster.kube


@pytest.fixture
def bare_namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace no Tenant owns (no backstop ResourceQuota): for tests of the cluster itself, whose
    pods use no Foresail priority class; deleted afterwards (without waiting)."""
    name = f"b-{uuid.uuid4().hex[:8]}"
    cluster.kube.kubectl("create", "namespace", name)
    cluster.wait_default_service_account(name)
    yield name
    cluster.kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def namespace(cluster: Cluster, operator: Kube) -> Iterator[str]:
    """A fresh namespace per test, owned by a Tenant of the same name (tenancy mode strict admits Foresail
    objects only there; no guarantee, the whole cluster as its limit, every priority); both deleted afterwards
    (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kube.kubectl("create", "namespace", name)
    cluster.wait_default_service_account(name)
    own_namespace(cluster, tenant_manifest(name, [name], limit=cluster.nodes * cluster.gpus_per_node))
    yield name
    cluster.kube.kubectl("delete", "namespace", name, "--wait=false", check=False)
    cluster.kube.kubectl("delete", "tenant", name, "--wait=false", "--ignore-not-found", check=False)
