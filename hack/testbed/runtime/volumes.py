"""Volume sources as local directories: configMap, secret, emptyDir (a tmpfs of its ``sizeLimit`` with medium
Memory), persistentVolumeClaim, hostPath, projected (service-account token from the TokenRequest API,
configMaps, secrets, downward API) and downwardAPI, owned by the pod's ``fsGroup`` as the kubelet does; and
the environment values that come from the same sources (``valueFrom``, ``envFrom``)."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

from hack.base.kube import Kube, KubeError
from hack.testbed.runtime.ocispec import quantity

__all__ = ["VolumeNotReady", "Volumes"]


class VolumeNotReady(Exception):
    """A source the pod needs does not exist (yet): the pod waits, with a FailedMount event."""


class Volumes:
    def __init__(self, kube: Kube, host_ip: str) -> None:
        self.kube = kube
        self.host_ip = host_ip

    def materialise(self, pod: dict[str, Any], root: Path, ip: str) -> dict[str, Path]:
        """Each volume of ``pod`` as a host path (files written under ``root/<volume>``), by volume name."""
        ns = pod["metadata"]["namespace"]
        out: dict[str, Path] = {}
        for v in pod["spec"].get("volumes") or []:
            if "persistentVolumeClaim" in v:
                out[v["name"]] = self.claim_dir(ns, v["persistentVolumeClaim"]["claimName"])
                continue
            if "hostPath" in v:
                out[v["name"]] = Path(v["hostPath"]["path"])
                continue
            d = root / v["name"]
            d.mkdir(parents=True, exist_ok=True)
            if "emptyDir" in v:
                self._empty_dir(pod, d, v["emptyDir"] or {})
            elif "configMap" in v:
                self._keys(d, self._configmap(ns, v["configMap"]), v["configMap"])
            elif "secret" in v:
                src = v["secret"]
                self._keys(d, self._secret(ns, src.get("secretName", ""), src.get("optional", False)), src)
            elif "projected" in v:
                for s in v["projected"].get("sources", []):
                    self._projected(pod, d, s, ip)
            elif "downwardAPI" in v:
                self._downward(pod, d, v["downwardAPI"], ip)
            out[v["name"]] = d  # emptyDir: the directory itself
            fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
            if fs_group is not None:
                _own(d, int(fs_group), writable="emptyDir" in v)
        return out

    @staticmethod
    def _empty_dir(pod: dict[str, Any], d: Path, src: dict[str, Any]) -> None:
        """World-writable (as the kubelet makes it); with medium Memory a tmpfs of ``sizeLimit`` (else of the
        pod's memory limit, when every container has one)."""
        if src.get("medium") == "Memory" and not os.path.ismount(d):
            limits = [(c.get("resources") or {}).get("limits", {}).get("memory") for c in pod["spec"]["containers"]]
            size = src.get("sizeLimit") or (sum(quantity(x) for x in limits) if limits and all(limits) else None)
            opts = "mode=1777" + (f",size={int(quantity(size))}" if size else "")
            subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], check=True, capture_output=True)
        d.chmod(0o777)

    def _projected(self, pod: dict[str, Any], d: Path, s: dict[str, Any], ip: str) -> None:
        ns = pod["metadata"]["namespace"]
        if "serviceAccountToken" in s:
            t = s["serviceAccountToken"]
            (d / t.get("path", "token")).write_text(self.token(pod, t))
        elif "configMap" in s:
            self._keys(d, self._configmap(ns, s["configMap"]), s["configMap"])
        elif "secret" in s:
            self._keys(d, self._secret(ns, s["secret"]["name"], s["secret"].get("optional", False)), s["secret"])
        elif "downwardAPI" in s:
            self._downward(pod, d, s["downwardAPI"], ip)

    def _downward(self, pod: dict[str, Any], d: Path, src: dict[str, Any], ip: str) -> None:
        for item in src.get("items", []):
            (d / item["path"]).write_text(self.field(pod, item.get("fieldRef", {}).get("fieldPath", ""), ip))

    def _configmap(self, ns: str, src: dict[str, Any]) -> dict[str, bytes]:
        cm = self.kube.api_get(f"/api/v1/namespaces/{ns}/configmaps/{src.get('name', '')}")
        if cm is None:
            if src.get("optional"):
                return {}
            raise VolumeNotReady(f"configmap {src.get('name')!r} not found")
        data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
        return data

    def _secret(self, ns: str, name: str, optional: bool) -> dict[str, bytes]:
        sec = self.kube.api_get(f"/api/v1/namespaces/{ns}/secrets/{name}")
        if sec is None:
            if optional:
                return {}
            raise VolumeNotReady(f"secret {name!r} not found")
        return {k: base64.b64decode(v) for k, v in (sec.get("data") or {}).items()}

    @staticmethod
    def _keys(d: Path, data: dict[str, bytes], src: dict[str, Any]) -> None:
        items = src.get("items")
        pairs = [(i["key"], i["path"], i.get("mode")) for i in items] if items else [(k, k, None) for k in data]
        for key, rel, mode in pairs:
            if key not in data:
                if src.get("optional"):
                    continue
                raise VolumeNotReady(f"key {key!r} not found in {src.get('name')!r}")
            target = d / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data[key])
            target.chmod(int(mode if mode is not None else src.get("defaultMode", 0o644)))

    def token(self, pod: dict[str, Any], src: dict[str, Any]) -> str:
        md = pod["metadata"]
        sa = pod["spec"].get("serviceAccountName", "default")
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [src["audience"]] if src.get("audience") else None,
                "expirationSeconds": int(src.get("expirationSeconds", 3607)),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": md["name"], "uid": md["uid"]},
            },
        }
        try:
            out = self.kube.api("POST", f"/api/v1/namespaces/{md['namespace']}/serviceaccounts/{sa}/token", body)
        except KubeError as e:
            raise VolumeNotReady(f"token for service account {sa!r}: HTTP {e.code}") from e
        return str(out["status"]["token"])

    def claim_dir(self, ns: str, claim: str) -> Path:
        pvc = self.kube.api_get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}")
        if pvc is None:
            raise VolumeNotReady(f"persistentvolumeclaim {claim!r} not found")
        if pvc.get("status", {}).get("phase") != "Bound":
            raise VolumeNotReady(f"persistentvolumeclaim {claim!r} is not bound")
        pv = self.kube.api_get(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
        path = (pv or {}).get("spec", {}).get("hostPath", {}).get("path")
        if not path:
            raise VolumeNotReady(f"volume of claim {claim!r} has no local path")
        Path(path).mkdir(parents=True, exist_ok=True)
        return Path(path)

    def field(self, pod: dict[str, Any], path: str, ip: str) -> str:
        """A downward-API field of ``pod`` (``metadata.name``, ``metadata.labels['x']``, ``status.podIP``, ...)."""
        md = pod["metadata"]
        simple = {
            "metadata.name": md["name"],
            "metadata.namespace": md["namespace"],
            "metadata.uid": md["uid"],
            "spec.nodeName": pod["spec"].get("nodeName", ""),
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
            "status.podIP": ip,
            "status.hostIP": self.host_ip,
        }
        if path in simple:
            return str(simple[path])
        for prefix, src in (("metadata.labels", md.get("labels") or {}), ("metadata.annotations", md.get("annotations") or {})):
            if path == prefix:
                return "\n".join(f'{k}="{v}"' for k, v in sorted(src.items()))
            if path.startswith(prefix + "['"):
                return str(src.get(path[len(prefix) + 2 : -2], ""))
        return ""

    def env_source(self, pod: dict[str, Any], entry: dict[str, Any]) -> dict[str, str]:
        """The keys of an ``envFrom`` entry's configMap or secret (none when it is optional and missing)."""
        ns = pod["metadata"]["namespace"]
        if "configMapRef" in entry:
            r = entry["configMapRef"]
            data = self._configmap(ns, {"name": r.get("name", ""), "optional": r.get("optional")})
        elif "secretRef" in entry:
            r = entry["secretRef"]
            data = self._secret(ns, r.get("name", ""), bool(r.get("optional")))
        else:
            return {}
        return {k: v.decode(errors="replace") for k, v in data.items()}

    def secret(self, ns: str, name: str) -> dict[str, Any] | None:
        """A Secret as the API returns it (None: not found)."""
        return self.kube.api_get(f"/api/v1/namespaces/{ns}/secrets/{name}")

    def env_from(self, pod: dict[str, Any], vf: dict[str, Any], ip: str) -> str | None:
        """The value of an env var's ``valueFrom`` (None: leave the variable unset)."""
        ns = pod["metadata"]["namespace"]
        if "fieldRef" in vf:
            return self.field(pod, vf["fieldRef"]["fieldPath"], ip)
        if "configMapKeyRef" in vf:
            r = vf["configMapKeyRef"]
            return self._configmap(ns, {"name": r["name"], "optional": r.get("optional")}).get(r["key"], b"").decode() or None
        if "secretKeyRef" in vf:
            r = vf["secretKeyRef"]
            return self._secret(ns, r["name"], bool(r.get("optional"))).get(r["key"], b"").decode() or None
        return None


def _own(root: Path, gid: int, writable: bool) -> None:
    """Give a volume to the pod's ``fsGroup``: group ownership, group read (and write for emptyDir), setgid
    directories, as the kubelet does."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        os.chown(path, -1, gid)
        mode = path.stat().st_mode & 0o7777
        extra = 0o040 | (0o020 if writable else 0) | (0o2010 if path.is_dir() else 0)
        path.chmod(mode | extra)
