"""Foresail installed into a local cluster the way a user does it: the Helm chart, then the scaling presets."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from hack import tools
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster.cluster import Cluster
from hack.testbed.runtime.images import FORESAIL_IMAGE

__all__ = ["SYSTEM_NS", "helm", "install_foresail", "own_namespace", "tenant_manifest", "uninstall_foresail", "upgrade_foresail"]

SYSTEM_NS = "foresail-system"


def helm(cluster: Cluster | None, *args: str) -> subprocess.CompletedProcess[str]:
    """The pinned helm, against ``cluster`` (None: commands that need none, ``lint`` and ``template``); not
    checked: callers look at the return code."""
    h = tools.TOOLS_BY_NAME["kubectl"].dir / "bin/helm"
    kubeconfig = [f"--kubeconfig={cluster.kubeconfig}"] if cluster else []
    return subprocess.run([str(h), *kubeconfig, *args], capture_output=True, text=True, check=False)


def install_foresail(
    cluster: Cluster, values: dict[str, str], timeout_s: int = 300, restricted: bool = False, chart: Path = REPO / "charts/foresail"
) -> None:
    """``helm install foresail`` into ``foresail-system`` (the chart's default Prometheus URL, the digest of the operator image
    the cluster's registry holds, ``values`` as ``--set``),
    waiting until its pods are Ready, then the scaling presets. ``restricted``: the namespace enforces Pod
    Security Standards ``restricted``. ``chart``: another chart directory (a released one)."""
    kube = cluster.kube
    kube.kubectl("create", "namespace", SYSTEM_NS)
    if restricted:
        kube.kubectl("label", "namespace", SYSTEM_NS, "pod-security.kubernetes.io/enforce=restricted",
                     "pod-security.kubernetes.io/enforce-version=latest")  # fmt: skip
    pinned = {}
    built = {ref.rsplit(":", 1)[0]: digest for ref, digest in (cluster.state.images if cluster.state else {}).items()}
    if FORESAIL_IMAGE in built:  # the operator image this cluster's registry holds (what make test just built)
        pinned["image.digest"] = built[FORESAIL_IMAGE]
    # the chart's default prometheus.url: monitoring/prometheus-operated, the cluster's headless Service for its Prometheus
    sets = [f"--set={k}={v}" for k, v in {**pinned, **values}.items()]
    out = helm(
        cluster, "install", "foresail", str(chart), "-n", SYSTEM_NS, "--wait", f"--timeout={timeout_s}s", *sets
    )
    if out.returncode != 0:
        raise RuntimeError(f"helm install foresail failed: {out.stderr.strip()}")
    kube.kubectl("apply", "-f", str(REPO / "policies/scaling"))


def upgrade_foresail(cluster: Cluster, values: dict[str, str], timeout_s: int = 300, reuse: str = "--reuse-values") -> None:
    """``helm upgrade --reuse-values`` of the installed release to this chart with ``values`` as ``--set``, waiting
    until the new operator pods are Ready (they lead once the old leader's lease lapses). ``reuse``:
    ``--reset-then-reuse-values`` for an upgrade from another chart version (its defaults, the release's values)."""
    sets = [f"--set={k}={v}" for k, v in values.items()]
    out = helm(cluster, "upgrade", "foresail", str(REPO / "charts/foresail"), "-n", SYSTEM_NS, reuse, "--wait", f"--timeout={timeout_s}s", *sets)
    if out.returncode != 0:
        raise RuntimeError(f"helm upgrade foresail {' '.join(sets)} failed: {out.stderr.strip()}")


def uninstall_foresail(cluster: Cluster) -> None:
    helm(cluster, "uninstall", "foresail", "-n", SYSTEM_NS, "--wait")
    cluster.kube.kubectl("delete", "namespace", SYSTEM_NS, "--wait=false", check=False)


def tenant_manifest(
    name: str, namespaces: list[str], limit: int, guaranteed: int = 0, priorities: tuple[str, ...] = ("critical", "standard", "batch")
) -> dict[str, Any]:
    """A Tenant owning ``namespaces`` with one any-product nvidia.com/gpu quota."""
    return {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {
            "namespaces": namespaces,
            "gpus": [{"resource": "nvidia.com/gpu", "guaranteed": guaranteed, "limit": limit}],
            "allowedPriorities": list(priorities),
        },
    }


def own_namespace(cluster: Cluster, tenant: dict[str, Any], timeout_s: float = 120) -> None:
    """Apply ``tenant`` and wait until the operator has taken each of its namespaces over (tenancy mode strict
    admits Foresail objects only there): the owner label set and the backstop ResourceQuota counted."""
    cluster.kube.apply(tenant)
    name = tenant["metadata"]["name"]
    for ns in tenant["spec"]["namespaces"]:

        def taken(ns: str = ns) -> bool:
            labels = cluster.kube.get("namespace", ns)["metadata"].get("labels") or {}
            quota = cluster.kube.api_get(f"/api/v1/namespaces/{ns}/resourcequotas/foresail-tenant-gpus") or {}
            hard = (quota.get("status") or {}).get("hard") or {}
            return labels.get("foresail.dev/tenant") == name and hard == (quota.get("spec") or {}).get("hard")

        wait_for(f"the operator taking namespace {ns} over for tenant {name}", taken, timeout=timeout_s, interval=0.5)
