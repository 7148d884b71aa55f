"""``helm upgrade`` from the released chart (tests/fixtures/released/foresail) to this one, on the real apiserver.

Helm installs a chart's ``crds/`` only on the first install; the chart's pre-upgrade hook (``crds.upgrade``)
replaces them. The released chart is installed, with a Tenant and a pause InferenceService; its CRDs prune a
field that only the new schema has. After ``helm upgrade`` the CRDs carry the new schema (that field is kept),
the objects are as they were, the service's pods are the same ones with no restart, the operator scales the service on a spec change, and ``helm uninstall`` leaves
the CRDs and the objects in place.

The test owns the cluster's Foresail while it runs: the session's release (the ``operator`` fixture), if one
is installed, is uninstalled and the CRDs deleted first, and it is installed again afterwards.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.conftest import OPERATOR_VALUES
from e2e.helpers import pause_isvc
from foresail.api.objects import pod_is_live, pod_is_ready
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS, helm, install_foresail, own_namespace, tenant_manifest, upgrade_foresail

RELEASED = REPO / "tests/fixtures/released/foresail"
CRDS = ["inferenceservices.foresail.dev", "evaljobs.foresail.dev", "tenants.foresail.dev", "scalingpolicies.foresail.dev"]


def _installed(cluster: Cluster) -> bool:
    return helm(cluster, "status", "foresail", "-n", SYSTEM_NS).returncode == 0


def _uninstall(cluster: Cluster) -> None:
    out = helm(cluster, "uninstall", "foresail", "-n", SYSTEM_NS, "--wait", "--timeout=300s")
    assert out.returncode == 0, out.stderr
    cluster.kube.kubectl("delete", "namespace", SYSTEM_NS, "--wait=false", "--ignore-not-found", check=False)
    wait_for(
        f"namespace {SYSTEM_NS} gone",
        lambda: cluster.kube.kubectl("get", "namespace", SYSTEM_NS, check=False).returncode != 0,
        timeout=180,
        interval=0.5,
    )


@pytest.fixture
def no_release(cluster: Cluster) -> Iterator[Kube]:
    """No Foresail release and no Foresail CRDs; afterwards the session's release is back (this chart, the
    session's values) if it was installed before."""
    kube = cluster.kube
    had = _installed(cluster)
    if had:
        _uninstall(cluster)
    kube.kubectl("delete", "crd", *CRDS, "--ignore-not-found", "--timeout=180s")
    try:
        yield kube
    finally:
        if _installed(cluster):
            _uninstall(cluster)
        if had:
            install_foresail(cluster, OPERATOR_VALUES, restricted=True)


def _crd_spec_fields(kube: Kube) -> dict[str, Any]:
    crd = kube.get("crd", "inferenceservices.foresail.dev")
    props: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    return props


