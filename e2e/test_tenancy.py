"""Tenancy without escape hatches, on the real apiserver and operator (issue 16). Each test is a hole that
was open before (the chart and operator of main: the object was admitted, the pod created, the quota
passed) and is closed now:

* strict mode: a Foresail object in a namespace no Tenant owns is refused, naming the fix;
* a service whose Tenant does not exist (deleted, or never there) is granted no GPUs;
* foresail-* PriorityClasses only within what the namespace's tenant allows, for plain pods and
  Deployments, impersonating a tenant's user (``kubectl --as``);
* two namespaces of one tenant creating GPU pods at the same moment cannot pass the tenant's limit;
* dataset, output and model paths with ``..`` or absolute are refused at admission;
* open mode: the default tenant's quota and priorities apply to every namespace no Tenant owns.

GPU pods are pause containers (kwok simulates them): what is under test is admission and arbitration.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from e2e.helpers import pause_deployment, pause_isvc
from foresail.api.objects import condition, pod_is_live
from hack.base.kube import Kube, KubeError
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import own_namespace, tenant_manifest, upgrade_foresail

USER = ["--as=alice@example.com", "--as-group=team-x"]  # a tenant's user: `edit` in the team's namespaces


def _isvc(name: str, priority: str = "standard", min_replicas: int = 1, tenant: str | None = None, **spec: Any) -> dict[str, Any]:
    if tenant:
        spec["tenant"] = tenant
    return pause_isvc(name, min_replicas=min_replicas, priority=priority, **spec)


def _pod(name: str, priority_class: str | None = None, gpus: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = pause_deployment(name, 1, gpus=gpus, priority_class=priority_class)["spec"]["template"]["spec"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}}, "spec": spec}


def _new_namespace(kube: Kube, cluster: Cluster, prefix: str) -> str:
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", ns)
    cluster.wait_default_service_account(ns)
    # the team's users may edit the namespace (the built-in role; Foresail's resources aggregate into it)
    kube.kubectl("create", "rolebinding", "team-x-edit", "-n", ns, "--clusterrole=edit", "--group=team-x")
    return ns


@pytest.fixture
def team(operator: Kube, cluster: Cluster) -> Iterator[tuple[str, str]]:
    """A namespace owned by a tenant allowing [standard, batch] (limit 4 GPUs), and one no tenant owns."""
    owned = _new_namespace(operator, cluster, "team")
    free = _new_namespace(operator, cluster, "free")
    own_namespace(cluster, tenant_manifest(owned, [owned], limit=4, priorities=("standard", "batch")))
    yield owned, free
    for ns in (owned, free):
        operator.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    operator.kubectl("delete", "tenant", owned, "--wait=false", "--ignore-not-found", check=False)


def test_strict_mode_refuses_foresail_objects_where_no_tenant_owns_the_namespace(operator: Kube, team: tuple[str, str]) -> None:
    owned, free = team
    out = operator.create(_isvc("web"), free, check=False)  # the cluster admin is no exception
    assert out.returncode != 0, "admitted in a namespace no Tenant owns"
    assert f'metadata.namespace: namespace "{free}" belongs to no Tenant' in out.stderr, out.stderr
    assert "list it in a Tenant's spec.namespaces" in out.stderr and "tenancy.mode=open" in out.stderr, out.stderr
    evj = {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "EvalJob",
        "metadata": {"name": "e"},
        "spec": {"target": {"inferenceService": "web"}, "dataset": {"configMap": {"name": "d"}}},
    }
    assert "belongs to no Tenant" in operator.create(evj, free, check=False).stderr
    # the tenant's user creates services where the tenant owns the namespace (edit aggregates Foresail's roles)
    assert operator.kubectl(*USER, "create", "--dry-run=server", "-n", owned, "-f", "-", input=json.dumps(_isvc("web"))).returncode == 0
    # the owner label is the operator's alone: not even the cluster admin claims a namespace with it
    out = operator.kubectl("label", "namespace", free, f"foresail.dev/tenant={owned}", check=False)
    assert out.returncode != 0, "a namespace was claimed for a tenant by hand"
    assert "metadata.labels[foresail.dev/tenant] is set by the Foresail operator alone" in out.stderr, out.stderr


def test_a_service_whose_tenant_is_gone_is_granted_nothing(operator: Kube, cluster: Cluster) -> None:
    ns = _new_namespace(operator, cluster, "gone")
    owner = f"{ns}-t"
    try:
        operator.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
        own_namespace(cluster, tenant_manifest(owner, [ns], limit=8))
        operator.create(_isvc("named", min_replicas=2, tenant=owner), ns)
        operator.create(_isvc("inferred", min_replicas=2), ns)
        wait_for(
            "both services at 2 replicas",
            lambda: all(operator.get("deployment", "-n", ns, n)["spec"].get("replicas") == 2 for n in ("named", "inferred")),
            timeout=120,
            interval=1,
        )
        operator.kubectl("delete", "tenant", owner)

        def capped(name: str, message: str) -> bool:
            dep = operator.get("deployment", "-n", ns, name)
            c = condition(operator.get("fisvc", "-n", ns, name), "QuotaLimited") or {}
            return dep["spec"].get("replicas") == 0 and c.get("reason") == "TenantNotFound" and message in c.get("message", "")

        wait_for("the service naming the deleted tenant at 0", lambda: capped("named", f"tenant {owner!r} does not exist"), timeout=90)
        wait_for("the service of the unowned namespace at 0", lambda: capped("inferred", "no Tenant owns the namespace"), timeout=90)
    finally:
        operator.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        operator.kubectl("delete", "tenant", owner, "--wait=false", "--ignore-not-found", check=False)


def test_priority_classes_only_within_what_the_tenant_allows(operator: Kube, team: tuple[str, str]) -> None:
    owned, free = team
    out = operator.kubectl(*USER, "create", "-n", owned, "-f", "-", input=json.dumps(_pod("crit", "foresail-critical")), check=False)
    assert out.returncode != 0, "a tenant's user ran a pod at a priority the tenant does not allow"
    assert f'spec.priorityClassName: "foresail-critical" is not allowed in namespace "{owned}"' in out.stderr, out.stderr
    assert "allows foresail-standard, foresail-batch" in out.stderr, out.stderr
    operator.kubectl(*USER, "create", "-n", owned, "-f", "-", input=json.dumps(_pod("std", "foresail-standard")))
    operator.kubectl(*USER, "create", "-n", owned, "-f", "-", input=json.dumps(_pod("plain")))
    # a Deployment is admitted; its pods are not
    operator.kubectl(*USER, "create", "-n", owned, "-f", "-", input=json.dumps(pause_deployment("dcrit", 2, priority_class="foresail-critical")))
    wait_for(
        "the ReplicaSet refused its pods",
        lambda: any(
            c.get("type") == "ReplicaFailure" and "is not allowed in namespace" in (c.get("message") or "")
            for rs in operator.get("replicaset", "-n", owned, "-l", "app=dcrit")["items"]
            for c in rs.get("status", {}).get("conditions", [])
        ),
        timeout=60,
    )
    assert not operator.pods(owned, "app=dcrit")
    # where no tenant owns the namespace, no foresail-* class at all
    out = operator.kubectl(*USER, "create", "-n", free, "-f", "-", input=json.dumps(_pod("b", "foresail-batch")), check=False)
    assert out.returncode != 0 and 'spec.priorityClassName: "foresail-batch" is only for namespaces a Tenant owns' in out.stderr, out.stderr


def test_two_namespaces_racing_cannot_pass_the_tenant_limit(operator: Kube, cluster: Cluster) -> None:
    """Tenant limit 4 GPUs over two namespaces; 8 one-GPU pods created at the same moment, 4 in each."""
    limit = 4
    nss = [_new_namespace(operator, cluster, f"race{i}") for i in (1, 2)]
    name = nss[0] + "-t"
    try:
        own_namespace(cluster, tenant_manifest(name, nss, limit=limit))

        def hard(ns: str) -> int:
            return int(operator.get("resourcequota", "-n", ns, "foresail-tenant-gpus")["spec"]["hard"]["requests.nvidia.com/gpu"])

        wait_for("room in both namespaces' backstops", lambda: all(hard(ns) > 0 for ns in nss), timeout=60)

        def create(args: tuple[str, int]) -> str:
            ns, i = args
            try:
                operator.api("POST", f"/api/v1/namespaces/{ns}/pods", _pod(f"gpu-{i}", gpus=1))
                return "admitted"
            except KubeError as e:
                return "refused" if e.code == 403 and "exceeded quota: foresail-tenant-gpus" in e.message else e.message

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(create, [(ns, i) for ns in nss for i in range(limit)]))
        assert set(answers) <= {"admitted", "refused"}, answers
        admitted = answers.count("admitted")
        live = sum(1 for ns in nss for p in operator.pods(ns) if pod_is_live(p))
        quotas = [hard(ns) for ns in nss]
        print(f"race: {admitted} of {2 * limit} pods admitted; quotas {quotas} (limit {limit})")
        assert admitted == live <= limit, f"{admitted} GPU pods admitted against a limit of {limit}; quotas {quotas}"
        assert sum(quotas) <= limit
    finally:
        for ns in nss:
            operator.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        operator.kubectl("delete", "tenant", name, "--wait=false", "--ignore-not-found", check=False)


PATHS = [
    ("model subPath climbing out", "isvc", {"model": {"name": "m", "repository": {"pvc": {"claimName": "c", "subPath": "../../etc"}}}}, "subPath"),
    ("model subPath absolute", "isvc", {"model": {"name": "m", "repository": {"pvc": {"claimName": "c", "subPath": "/etc"}}}}, "subPath"),
    (
        "configMap item path climbing out",
        "isvc",
        {"model": {"name": "m", "repository": {"configMap": {"name": "c", "items": [{"key": "k", "path": "m/../../x"}]}}}},
        "items[0].path",
    ),
    ("dataset path climbing out", "evj", {"dataset": {"pvc": {"claimName": "d", "path": "data/../../etc/shadow"}}}, "dataset.pvc.path"),
    ("outputs path climbing out", "evj", {"outputs": {"pvc": {"claimName": "o", "path": ".."}}}, "outputs.pvc.path"),
]


@pytest.mark.parametrize(("name", "kind", "spec", "field"), PATHS, ids=[p[0] for p in PATHS])
def test_paths_are_refused_at_admission(operator: Kube, namespace: str, name: str, kind: str, spec: dict[str, Any], field: str) -> None:
    if kind == "isvc":
        obj = _isvc("p", **spec)
    else:
        base = {"target": {"inferenceService": "web"}, "dataset": {"configMap": {"name": "d"}}}
        obj = {"apiVersion": "foresail.dev/v1alpha1", "kind": "EvalJob", "metadata": {"name": "p"}, "spec": {**base, **spec}}
    out = operator.kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)
    assert out.returncode != 0, f"{name}: admitted"
    assert "is invalid" in out.stderr and field in out.stderr, out.stderr
    fine = json.loads(json.dumps(obj).replace("../../etc/shadow", "data/items.jsonl").replace("m/../../x", "m/1/model.py"))
    if fine != obj:
        assert operator.kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(fine)).returncode == 0


@pytest.fixture
def open_mode(operator: Kube, cluster: Cluster) -> Iterator[str]:
    """The chart upgraded to tenancy mode open (default tenant: limit 2 GPUs, standard and batch), then back to strict."""
    upgrade_foresail(cluster, {"tenancy.mode": "open", "tenancy.defaultTenant.gpus[0].limit": "2"})
    try:
        yield "default"
    finally:
        upgrade_foresail(cluster, {"tenancy.mode": "strict"})
        wait_for(
            "strict again: no namespace left to the default tenant",
            lambda: not operator.get("namespaces", "-l", "foresail.dev/tenant=default")["items"],
            timeout=120,
        )


def test_open_mode_the_default_tenant_covers_untenanted_namespaces(operator: Kube, cluster: Cluster, open_mode: str) -> None:
    ns = _new_namespace(operator, cluster, "open")
    try:
        wait_for(
            "the namespace labelled for the default tenant",
            lambda: (operator.get("namespace", ns)["metadata"].get("labels") or {}).get("foresail.dev/tenant") == open_mode,
            timeout=90,
        )
        operator.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
        out = operator.create(_isvc("crit", priority="critical"), ns, check=False)
        assert out.returncode != 0 and f'is not allowed for tenant "{open_mode}"' in out.stderr, out.stderr
        out = operator.kubectl(*USER, "create", "-n", ns, "-f", "-", input=json.dumps(_pod("c", "foresail-critical")), check=False)
        assert out.returncode != 0 and "is not allowed in namespace" in out.stderr, out.stderr
        operator.create(_isvc("web", min_replicas=3), ns)

        def limited() -> bool:
            c = condition(operator.get("fisvc", "-n", ns, "web"), "QuotaLimited") or {}
            return c.get("reason") == "QuotaExceeded" and "grants 2 of 3" in c.get("message", "")

        wait_for("the default tenant's limit of 2 applied", limited, timeout=90)
        # the reconciler creates the Deployment at minReplicas (3) and may do so after the first grant: the
        # next pass caps it again, so wait for the state rather than read one moment
        wait_for("the Deployment capped at the grant", lambda: operator.get("deployment", "-n", ns, "web")["spec"]["replicas"] == 2, timeout=60)
        wait_for(
            "the default tenant's backstop in the namespace",
            lambda: operator.get("resourcequota", "-n", ns, "foresail-tenant-gpus")["spec"]["hard"].get("requests.nvidia.com/gpu") == "2",
            timeout=60,
        )
    finally:
        operator.kubectl("delete", "namespace", ns, "--wait=false", check=False)
