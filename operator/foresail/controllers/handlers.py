"""What the kopf handlers share: one Kubernetes client, a per-object lock, the clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from foresail.clients.kube import Kube

__all__ = ["kube", "object_lock", "utcnow"]

_kube: Kube | None = None
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def kube() -> Kube:
    """The process's client, made on first use (after kopf's login has loaded the configuration)."""
    global _kube
    if _kube is None:
        _kube = Kube()
    return _kube


def object_lock(key: str) -> threading.Lock:
    """One reconcile at a time per object (handlers run on kopf's thread pool)."""
    with _guard:
        return _locks.setdefault(key, threading.Lock())


def utcnow() -> datetime:
    return datetime.now(UTC)