def _dry_run_spec(kube: Kube, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
    """What the apiserver would store for ``obj`` (server-side dry run: pruning, defaults, validation, admission),
    unknown fields pruned as for any client that does not ask for strict field validation (kubectl does)."""
    out = kube.kubectl("create", "-n", ns, "--dry-run=server", "--validate=false", "-o", "json", "-f", "-", input=json.dumps(obj))
    spec: dict[str, Any] = json.loads(out.stdout)["spec"]
    return spec


def _ready(kube: Kube, ns: str, name: str) -> int:
    return sum(1 for p in kube.pods(ns, f"foresail.dev/inferenceservice={name}") if pod_is_live(p) and pod_is_ready(p))


def _pods(kube: Kube, ns: str, name: str) -> dict[str, int]:
    """The service's live pods: uid -> restarts of its containers."""
    return {
        p["metadata"]["uid"]: sum(int(c.get("restartCount", 0)) for c in (p.get("status") or {}).get("containerStatuses") or [])
        for p in kube.pods(ns, f"foresail.dev/inferenceservice={name}")
        if pod_is_live(p)
    }


def _subset(old: Any, new: Any) -> bool:
    """Every value of ``old`` is in ``new`` as it was (``new`` may hold more: defaults of new fields)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and _subset(v, new[k]) for k, v in old.items())
    return bool(old == new)


def test_helm_upgrade_from_the_released_chart_upgrades_the_crds_and_keeps_the_objects(cluster: Cluster, no_release: Kube) -> None:
    kube = no_release
    t0 = time.monotonic()
    install_foresail(cluster, OPERATOR_VALUES, restricted=True, chart=RELEASED)
    print(f"[figure] released chart installed (helm install --wait): {time.monotonic() - t0:.1f} s")
    assert "rollout" not in _crd_spec_fields(kube), "the fixture's CRDs predate spec.rollout"

    ns = f"u-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", ns)
    cluster.wait_default_service_account(ns)
    kube.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
    own_namespace(cluster, tenant_manifest(ns, [ns], limit=4))
    try:
        kube.create(pause_isvc("up", min_replicas=1, max_replicas=4), ns)
        wait_for("the service's replica Ready under the released chart", lambda: _ready(kube, ns, "up") == 1, timeout=180, interval=0.5)
        probe = pause_isvc("probe", rollout={"action": "Promote"})
        assert "rollout" not in _dry_run_spec(kube, ns, probe), "the released CRD prunes spec.rollout"
        before = {k: kube.get(k, *(["-n", ns] if k == "fisvc" else []), n) for k, n in (("fisvc", "up"), ("tenant", ns))}
        pods_before = _pods(kube, ns, "up")

        t1 = time.monotonic()
        upgrade_foresail(cluster, OPERATOR_VALUES, reuse="--reset-then-reuse-values")
        upgrade_s = time.monotonic() - t1
        print(f"[figure] helm upgrade --wait to this chart (CRD hook Job + operator rollout): {upgrade_s:.1f} s")

        fields = _crd_spec_fields(kube)
        assert "rollout" in fields, "helm upgrade left the released CRD"
        crd = kube.get("crd", "inferenceservices.foresail.dev")
        assert crd["metadata"]["generation"] >= 2 and crd["spec"]["versions"][0]["storage"]
        assert crd["status"]["storedVersions"] == ["v1alpha1"]
        kept = wait_for(
            "spec.rollout kept by the new schema (server-side dry run)",
            lambda: _dry_run_spec(kube, ns, probe).get("rollout"),
            timeout=30,
            interval=0.5,
        )
        assert kept.get("action") == "Promote"
        assert kube.kubectl("get", "job", "-n", SYSTEM_NS, "foresail-crd-upgrade", check=False).returncode != 0, "hook Job deleted"
        assert kube.kubectl("get", "clusterrole", "foresail-crd-upgrade", check=False).returncode != 0, "hook RBAC deleted"

        for (kind, name), old in zip((("fisvc", "up"), ("tenant", ns)), before.values(), strict=True):
            new = kube.get(kind, *(["-n", ns] if kind == "fisvc" else []), name)
            assert new["metadata"]["uid"] == old["metadata"]["uid"], kind
            assert _subset(old["spec"], new["spec"]), (kind, old["spec"], new["spec"])
            added = sorted(set(new["spec"]) - set(old["spec"]))
            print(f"[figure] {kind} {name}: same uid and spec after the upgrade (fields added by new defaults: {added or 'none'})")

        # the upgrade (the CRD hook, the operator's own rollout, its first passes) leaves the model pods alone:
        # same pods, no container restarted, still Ready (the fixture's operator runs this image, so a release
        # whose pod rendering changed - a new pod field - would roll them once: README, "Replicas drain")
        assert _pods(kube, ns, "up") == pods_before, (pods_before, _pods(kube, ns, "up"))
        assert _ready(kube, ns, "up") == 1
        print(f"[figure] the service's pods after the upgrade: the same {len(pods_before)}, 0 restarts")

        t2 = time.monotonic()
        kube.kubectl("patch", "fisvc", "-n", ns, "up", "--type=merge", "-p", json.dumps({"spec": {"scaling": {"minReplicas": 2}}}))
        wait_for("the upgraded operator scaling the service to 2 Ready replicas", lambda: _ready(kube, ns, "up") == 2, timeout=180, interval=0.5)
        print(f"[figure] spec change to 2 Ready replicas after the upgrade: {time.monotonic() - t2:.1f} s")

        _uninstall(cluster)
        for name in CRDS:
            assert kube.kubectl("get", "crd", name, check=False).returncode == 0, f"helm uninstall deleted {name}"
        assert "rollout" in _crd_spec_fields(kube)
        assert kube.get("fisvc", "-n", ns, "up")["metadata"]["uid"] == before["fisvc"]["metadata"]["uid"]
        assert kube.get("tenant", ns)["metadata"]["uid"] == before["tenant"]["metadata"]["uid"]
        assert kube.kubectl("get", "scalingpolicies", "-o", "name").stdout.strip(), "the presets are still there"
        print("[figure] helm uninstall: 4/4 CRDs, the InferenceService, the Tenant and the presets left in place")
    finally:
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        kube.kubectl("delete", "tenant", ns, "--wait=false", "--ignore-not-found", check=False)
