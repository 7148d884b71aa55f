"""Whether a CRD can replace another without breaking the objects stored under it (pure).

An upgrade of a CRD must leave every object written under the old one readable and valid: the versions
served before are served still, the storage version stays, and within each version's schema no field
disappears (the apiserver would prune it from objects on their next write), no field becomes required,
no field changes its type, an enum never loses a value (nor does a free field gain an enum), and a field
that kept unknown fields keeps them. ``incompatibilities`` lists what breaks that, one line per change,
naming the version and the field's path; empty: safe. Bounds (maximum, maxLength, patterns) and CEL
rules are not compared: the apiserver ratchets them (an unchanged value that a new bound refuses is
still accepted on update), and tightening one is a deliberate change reviewed with the model.
"""

from __future__ import annotations

from typing import Any

__all__ = ["incompatibilities", "schema_incompatibilities"]


def _versions(crd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in crd.get("spec", {}).get("versions", [])}


def _storage(crd: dict[str, Any]) -> str | None:
    return next((v["name"] for v in crd.get("spec", {}).get("versions", []) if v.get("storage")), None)


def incompatibilities(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What in ``new`` breaks objects stored under ``old`` (both CustomResourceDefinition objects)."""
    name = old.get("metadata", {}).get("name", "?")
    out: list[str] = []
    if old.get("spec", {}).get("group") != new.get("spec", {}).get("group"):
        out.append(f"{name}: group changed")
    if old.get("spec", {}).get("scope") != new.get("spec", {}).get("scope"):
        out.append(f"{name}: scope changed from {old['spec'].get('scope')} to {new['spec'].get('scope')}")
    if _storage(old) != _storage(new):
        out.append(f"{name}: storage version changed from {_storage(old)} to {_storage(new)}")
    olds, news = _versions(old), _versions(new)
    for ver, ov in olds.items():
        nv = news.get(ver)
        if nv is None:
            out.append(f"{name}: version {ver} removed")
            continue
        if ov.get("served") and not nv.get("served"):
            out.append(f"{name}: version {ver} no longer served")
        o_schema = (ov.get("schema") or {}).get("openAPIV3Schema") or {}
        n_schema = (nv.get("schema") or {}).get("openAPIV3Schema") or {}
        out += [f"{name} {ver}: {p}" for p in schema_incompatibilities(o_schema, n_schema)]
        if "status" in (ov.get("subresources") or {}) and "status" not in (nv.get("subresources") or {}):
            out.append(f"{name} {ver}: status subresource removed")
    return out


def schema_incompatibilities(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """Changes of a structural schema that break values valid under ``old``, each naming its field's path."""
    at = path or "."
    out: list[str] = []
    if old.get("type") != new.get("type") and new.get("type") is not None:
        out.append(f"{at}: type changed from {old.get('type')} to {new.get('type')}")
        return out
    if old.get("x-kubernetes-preserve-unknown-fields") and not new.get("x-kubernetes-preserve-unknown-fields"):
        out.append(f"{at}: no longer keeps unknown fields (they would be pruned)")
    if old.get("x-kubernetes-int-or-string") and not new.get("x-kubernetes-int-or-string"):
        out.append(f"{at}: no longer int-or-string")
    if "enum" in new:
        lost = [v for v in old.get("enum", []) if v not in new["enum"]] if "enum" in old else None
        if lost is None:
            out.append(f"{at}: enum added ({', '.join(map(str, new['enum']))})")
        elif lost:
            out.append(f"{at}: enum values removed ({', '.join(map(str, lost))})")
    o_props, n_props = old.get("properties") or {}, new.get("properties") or {}
    for k in o_props:
        if k not in n_props and not new.get("x-kubernetes-preserve-unknown-fields"):
            out.append(f"{path}.{k}: removed")
    added_required = sorted(set(new.get("required", [])) - set(old.get("required", [])))
    for k in added_required:
        out.append(f"{path}.{k}: newly required")
    for k, o in o_props.items():
        if k in n_props:
            out += schema_incompatibilities(o, n_props[k], f"{path}.{k}")
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        out += schema_incompatibilities(old["items"], new["items"], f"{path}[]")
    o_add, n_add = old.get("additionalProperties"), new.get("additionalProperties")
    if isinstance(o_add, dict):
        if isinstance(n_add, dict):
            out += schema_incompatibilities(o_add, n_add, f"{path}{{}}")
        elif not new.get("x-kubernetes-preserve-unknown-fields"):
            out.append(f"{at}: map values no longer allowed")
    return out
