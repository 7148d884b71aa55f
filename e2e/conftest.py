"""End-to-end fixtures: one real local cluster for the whole session, stopped whatever happens."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from hack.cluster import Cluster

from e2e.helpers import Kube


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
