"""The ``local`` StorageClass (the default) and its provisioner: each pending claim gets a hostPath volume,
a world-writable directory under the run directory (``pvcs/<namespace>/<claim>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hack.base.kube import Kube

__all__ = ["PROVISIONER", "STORAGE_CLASS", "ensure_storage_class", "provision_pending", "volume_for"]

STORAGE_CLASS = "local"
PROVISIONER = "foresail.dev/local-runtime"


def ensure_storage_class(kube: Kube) -> None:
    sc = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "Immediate",
    }
    if kube.api_get(f"/apis/storage.k8s.io/v1/storageclasses/{STORAGE_CLASS}") is None:
        kube.api("POST", "/apis/storage.k8s.io/v1/storageclasses", sc)


def volume_for(pvc: dict[str, Any], path: Path) -> dict[str, Any]:
    """The PersistentVolume bound to claim ``pvc``, backed by the directory ``path``."""
    md, spec = pvc["metadata"], pvc["spec"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{md['uid']}", "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STORAGE_CLASS,
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
            "claimRef": {"namespace": md["namespace"], "name": md["name"], "uid": md["uid"]},
        },
    }


def provision_pending(kube: Kube, root: Path) -> list[str]:
    """Create the volume of every unbound claim of the ``local`` class; returns what it provisioned."""
    done = []
    for pvc in kube.api("GET", "/api/v1/persistentvolumeclaims")["items"]:
        md, spec = pvc["metadata"], pvc["spec"]
        if spec.get("volumeName") or spec.get("storageClassName") != STORAGE_CLASS:
            continue
        path = root / md["namespace"] / md["name"]
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)  # any pod's user may write, as with local-path-provisioner's volumes
        pv = volume_for(pvc, path)
        if kube.api_get(f"/api/v1/persistentvolumes/{pv['metadata']['name']}") is None:
            kube.api("POST", "/api/v1/persistentvolumes", pv)
            done.append(f"{pv['metadata']['name']} for {md['namespace']}/{md['name']} at {path}")
    return done
