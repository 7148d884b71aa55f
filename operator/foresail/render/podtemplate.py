"""What the Triton pod template gets beyond serving: the Pod Security Standards ``restricted`` profile (non-root
as NVIDIA's ``triton-server`` user, no privilege escalation, no capabilities, the runtime's seccomp profile, a
read-only root filesystem with an emptyDir at ``/tmp``), ``/dev/shm`` sized by ``spec.triton.shmSize``, and the
user's ``spec.triton.podTemplate`` overlay merged in. Pure."""

from __future__ import annotations

import copy
from typing import Any

from foresail.api.podtemplate import TRITON_CONTAINER, PodTemplateOverlay

__all__ = ["TRITON_GID", "TRITON_UID", "apply_overlay", "harden"]

TRITON_UID = TRITON_GID = 1000  # triton-server in NVIDIA's image
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": TRITON_UID,
    "runAsGroup": TRITON_GID,
    "fsGroup": TRITON_GID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def harden(pod_spec: dict[str, Any], container: dict[str, Any], shm_size: str) -> None:
    """The restricted security context, ``/tmp`` and ``/dev/shm`` volumes (``shm_size`` "0": none), in place."""
    pod_spec["securityContext"] = copy.deepcopy(POD_SECURITY)
    container["securityContext"] = copy.deepcopy(CONTAINER_SECURITY)
    pod_spec["volumes"].append({"name": "tmp", "emptyDir": {}})
    container["volumeMounts"].append({"name": "tmp", "mountPath": "/tmp"})
    if shm_size.strip() not in ("0", "0Mi", "0Gi"):
        pod_spec["volumes"].append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm_size}})
        container["volumeMounts"].append({"name": "dshm", "mountPath": "/dev/shm"})


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``: maps merged key by key, lists appended, anything else replaced."""
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        elif isinstance(v, list) and isinstance(out.get(k), list):
            out[k] = out[k] + copy.deepcopy(v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _by_name(items: list[dict[str, Any]], extra: list[dict[str, Any]], key: str = "name") -> list[dict[str, Any]]:
    """``extra`` entries replace those of the same ``key``, the others are appended."""
    names = {e[key] for e in extra}
    return [i for i in items if i.get(key) not in names] + extra


def _container(c: dict[str, Any], o: dict[str, Any]) -> None:
    """The ``triton`` container's additions: env (by name), envFrom, mounts (by path), its security context."""
    c["env"] = _by_name(c.get("env") or [], o.get("env") or [])
    if o.get("envFrom"):
        c["envFrom"] = (c.get("envFrom") or []) + o["envFrom"]
    c["volumeMounts"] = _by_name(c.get("volumeMounts") or [], o.get("volumeMounts") or [], "mountPath")
    c["securityContext"] = _merge(c.get("securityContext") or {}, o.get("securityContext") or {})


def apply_overlay(template: dict[str, Any], overlay: PodTemplateOverlay | None) -> dict[str, Any]:
    """The pod template with ``overlay`` merged in (a new dict). Scalars are set, maps merged, lists appended
    (volumes, env, image pull secrets by name; mounts by path); the ``triton`` container gets its additions,
    any other container is added."""
    if overlay is None:
        return template
    out = copy.deepcopy(template)
    o = overlay.model_dump(by_alias=True, exclude_none=True)
    md, spec = out["metadata"], out["spec"]
    for key in ("labels", "annotations"):
        if o["metadata"].get(key):
            md[key] = {**(md.get(key) or {}), **o["metadata"][key]}
    os_ = o["spec"]
    for key in ("serviceAccountName", "automountServiceAccountToken", "runtimeClassName", "schedulerName"):
        if key in os_:
            spec[key] = os_[key]
    for key in ("nodeSelector", "affinity", "securityContext"):
        if os_.get(key):
            spec[key] = _merge(os_[key], spec[key]) if key == "nodeSelector" and key in spec else _merge(spec.get(key) or {}, os_[key])
    for key in ("tolerations", "topologySpreadConstraints"):
        if os_.get(key):
            spec[key] = (spec.get(key) or []) + os_[key]
    for key in ("imagePullSecrets", "volumes"):
        if os_.get(key):
            spec[key] = _by_name(spec.get(key) or [], os_[key])
    for c in os_.get("containers") or []:
        if c["name"] == TRITON_CONTAINER:
            _container(next(x for x in spec["containers"] if x["name"] == TRITON_CONTAINER), c)
        else:
            fields = ("name", "image", "command", "args", "env", "envFrom", "volumeMounts", "securityContext", "resources", "ports")
            spec["containers"] = _by_name(spec["containers"], [{k: c[k] for k in fields if c.get(k) not in (None, [], {})}])
    return out
