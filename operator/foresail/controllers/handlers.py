"""What the kopf handlers share: the process's settings, one Kubernetes client, a per-object lock, the clock.

Every client made here (``kube``, ``new_kube``) is fenced by the leader lease once ``lead_by`` named it:
it refuses writes while this replica is not leading (``clients.kube.NotLeader``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from foresail.clients.caches import Applied, CachedKube, Caches
from foresail.clients.kube import Kube
from foresail.controllers import telemetry
from foresail.controllers.settings import OperatorSettings

__all__ = ["cached_kube", "caches", "configure", "forget_lock", "kube", "lead_by", "new_kube", "object_lock", "settings", "stop_caches", "utcnow"]

_settings: OperatorSettings | None = None
_kube: Kube | None = None
_caches: Caches | None = None
_applied = Applied()  # what this process applied, shared by its cached clients
_leading: Callable[[], bool] | None = None
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def configure(s: OperatorSettings) -> None:
    """The settings ``foresail run`` parsed at start."""
    global _settings
    _settings = s


def settings() -> OperatorSettings:
    """The process's settings (parsed from the environment on first use if ``configure`` was not called)."""
    global _settings
    if _settings is None:
        _settings = OperatorSettings.from_env(os.environ)
    return _settings


def lead_by(leading: Callable[[], bool] | None) -> None:
    """The leader lease's ``leading``: clients made from here on write only while it is true."""
    global _leading
    _leading = leading


def new_kube() -> Kube:
    """A client fenced by the leader lease (when ``lead_by`` named one)."""
    return Kube(fence=_leading)


def kube() -> Kube:
    """The process's client, made on first use (after kopf's login has loaded the configuration)."""
    global _kube
    if _kube is None:
        _kube = new_kube()
    return _kube


def caches() -> Caches:
    """The process's watch-fed caches (``clients.caches``), started on first use."""
    global _caches
    with _guard:
        if _caches is None:
            _caches = Caches.for_operator(new_kube()).start()
            telemetry.watch_caches(_caches.health)
        return _caches


def cached_kube() -> CachedKube:
    """A fenced client that reads through the process's caches (and asks the apiserver what they miss)."""
    return CachedKube(new_kube(), caches(), _applied)


def stop_caches() -> None:
    global _caches
    with _guard:
        if _caches is not None:
            _caches.stop()
            _caches = None


def object_lock(key: str) -> threading.Lock:
    """One reconcile at a time per object (handlers run on kopf's thread pool)."""
    with _guard:
        return _locks.setdefault(key, threading.Lock())


def forget_lock(key: str) -> None:
    """The object is gone: drop its lock (a reconcile still holding it finishes on its own reference)."""
    with _guard:
        _locks.pop(key, None)


def utcnow() -> datetime:
    return datetime.now(UTC)
