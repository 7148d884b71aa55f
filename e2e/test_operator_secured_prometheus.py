"""The operator against a Prometheus that requires TLS with a client certificate and basic auth
(``Cluster.start_secured_prometheus``): the chart's ``prometheus.auth`` Secrets mounted as files, real Triton,
a wrong password reported as HTTP 401, the right one giving live signals, and no secret in any log or Event.
Then a shared-mode EvalJob's workers yielding to production through the same Prometheus with a Secret of
their own namespace (``spec.traffic.prometheusAuth``), never the operator's."""

from __future__ import annotations

import base64
import functools
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

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


def _hidden(prom: SecuredPrometheus, wrong: str) -> dict[str, str]:
    """What must appear nowhere: both passwords, their Authorization headers, the client key's base64 lines
    (a short last one could match by chance)."""
    user, password = prom.username_file.read_text().strip(), prom.password_file.read_text().strip()
    key_lines = [line for line in prom.key_file.read_text().splitlines() if len(line) >= 16 and not line.startswith("-----")]
    assert key_lines
    return {
        "the basic-auth password": password,
        "the wrong password": wrong,
        **{f"the Authorization header of the {w} password": base64.b64encode(f"{user}:{p}".encode()).decode() for w, p in (("right", password), ("wrong", wrong))},
        **{f"line {i} of the client key": line for i, line in enumerate(key_lines, 1)},
    }


def _metrics(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    return condition(kube.get("fisvc", "-n", ns, name), "MetricsAvailable") or {}


def test_the_operator_queries_a_secured_prometheus_and_no_secret_leaks(
    operator: Kube, cluster: Cluster, namespace: str, secured: tuple[SecuredPrometheus, str]
) -> None:
    prom, wrong = secured
    hidden = _hidden(prom, wrong)
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


def _evaluation(name: str, target: str, secret: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The example shared-mode evaluation (``crds/examples/tenancy/evaljob.yaml``: its dataset ConfigMap and the
    EvalJob) of service ``target``, one item per request at 1/s per worker (several yield reads per shard), its
    workers' Prometheus credentials from Secret ``secret``."""
    cm, ej = (d for d in yaml.safe_load_all((REPO / "crds/examples/tenancy/evaljob.yaml").read_text()) if d)
    ej["metadata"]["name"] = name
    ej["spec"]["target"]["inferenceService"] = target
    ej["spec"]["traffic"] |= {"batchSize": 1, "maxRequestsPerSecond": 1, "prometheusAuth": {"secretName": secret}}
    return cm, ej


def test_eval_workers_yield_through_the_secured_prometheus_with_a_secret_of_their_namespace(
    operator: Kube, cluster: Cluster, namespace: str, secured: tuple[SecuredPrometheus, str]
) -> None:
    prom, wrong = secured
    hidden = _hidden(prom, wrong)
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    operator.create(triton_isvc("evaluated", 1), namespace)
    # the workers' Prometheus is the operator's (FORESAIL_PROMETHEUS_URL); the operator's Secrets stay in its namespace
    upgrade_foresail(
        cluster,
        {
            "prometheus.url": prom.url,
            "prometheus.auth.ca.secretName": "prom-ca",
            "prometheus.auth.clientCert.secretName": "prom-client",
            "prometheus.auth.basicAuth.secretName": "prom-basic",
        },
    )
    serving(operator, namespace, "evaluated", 1)
    tls = {"ca.crt": prom.ca_file.read_text(), "tls.crt": prom.cert_file.read_text(), "tls.key": prom.key_file.read_text()}
    user, password = prom.username_file.read_text().strip(), prom.password_file.read_text().strip()
    operator.create(
        [
            _secret("eval-prom", {"username": user, "password": password, **tls}),
            _secret("eval-prom-wrong", {"username": user, "password": wrong, **tls}),
        ],
        namespace,
    )

    # admission: only a yielding job takes credentials (the CRD, 422); naming a Secret needs the right to get it
    # (foresail-evaljob-secrets): a user who may create EvalJobs but not read Secrets is refused, not without it
    cm, right = _evaluation("eval-auth", "evaluated", "eval-prom")
    dedicated = {**right, "spec": {**right["spec"], "mode": "dedicated"}}
    out = operator.kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(dedicated), check=False)
    assert out.returncode != 0 and "spec.traffic.prometheusAuth" in out.stderr and "only for jobs that yield" in out.stderr, out.stderr
    author = "eval-author@example.com"
    operator.create(
        [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "evaljob-author"},
             "rules": [{"apiGroups": ["foresail.dev"], "resources": ["evaljobs"], "verbs": ["get", "create"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "evaljob-author"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "evaljob-author"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": author}]},
        ],
        namespace,
    )  # fmt: skip
    as_author = ["create", "--dry-run=server", f"--as={author}", "-n", namespace, "-f", "-"]
    out = operator.kubectl(*as_author, input=json.dumps(right), check=False)
    assert out.returncode != 0 and "ValidatingAdmissionPolicy 'foresail-evaljob-secrets'" in out.stderr, out.stderr
    assert f'may not get Secret "eval-prom" in namespace "{namespace}"' in out.stderr, out.stderr
    plain = {**right, "spec": {**right["spec"], "traffic": {k: v for k, v in right["spec"]["traffic"].items() if k != "prometheusAuth"}}}
    out = operator.kubectl(*as_author, input=json.dumps(plain), check=False)
    assert out.returncode == 0, out.stderr

    # the right credentials and a wrong password, side by side; both jobs finish (a refused read yields fully)
    _, refused = _evaluation("eval-wrong", "evaluated", "eval-prom-wrong")
    operator.apply([cm, right, refused], namespace)

    def finished(name: str) -> dict[str, Any] | None:
        st: dict[str, Any] = operator.get("evj", "-n", namespace, name).get("status") or {}
        return st if st.get("phase") in ("Succeeded", "Failed") else None

    for name in ("eval-auth", "eval-wrong"):
        st = wait_for(f"EvalJob {name} finished", functools.partial(finished, name), timeout=300, interval=1)
        assert st["phase"] == "Succeeded" and st["results"]["score"] == 1.0, st.get("conditions")
        reports = operator.get("configmap", "-n", namespace, f"{name}-progress").get("data") or {}
        assert len(reports) == 2 and all(json.loads(r)["error"] == "" for r in reports.values()), reports
    job = operator.get("job", "-n", namespace, "eval-auth")["spec"]["template"]["spec"]
    assert [v["secret"]["secretName"] for v in job["volumes"] if "secret" in v] == ["eval-prom"], "no Secret of the operator's"

    def logs(name: str) -> list[str]:
        pods = operator.pods(namespace, f"foresail.dev/evaljob={name}")
        assert pods, name
        return [pod_log(cluster, namespace, p["metadata"]["name"], "worker") for p in pods]

    for text in logs("eval-auth"):
        assert "keys username, password, ca.crt, tls.crt, tls.key" in text, text
        assert f"production signals of {namespace}/evaluated read from Prometheus" in text, text
        assert "production signals unavailable" not in text, text
    for text in logs("eval-wrong"):
        assert "production signals unavailable (yielding fully)" in text and "HTTP 401" in text, text
    _assert_nowhere(cluster, hidden)
    refusal = next(line for line in logs("eval-wrong")[0].splitlines() if "HTTP 401" in line)
    print(f"\n[figure] eval workers with a wrong password: {refusal}")
