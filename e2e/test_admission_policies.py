"""Tenant rules enforced by the real kube-apiserver: the ValidatingAdmissionPolicies that the chart installs.

The cases, Tenants and namespaces are the fixtures in policies/admission/tests/. Each case is a
server-side dry-run create, so it runs the whole admission chain and stores nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e.admission import OPERATOR, POLICIES, POLICY, AdmissionCase, admission_cases, fixture_objects
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS, helm, own_namespace

CASES = admission_cases()
DENIED_BY = "ValidatingAdmissionPolicy 'foresail-"


def _dry_run_create(kube: Kube, namespace: str, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    out: subprocess.CompletedProcess[str] = kube.kubectl(
        "create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False
    )
    return out


def _isvc(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"model": {"name": "m", "repository": {"configMap": {"name": "m"}}}, "slo": {"p99LatencyMs": 100}, **spec},
    }


def _denied_as_expected(out: subprocess.CompletedProcess[str], case: AdmissionCase) -> bool:
    return out.returncode != 0 and DENIED_BY in out.stderr and any(m in out.stderr for m in case.denied)


def _helm_template(*args: str) -> list[dict[str, Any]]:
    out = helm(None, "template", "foresail", str(REPO / "charts/foresail"), *args)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def tenants(operator: Kube) -> Iterator[Kube]:
    """The fixture Namespaces and Tenants; removed afterwards."""
    objects = fixture_objects()
    try:
        operator.apply(objects)
        # the operator labels the owned namespaces; the apiserver loads the policy, resolves its paramKind and
        # syncs the Tenants asynchronously
        owners = {"vap-alpha": "vap-alpha", "vap-beta-prod": "vap-beta", "vap-gamma": "vap-gamma"}
        wait_for(
            "the operator labelling the owned namespaces",
            lambda: all((operator.get("namespace", ns)["metadata"].get("labels") or {}).get("foresail.dev/tenant") == t for ns, t in owners.items()),
            timeout=120,
            interval=0.5,
        )
        probe = next(c for c in CASES if c.denied and c.namespace == "vap-alpha")
        wait_for(
            f"the tenant rules to deny {probe.name!r}",
            lambda: _denied_as_expected(_dry_run_create(operator, probe.namespace, probe.obj), probe),
            timeout=120,
            interval=0.5,
        )
        yield operator
    finally:
        for o in objects:
            operator.kubectl(
                "delete", o["kind"].lower(), o["metadata"]["name"], "--wait=false", "--ignore-not-found", check=False
            )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_tenant_rules(tenants: Kube, case: AdmissionCase) -> None:
    out = _dry_run_create(tenants, case.namespace, case.obj)
    if not case.denied:
        assert out.returncode == 0, out.stderr
    else:
        assert _denied_as_expected(out, case), f"expected one of {case.denied}, got: {out.returncode} {out.stderr}"
        assert "is invalid" in out.stderr, out.stderr  # HTTP 422, like a schema error


def test_updates_are_judged_when_the_spec_changes(tenants: Kube, cluster: Cluster) -> None:
    """An object a Tenant change made invalid still takes metadata writes (the operator's) and deletion; spec edits are judged."""
    name = "vap-update"
    tenant = {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"namespaces": [name], "allowedPriorities": ["standard", "batch"], "gpus": [{"limit": 1}]},
    }
    tenants.kubectl("create", "namespace", name)
    try:
        own_namespace(cluster, tenant)
        tenants.create(_isvc(name, priority="batch", triton={"gpusPerReplica": 0}), name)
        tenants.kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec": {"allowedPriorities": ["standard"]}}')
        wait_for(
            "the Tenant change to reach the policy",
            lambda: _dry_run_create(tenants, name, _isvc("probe", priority="batch", triton={"gpusPerReplica": 0})).returncode,
            timeout=90,
        )
        tenants.kubectl("label", "fisvc", "-n", name, name, "team=x")
        tenants.kubectl("annotate", "fisvc", "-n", name, name, "note=kept")
        out = tenants.kubectl(
            "patch", "fisvc", "-n", name, name, "--type=merge", "-p", '{"spec": {"scaling": {"maxReplicas": 2}}}', check=False
        )
        assert out.returncode != 0 and 'spec.priority: "batch" is not allowed for tenant "vap-update"' in out.stderr, out.stderr
        tenants.kubectl("delete", "fisvc", "-n", name, name, "--timeout=120s")
    finally:
        tenants.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
        tenants.kubectl("delete", "tenant", name, "--wait=false", "--ignore-not-found", check=False)


def test_installed_policy_is_the_chart_copy(operator: Kube) -> None:
    (policy, binding) = (d for d in yaml.safe_load_all(POLICY.read_text()) if d)
    live = operator.get("validatingadmissionpolicy", "foresail-tenant-rules")
    for key in ("paramKind", "failurePolicy", "matchConditions", "variables", "validations"):
        assert live["spec"][key] == policy["spec"][key], key
    live_binding = operator.get("validatingadmissionpolicybinding", "foresail-tenant-rules")
    assert live_binding["spec"]["paramRef"] == binding["spec"]["paramRef"]
    assert live_binding["spec"]["validationActions"] == ["Deny"]


def test_chart_renders_the_policy_files_with_its_labels_and_identity() -> None:
    def policies(*args: str) -> list[dict[str, Any]]:
        return [d for d in _helm_template(*args) if d["kind"].startswith("ValidatingAdmissionPolicy")]

    rendered = policies("-n", SYSTEM_NS)
    for d in rendered:
        assert d["metadata"].pop("labels")["app.kubernetes.io/managed-by"] == "Helm"
    files = [d for p in POLICIES for d in yaml.safe_load_all(p.read_text()) if d]
    assert sorted(rendered, key=lambda d: (d["kind"], d["metadata"]["name"])) == sorted(files, key=lambda d: (d["kind"], d["metadata"]["name"]))
    elsewhere = json.dumps(policies("-n", "ops", "--set=serviceAccount.name=op"))
    assert OPERATOR not in elsewhere and "system:serviceaccount:ops:op" in elsewhere
    assert not policies("--set=admissionPolicies.enabled=false")
