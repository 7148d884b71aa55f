"""Metadata every child object carries: the app labels and the controller reference to its owner (pure)."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Owner", "child_meta", "controller_reference", "standard_labels"]


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
