"""The operator against a Prometheus that requires TLS with a client certificate and basic auth
(``Cluster.start_secured_prometheus``): the chart's ``prometheus.auth`` Secrets mounted as files, real Triton,
a wrong password reported as HTTP 401, the right one giving live signals, and no secret in any log or Event."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.helpers import observed, pod_log, serving, triton_isvc
from foresail.api.objects import condition
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS, helm, upgrade_foresail
from hack.testbed.cluster.cluster import SecuredPrometheus


def _secret(name: str, data: dict[str, str], type_: str = "Opaque") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": type_, "stringData": data}


@pytest.fixture
def secured(cluster: Cluster, operator: Kube) -> Iterator[tuple[SecuredPrometheus, str]]:
    """The secured Prometheus and the Secrets a user would create for it in the release namespace (the right
    basic auth, a wrong password, the CA, the client certificate); the release rolled back to its revision
    of before (and Ready) and the Secrets deleted afterwards. Yields the Prometheus and the wrong password."""
    prom = cluster.start_secured_prometheus()
    wrong = secrets.token_urlsafe(24)
    user = prom.username_file.read_text().strip()
    made = [
        _secret("prom-basic", {"username": user, "password": prom.password_file.read_text().strip()}),
        _secret("prom-basic-wrong", {"username": user, "password": wrong}),
        _secret("prom-ca", {"ca.crt": prom.ca_file.read_text()}),
        _secret("prom-client", {"tls.crt": prom.cert_file.read_text(), "tls.key": prom.key_file.read_text()}, "kubernetes.io/tls"),
    ]
    operator.create(made, SYSTEM_NS)  # through stdin: no secret on a command line
    revision = json.loads(helm(cluster, "status", "foresail", "-n", SYSTEM_NS, "-o", "json").stdout)["version"]
    try:
        yield prom, wrong
    finally:
        out = helm(cluster, "rollback", "foresail", str(revision), "-n", SYSTEM_NS, "--wait", "--timeout=300s")
        operator.kubectl("delete", "secret", "-n", SYSTEM_NS, *(s["metadata"]["name"] for s in made), check=False)
        assert out.returncode == 0, out.stderr


def _assert_nowhere(cluster: Cluster, hidden: dict[str, str]) -> None:
    """None of ``hidden`` (what: text) in the operator pods' logs, in any Event of any namespace, or in any log
    the cluster writes (every component's and every pod's, deleted operator pods' included)."""
    pods = [p["metadata"]["name"] for p in cluster.kube.pods(SYSTEM_NS, "app.kubernetes.io/component=operator")]
    texts = {f"the log of {name}": pod_log(cluster, SYSTEM_NS, name, "operator") for name in pods}
    assert sum(1 for text in texts.values() if text) >= 2, f"both operator replicas' logs read: {pods}"
    texts["the Events of every namespace"] = cluster.kube.kubectl("get", "events", "-A", "-o", "json").stdout
    texts |= {str(f): f.read_text(errors="replace") for f in cluster.run.logs.rglob("*") if f.is_file()}
    found = [f"{what} in {where}" for what, text in hidden.items() for where, body in texts.items() if text in body]
    assert not found, found


def _metrics(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    return condition(kube.get("fisvc", "-n", ns, name), "MetricsAvailable") or {}


def test_the_operator_queries_a_secured_prometheus_and_no_secret_leaks(
    operator: Kube, cluster: Cluster, namespace: str, secured: tuple[SecuredPrometheus, str]
) -> None:
    prom, wrong = secured
    user, password = prom.username_file.read_text().strip(), prom.password_file.read_text().strip()
    # the key's base64 lines (a short last one could match by chance)
    key_lines = [line for line in prom.key_file.read_text().splitlines() if len(line) >= 16 and not line.startswith("-----")]
    assert key_lines
    hidden = {
        "the basic-auth password": password,
        "the wrong password": wrong,
        **{f"the Authorization header of the {w} password": base64.b64encode(f"{user}:{p}".encode()).decode() for w, p in (("right", password), ("wrong", wrong))},
        **{f"line {i} of the client key": line for i, line in enumerate(key_lines, 1)},
    }
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    operator.create(triton_isvc("secured", 1), namespace)
    serving(operator, namespace, "secured", 1)
    auth = {
        "prometheus.url": prom.url,
        "prometheus.auth.ca.secretName": "prom-ca",
        "prometheus.auth.clientCert.secretName": "prom-client",
    }

    # a wrong password: Prometheus answers 401, every service's signals are unavailable and say so
    upgrade_foresail(cluster, {**auth, "prometheus.auth.basicAuth.secretName": "prom-basic-wrong"})
    refused = wait_for(
        "MetricsAvailable=False naming HTTP 401",
        lambda: (c := _metrics(operator, namespace, "secured")).get("status") == "False" and "HTTP 401" in c.get("message", "") and c,
        timeout=120,
    )
    print(f"\n[figure] wrong password: {refused['reason']}: {refused['message']}")
    _assert_nowhere(cluster, hidden)

    # the right credentials: the live signals come from the secured Prometheus (the False above came from
    # the operator with the wrong password, so this True is the new operator's)
    upgrade_foresail(cluster, {"prometheus.auth.basicAuth.secretName": "prom-basic"})
    wait_for("MetricsAvailable=True", lambda: _metrics(operator, namespace, "secured").get("status") == "True", timeout=120)
    obs = wait_for(
        "signals from the secured Prometheus",
        lambda: (o := observed(operator, namespace, "secured")).get("source") == "Prometheus" and o.get("windows") and o,
        timeout=60,
    )
    print(f"[figure] right credentials: source {obs['source']}, samples every {obs['sampleIntervalSeconds']} s")
    env = operator.get("deployment", "-n", SYSTEM_NS, "-l", "app.kubernetes.io/component=operator")["items"][0]
    values = {e["name"]: e.get("value", "") for e in env["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert values["FORESAIL_PROMETHEUS_URL"] == prom.url and values["FORESAIL_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE"], values
    _assert_nowhere(cluster, hidden)
