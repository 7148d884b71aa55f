"""A real Prometheus that requires TLS, a client certificate and basic auth (``--web.config.file``), queried with
the credentials ``foresail.clients.promauth`` builds from files the way the chart mounts them. Prometheus itself
cannot require a bearer token (its web config has none); ``tests/clients/test_promauth.py`` checks the token
against a local HTTPS server instead."""

from __future__ import annotations

import ssl

import httpx
import pytest

from foresail.clients.promauth import PromAuth, client_args
from hack.base import netns
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.cluster import SecuredPrometheus


@pytest.fixture(scope="module")
def secured(cluster: Cluster) -> SecuredPrometheus:
    return cluster.start_secured_prometheus()


def _query(cluster: Cluster, url: str, auth: PromAuth) -> int:
    def get() -> int:
        with httpx.Client(timeout=5, **client_args(auth)) as c:
            return c.get(f"{url}/api/v1/query", params={"query": "up"}).status_code

    return netns.call_in(cluster.network.client_ns, get, timeout=15)


def test_a_secured_prometheus_answers_only_with_every_credential(cluster: Cluster, secured: SecuredPrometheus) -> None:
    full = PromAuth(
        basic_auth_username_file=str(secured.username_file),
        basic_auth_password_file=str(secured.password_file),
        ca_file=str(secured.ca_file),
        cert_file=str(secured.cert_file),
        key_file=str(secured.key_file),
    )
    assert _query(cluster, secured.url, full) == 200
    no_password = PromAuth(ca_file=full.ca_file, cert_file=full.cert_file, key_file=full.key_file)
    assert _query(cluster, secured.url, no_password) == 401
    with pytest.raises(httpx.HTTPError):  # no client certificate: the handshake fails
        _query(cluster, secured.url, PromAuth(ca_file=full.ca_file))
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # the system's CAs do not know the cluster's
        _query(cluster, secured.url, PromAuth(cert_file=full.cert_file, key_file=full.key_file))
    assert isinstance(client_args(full)["verify"], ssl.SSLContext)
