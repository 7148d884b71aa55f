"""The chart's optional NetworkPolicy pair (issue 16). The local cluster enforces no NetworkPolicy (no CNI), so
the objects are validated by the apiserver (server-side dry run) and their selectors are resolved by the
apiserver against the live pods and namespaces: the egress policy selects the operator's pods and reaches
Triton pods in tenant namespaces; the ingress policy selects a service's Triton pods and admits the operator.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from e2e.helpers import pause_isvc
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster.chart import SYSTEM_NS, helm


def _selector(sel: dict[str, Any]) -> str:
    """A LabelSelector as a label-selector string (the operators the chart uses)."""
    terms = [f"{k}={v}" for k, v in (sel.get("matchLabels") or {}).items()]
    for e in sel.get("matchExpressions") or []:
        op = e["operator"]
        terms.append(e["key"] if op == "Exists" else f"!{e['key']}" if op == "DoesNotExist" else f"{e['key']} {op.lower()} ({','.join(e['values'])})")
    return ",".join(terms)


def _names(kube: Kube, *args: str) -> set[str]:
    return {o["metadata"]["name"] for o in kube.get(*args)["items"]}


def test_network_policies_render_validate_and_select(operator: Kube, namespace: str) -> None:
    out = helm(None, "template", "foresail", str(REPO / "charts/foresail"), "-n", SYSTEM_NS, "--set=networkPolicy.enabled=true",
               f"--set=networkPolicy.namespaces={{{namespace}}}", "--show-only=templates/networkpolicy.yaml")  # fmt: skip
    assert out.returncode == 0, out.stderr
    egress, ingress = (d for d in yaml.safe_load_all(out.stdout) if d)
    for np in (egress, ingress):
        res = operator.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(np), check=False)
        assert res.returncode == 0, res.stderr
    assert (egress["metadata"]["namespace"], ingress["metadata"]["namespace"]) == (SYSTEM_NS, namespace)

    operator.kubectl("create", "configmap", "models", "-n", namespace, "--from-literal=README=pause")
    operator.create(pause_isvc("web", gpus=0, max_replicas=1), namespace)
    triton = wait_for("the service's pod", lambda: _names(operator, "pods", "-n", namespace, "-l", "foresail.dev/inferenceservice=web"), timeout=120)
    operators = _names(operator, "pods", "-n", SYSTEM_NS, "-l", "app.kubernetes.io/component=operator")
    assert len(operators) == 2

    # egress: from the operator's pods ...
    assert _names(operator, "pods", "-n", SYSTEM_NS, "-l", _selector(egress["spec"]["podSelector"])) == operators
    assert egress["spec"]["policyTypes"] == ["Egress"]
    # ... to Triton's ports in every namespace a tenant owns (not the operator's own)
    (to_triton,) = [r for r in egress["spec"]["egress"] if {p["port"] for p in r.get("ports", [])} == {8000, 8001, 8002}]
    peer = to_triton["to"][0]
    tenant_namespaces = _names(operator, "namespaces", "-l", _selector(peer["namespaceSelector"]))
    assert namespace in tenant_namespaces and SYSTEM_NS not in tenant_namespaces
    assert triton <= _names(operator, "pods", "-n", namespace, "-l", _selector(peer["podSelector"]))
    # ingress: Triton's pods, from the operator's pods in the release namespace
    assert triton <= _names(operator, "pods", "-n", namespace, "-l", _selector(ingress["spec"]["podSelector"]))
    from_operator = ingress["spec"]["ingress"][0]["from"][0]
    assert _names(operator, "namespaces", "-l", _selector(from_operator["namespaceSelector"])) == {SYSTEM_NS}
    assert _names(operator, "pods", "-n", SYSTEM_NS, "-l", _selector(from_operator["podSelector"])) == operators
    assert {p["port"] for p in ingress["spec"]["ingress"][1]["ports"]} == {8002}, "Prometheus scrapes the metrics port only"
