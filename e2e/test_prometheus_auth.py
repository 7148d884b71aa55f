"""A real Prometheus that requires TLS, a client certificate and basic auth (``--web.config.file``), queried with
the credentials ``foresail.clients.promauth`` builds from files the way the chart mounts them. Prometheus itself
cannot require a bearer token (its web config has none); ``tests/clients/test_promauth.py`` checks the token
against a local HTTPS server instead."""

from __future__ import annotations

import ssl

import httpx
import pytest
import yaml

from foresail.clients.promauth import PromAuth, client_args
from hack.base import netns
from hack.base.paths import REPO
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS, helm
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


def test_the_chart_mounts_the_prometheus_secrets_as_files() -> None:
    """Every prometheus.auth Secret becomes a read-only volume; the environment holds paths, never a secret."""
    sets = [
        "--set=prometheus.auth.basicAuth.secretName=prom-basic",
        "--set=prometheus.auth.ca.secretName=prom-ca",
        "--set=prometheus.auth.clientCert.secretName=prom-client",
        "--set=prometheus.auth.headers.secretName=prom-headers",
    ]
    out = helm(None, "template", "foresail", str(REPO / "charts/foresail"), "-n", SYSTEM_NS, *sets, "--show-only=templates/deployment.yaml")
    assert out.returncode == 0, out.stderr
    pod = yaml.safe_load(out.stdout)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert all("valueFrom" not in e or "fieldRef" in e["valueFrom"] for e in container["env"]), "no secretKeyRef in the environment"
    d = "/etc/foresail/prometheus"
    assert env["FORESAIL_PROMETHEUS_BASIC_AUTH_USERNAME_FILE"] == f"{d}/basic-auth/username"
    assert env["FORESAIL_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE"] == f"{d}/basic-auth/password"
    assert (env["FORESAIL_PROMETHEUS_CA_FILE"], env["FORESAIL_PROMETHEUS_CERT_FILE"]) == (f"{d}/ca/ca.crt", f"{d}/client/tls.crt")
    assert (env["FORESAIL_PROMETHEUS_KEY_FILE"], env["FORESAIL_PROMETHEUS_HEADERS_DIR"]) == (f"{d}/client/tls.key", f"{d}/headers")
    assert env["FORESAIL_PROMETHEUS_BEARER_TOKEN_FILE"] == ""
    secrets = {v["secret"]["secretName"]: v["name"] for v in pod["volumes"] if "secret" in v}
    assert set(secrets) == {"prom-basic", "prom-ca", "prom-client", "prom-headers"}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert all(mounts[name]["readOnly"] and mounts[name]["mountPath"].startswith(d) for name in secrets.values())
    both = ["--set=prometheus.auth.bearerToken.secretName=t", "--set=prometheus.auth.basicAuth.secretName=b"]
    assert helm(None, "template", "foresail", str(REPO / "charts/foresail"), *both).returncode != 0, "a token and basic auth at once"
