"""The operator cannot be turned into cluster-admin (issue 16): impersonating its ServiceAccount
(``kubectl --as``), every write its RBAC allows but that is not Foresail's own business is refused by the
ValidatingAdmissionPolicy foresail-operator-guard, and the writes it needs still pass (the whole suite runs
under the same RBAC and policy). Every write is a server-side dry run: admission runs, nothing is stored.

Before (main's chart), each "refused" case below was admitted: the ClusterRole alone let the operator
create Deployments, Roles and RoleBindings anywhere, patch every ConfigMap, pod and pods/status, and scale
any Deployment. Also here: the RBAC of a ``watchNamespaces`` install, checked by the apiserver.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from e2e.helpers import pause_deployment, pause_isvc
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS, helm, own_namespace, tenant_manifest

SA = f"system:serviceaccount:{SYSTEM_NS}:foresail"
AS_OPERATOR = [f"--as={SA}"]
GUARD = "ValidatingAdmissionPolicy 'foresail-operator-guard'"


@dataclass(frozen=True)
class World:
    ns: str
    isvc_uid: str
    foresail_pod: str
    user_pod: str


def _foresail_meta(name: str, w: World, kind: str = "InferenceService", owner: str = "web") -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"app.kubernetes.io/managed-by": "foresail"},
        "ownerReferences": [{"apiVersion": "foresail.dev/v1alpha1", "kind": kind, "name": owner, "uid": w.isvc_uid}],
    }


@pytest.fixture(scope="module")
def world(operator: Kube, cluster: Cluster) -> Iterator[World]:
    """An owned namespace with a Foresail service (one pause replica), a user's Deployment, ConfigMap and pod."""
    ns = f"guard-{uuid.uuid4().hex[:6]}"
    operator.kubectl("create", "namespace", ns)
    cluster.wait_default_service_account(ns)
    own_namespace(cluster, tenant_manifest(ns, [ns], limit=8))
    operator.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
    operator.kubectl("create", "configmap", "user-cm", "-n", ns, "--from-literal=k=v")
    operator.create(pause_deployment("user-app", 1), ns)
    operator.create(pause_isvc("web", gpus=0, max_replicas=1), ns)
    uid = operator.get("fisvc", "-n", ns, "web")["metadata"]["uid"]
    # the eval workers' Role the RoleBinding cases bind (the apiserver checks the binder holds its rules); owned
    # by the service, which exists, so that the garbage collector keeps it
    role = _role(World(ns, uid, "", ""), WORKER_RULES, name="r")
    role["metadata"]["ownerReferences"][0]["kind"] = "InferenceService"
    operator.create(role, ns)
    fpod = wait_for("the service's pod", lambda: next(iter(operator.pods(ns, "foresail.dev/inferenceservice=web")), None), timeout=120)
    upod = wait_for("the user's pod", lambda: next(iter(operator.pods(ns, "app=user-app")), None), timeout=120)
    yield World(ns, uid, fpod["metadata"]["name"], upod["metadata"]["name"])
    operator.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    operator.kubectl("delete", "tenant", ns, "--wait=false", "--ignore-not-found", check=False)


def _create(w: World, obj: dict[str, Any]) -> list[str]:
    return ["create", "--dry-run=server", "-n", w.ns, "-f", "-", json.dumps(obj)]


def _deployment(w: World, **pod: Any) -> dict[str, Any]:
    d = pause_deployment("d", 1, **pod)
    d["metadata"] = _foresail_meta("d", w)
    return d


def _role(w: World, rules: list[dict[str, Any]], name: str = "r2") -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _foresail_meta(name, w, "EvalJob"), "rules": rules}


def _job(w: World, sa: str) -> dict[str, Any]:
    pod = pause_deployment("j", 1)["spec"]["template"]
    pod["spec"].update(restartPolicy="Never", serviceAccountName=sa)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _foresail_meta("j", w, "EvalJob"), "spec": {"template": pod}}


