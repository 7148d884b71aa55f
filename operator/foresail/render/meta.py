"""Metadata every child object carries: the app labels and the controller reference to its owner (pure);
whether an object found under a child's name is the owner's to change (``name_taken``); and the digest of a
rendered child (``stamp``), kept on the child so that any operator process (a restart, a new leader) can
tell that what is live is what it renders without applying it again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from foresail.api.objects import controller_of
from foresail.api.reasons import Problem, Reason

__all__ = [
    "RENDERED_DIGEST", "Owner", "child_meta", "controlled_by", "controller_reference", "name_taken", "rendered_digest",
    "stamp", "standard_labels",
]  # fmt: skip

RENDERED_DIGEST = "foresail.dev/rendered-digest"


class Owner(Protocol):
    """A Foresail resource that owns children (an InferenceService, an EvalJob)."""

    api_version: str
    kind: str
    metadata: dict[str, Any]

    @property
    def name(self) -> str: ...

    @property
    def namespace(self) -> str: ...


def standard_labels(app: str, instance: str, component: str, owner_label: str) -> dict[str, str]:
    """The recommended ``app.kubernetes.io/*`` labels plus Foresail's own label naming the owner."""
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "foresail",
        owner_label: instance,
    }


def controller_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_meta(owner: Owner, name: str, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    """``metadata`` of a child in the owner's namespace, labelled and owned (garbage-collected with it)."""
    return {"name": name, "namespace": owner.namespace, "labels": labels, "ownerReferences": [controller_reference(owner)], **extra}


def controlled_by(obj: Mapping[str, Any] | None, owner: Owner) -> bool:
    """Whether ``obj`` exists and its controller reference carries the owner's UID (this very object, not
    an earlier one of the same name, nor another controller, nor nobody)."""
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner.metadata.get("uid")


def name_taken(owner: Owner, existing: Mapping[str, Any] | None) -> Problem | None:
    """The problem of a child name held by an object ``owner`` does not control, or None (absent, or its own).

    Children are written under fixed names by server-side apply, which would adopt and overwrite whatever
    holds the name (a user's Deployment, a production InferenceService named ``<job>-eval``): such an object
    is left alone and reported, never changed or deleted.
    """
    if existing is None or controlled_by(existing, owner):
        return None
    md = existing.get("metadata") or {}
    ref = controller_of(existing)
    if ref is None:
        by = "it has no controller"
    elif (ref.get("kind"), ref.get("name")) == (owner.kind, owner.name):
        by = f"its controller is an earlier {owner.kind} of this name (UID {ref.get('uid')})"
    else:
        by = f"its controller is {ref.get('kind')} {ref.get('name')}"
    return Problem(
        Reason.NAME_TAKEN,
        f"{existing.get('kind')} {md.get('namespace')}/{md.get('name')} exists and is not controlled by this {owner.kind} "
        f"({by}); Foresail leaves it alone: delete or rename it, or give the {owner.kind} another name",
    )


def rendered_digest(obj: Mapping[str, Any]) -> str:
    """The digest of a rendered object, its own ``RENDERED_DIGEST`` annotation left out (16 hex digits)."""
    md = dict(obj.get("metadata") or {})
    if md.get("annotations"):
        md["annotations"] = {k: v for k, v in md["annotations"].items() if k != RENDERED_DIGEST}
    body = {**obj, "metadata": md}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stamp(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The rendered ``obj`` annotated with its digest (``RENDERED_DIGEST``; new top level and metadata, the
    rest shared with ``obj``). The live object carrying the same digest, and holding every rendered field, needs no apply: no field was dropped from
    the rendering since (that would change the digest), and none of those applied has drifted."""
    md = obj["metadata"]
    return {**obj, "metadata": {**md, "annotations": {**(md.get("annotations") or {}), RENDERED_DIGEST: rendered_digest(obj)}}}