def _eval_job(w: World, labelled: bool = True) -> dict[str, Any]:
    """A rollout's evaluation EvalJob as the autoscaler creates it (rollout.evaluation), owned by the service."""
    md = _foresail_meta("web-eval-aaaaaaaa", w)
    if labelled:
        md["labels"]["foresail.dev/rollout-evaluation"] = "stable"
    spec = {"target": {"inferenceService": "web", "revision": "aaaaaaaaaa"}, "dataset": {"configMap": {"name": "models"}}}
    return {"apiVersion": "foresail.dev/v1alpha1", "kind": "EvalJob", "metadata": md, "spec": spec}


def _patch(kind: str, name: str, patch: dict[str, Any]) -> list[str]:
    return ["patch", "--dry-run=server", kind, name, "--type=merge", "-p", json.dumps(patch)]


def _status(w: World, cond: str) -> list[str]:
    """A strategic merge patch of one condition (merged by type, as the operator writes it)."""
    patch = {"status": {"conditions": [{"type": cond, "status": "False", "reason": "Test"}]}}
    return ["patch", "--dry-run=server", "pod", w.foresail_pod, "--subresource=status", "--type=strategic", "-p", json.dumps(patch)]


def _quota(w: World) -> list[str]:
    return _create(w, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"}, "spec": {"hard": {"pods": "0"}}})


def _binding(w: World, subject: str) -> list[str]:
    return _create(
        w,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _foresail_meta("r", w, "EvalJob"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": subject, "namespace": w.ns}],
        },
    )


OWNED = "labelled app.kubernetes.io/managed-by=foresail and owned by a Foresail object"
WORKER_RULES = [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["progress"], "verbs": ["get", "patch"]}]
IMAGE = '[{"op": "replace", "path": "/spec/containers/0/image", "value": "evil:1"}]'
# (name, kubectl arguments for the world (for create: the object last, as stdin), a substring of the refusal or None: allowed)
CASES: list[tuple[str, Callable[[World], list[str]], str | None]] = [
    ("a Deployment that is not Foresail's", lambda w: _create(w, pause_deployment("x", 1)), OWNED),
    ("adopting a user's Deployment", lambda w: _patch("deployment", "user-app", {"metadata": _foresail_meta("user-app", w)}), OWNED),
    ("deleting a user's Deployment", lambda w: ["delete", "--dry-run=server", "deployment", "user-app"], OWNED),
    ("a pod template with a hostPath volume", lambda w: _create(w, _deployment(w, volumes=[{"name": "h", "hostPath": {"path": "/"}}])), "hostPath"),
    ("a pod template on the host network", lambda w: _create(w, _deployment(w, hostNetwork=True)), "host namespaces"),
    ("a Job running as another ServiceAccount", lambda w: _create(w, _job(w, "default")), "worker ServiceAccount"),
    ("changing a user's ConfigMap", lambda w: _patch("configmap", "user-cm", {"data": {"k": "x"}}), OWNED),
    ("a ResourceQuota that is not Foresail's", _quota, OWNED),
    ("a Role granting pods", lambda w: _create(w, _role(w, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}])), "Roles may only"),
    ("a RoleBinding to another ServiceAccount", lambda w: _binding(w, "default"), "RoleBindings may only"),
    ("a user's pod's annotations", lambda w: _patch("pod", w.user_pod, {"metadata": {"annotations": {"x": "y"}}}), "pods of Foresail's"),
    ("a Foresail pod's image", lambda w: ["patch", "--dry-run=server", "pod", w.foresail_pod, "--type=json", "-p", IMAGE], "deletion cost"),
    ("a Foresail pod's labels", lambda w: _patch("pod", w.foresail_pod, {"metadata": {"labels": {"x": "y"}}}), "deletion cost"),
    ("another condition in pods/status", lambda w: _status(w, "Ready"), "foresail.dev/warm"),
    ("scaling a user's Deployment", lambda w: ["scale", "--dry-run=server", "deployment", "user-app", "--replicas=0"], "Deployments of InferenceServices"),
    ("another label on a namespace", lambda w: ["label", "--dry-run=server", "namespace", w.ns, "x=y"], "foresail.dev/tenant label"),
    ("changing a user's InferenceService spec", lambda w: _patch("fisvc", "web", {"spec": {"priority": "batch"}}), "only the metadata"),
    ("an EvalJob that is not a rollout's evaluation", lambda w: _create(w, _eval_job(w, labelled=False)), "only the metadata"),
    # what the operator does every day
    ("its own Deployment", lambda w: _create(w, _deployment(w)), None),
    ("its eval workers' ConfigMap", lambda w: _create(w, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _foresail_meta("progress", w, "EvalJob")}), None),
    ("its eval workers' Role", lambda w: _create(w, _role(w, WORKER_RULES)), None),
    ("its eval workers' RoleBinding", lambda w: _binding(w, "r"), None),
    ("its eval workers' Job", lambda w: _create(w, _job(w, "j-worker")), None),
    ("a Foresail pod's deletion cost", lambda w: _patch("pod", w.foresail_pod, {"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "1000"}}}), None),
    ("the warm condition in pods/status", lambda w: _status(w, "foresail.dev/warm"), None),
    ("scaling its own Deployment", lambda w: ["scale", "--dry-run=server", "deployment", "web", "--replicas=1"], None),
    ("metadata of a user's InferenceService", lambda w: _patch("fisvc", "web", {"metadata": {"annotations": {"foresail.dev/x": "y"}}}), None),
    ("a rollout's evaluation EvalJob", lambda w: _create(w, _eval_job(w)), None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "args", "refused"), CASES, ids=[c[0] for c in CASES])
def test_operator_writes(operator: Kube, world: World, name: str, args: Callable[[World], list[str]], refused: str | None) -> None:
    argv = args(world)
    stdin = None
    if argv[0] == "create":
        argv, stdin = argv[:-1], argv[-1]
    out = operator.kubectl(*AS_OPERATOR, "-n", world.ns, *argv, input=stdin, check=False)
    if refused is None:
        assert out.returncode == 0, f"{name}: refused: {out.stderr}"
    else:
        assert out.returncode != 0, f"{name}: admitted"
        assert GUARD in out.stderr and refused in out.stderr, f"{name}: {out.stderr}"


def test_watch_namespaces_rbac(operator: Kube, world: World) -> None:
    """A watchNamespaces install: writes only in the watched namespace, reads cluster-wide (the chart's RBAC of
    another release, applied and judged by the apiserver's authorizer)."""
    out = helm(None, "template", "w", str(REPO / "charts/foresail"), "-n", SYSTEM_NS, f"--set=watchNamespaces={{{world.ns}}}",
               "--show-only=templates/rbac.yaml")  # fmt: skip
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert {d["kind"] for d in docs if d["metadata"].get("namespace") == world.ns} == {"Role", "RoleBinding"}
    sa = f"system:serviceaccount:{SYSTEM_NS}:w-foresail"
    try:
        operator.apply(docs)

        def can(*args: str) -> bool:
            return operator.kubectl("auth", "can-i", f"--as={sa}", *args, check=False).stdout.strip() == "yes"

        wait_for("the Role in force", lambda: can("create", "deployments", "-n", world.ns), timeout=30)
        assert not can("create", "deployments", "-n", "default"), "writes outside the watched namespaces"
        assert not can("patch", "configmaps", "-n", "kube-system")
        assert can("list", "pods", "--all-namespaces"), "the arbiter reads every pod"
        assert can("patch", f"namespace/{world.ns}") and not can("patch", "namespace/default")
        assert not can("get", "secrets", "-n", world.ns)
    finally:
        for d in docs:
            md = d["metadata"]
            operator.kubectl("delete", d["kind"], md["name"], *(["-n", md["namespace"]] if md.get("namespace") else []),
                             "--ignore-not-found", check=False)  # fmt: skip
