"""The operator's watch-fed caches (``clients.informer``) and a client that reads through them.

``Caches.for_operator`` watches exactly what the loops read:

==================  =====================================================  ==============================
kind                narrowed to                                            kept
==================  =====================================================  ==============================
InferenceService    all                                                    whole
ScalingPolicy       all                                                    whole
Tenant              all                                                    whole
Namespace           all                                                    whole (labels are what counts)
ResourceQuota       label ``foresail.dev/tenant`` (the backstop)           whole
Deployment          label ``app.kubernetes.io/managed-by=foresail``        whole
Service             label ``app.kubernetes.io/managed-by=foresail``        whole
PodDisruptionBudget label ``app.kubernetes.io/managed-by=foresail``        whole
Pod                 label ``foresail.dev/inferenceservice`` (Foresail's)   whole
Pod                 the others: ``!foresail.dev/inferenceservice``, live   only GPU pods, only what the
                    (``status.phase`` not Succeeded/Failed)                GPU supply reads (``slim_gpu_pod``)
Node                all                                                    ``slim_node``: labels, taints,
                                                                           allocatable, Ready
==================  =====================================================  ==============================

``CachedKube`` is a ``Kube`` whose ``list`` and ``get`` answer from the caches when they cover the
request (the kind is cached, every informer of it has synced, the selectors ask for no more than it
holds) and from the apiserver otherwise; a ``get`` that misses (the object is absent, or outside the
label filter: a user's Deployment holding a child's name) asks the apiserver, so "absent" is never
decided by a filter. Its ``apply`` skips what would change nothing: the object as cached already holds
every field rendered, with the values rendered, and the rendered object is the one last applied (a field
no longer rendered must still be removed by an apply): this process applied it (``Applied``), or the live
object carries the rendered object's digest (``render.meta.stamp``: a restarted operator or a new leader
then applies nothing for a converged fleet). Writes always go to the apiserver; a conflict re-reads from
it (``Kube.update_status``).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from foresail.api.objects import LABEL_ISVC
from foresail.clients.informer import CacheHealth, Informer, slim_gpu_pod, slim_node
from foresail.clients.kube import FIELD_MANAGER, Kube, RequestCounter, path_for
from foresail.render.meta import RENDERED_DIGEST
from foresail.render.tenant_quota import LABEL_TENANT

__all__ = ["LIVE_PODS", "MANAGED", "SKIPPED_APPLIES", "Applied", "CachedKube", "Caches", "field_matches", "holds"]

Obj = dict[str, Any]
MANAGED = "app.kubernetes.io/managed-by=foresail"
LIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"  # what pod_is_live keeps, asked of the apiserver
SKIPPED_APPLIES = RequestCounter()  # applies not sent, by resource (the operator's /metrics: foresail_applies_skipped_total)


def _terms(selector: str | None) -> set[str]:
    return {t.strip() for t in (selector or "").split(",") if t.strip()}


def _implies(selector: str | None, scope: str | None) -> bool:
    """Whether every object ``selector`` selects is inside ``scope`` (equality terms; ``k=v`` implies ``k``)."""
    have = _terms(selector)
    keys = {t.split("=", 1)[0] for t in have if "=" in t and "!=" not in t}
    return all(t in have or (t in keys and "=" not in t and not t.startswith("!")) for t in _terms(scope))


def field_matches(obj: Obj, selector: str | None) -> bool:
    """Whether ``obj`` satisfies a field selector of ``a.b=v`` / ``a.b!=v`` terms (missing fields are '')."""
    for term in _terms(selector):
        neg = "!=" in term
        path, _, want = term.partition("!=" if neg else "=")
        v: Any = obj
        for part in path.lstrip("=").split("."):
            v = v.get(part) if isinstance(v, dict) else None
        got = "" if v is None else str(v)
        if (got == want.lstrip("=")) == neg:
            return False
    return True


@dataclass
class _Kind:
    informers: list[Informer]
    covers: Callable[[str | None, str | None], bool]  # (label selector, field selector) -> whether the union holds it


class Caches:
    """Informers by kind, read as one view per kind."""

    def __init__(self) -> None:
        self._kinds: dict[str, _Kind] = {}

    def add(self, kind: str, informers: list[Informer], covers: Callable[[str | None, str | None], bool]) -> None:
        self._kinds[kind] = _Kind(informers, covers)

    @property
    def informers(self) -> list[Informer]:
        return [i for k in self._kinds.values() for i in k.informers]

    @classmethod
    def for_operator(cls, kube: Kube, watch_timeout_s: int = 270) -> Caches:
        c = cls()
        cfg = copy.copy(kube.api.configuration)
        cfg.connection_pool_maxsize = 32  # a connection per watch, held (the default pool is 10 at most per host)
        kube = Kube(client.ApiClient(cfg), kube.timeout, kube.fence)

        def inf(kind: str, api_version: str, labels: str | None = None, fields: str | None = None, **kw: Any) -> Informer:
            return Informer(kube, kind, api_version, labels, fields, watch_timeout_s=watch_timeout_s, **kw)

        def no_fields(scope: str | None) -> Callable[[str | None, str | None], bool]:
            return lambda labels, fields: not fields and _implies(labels, scope)

        fv1 = "foresail.dev/v1alpha1"
        for kind in ("InferenceService", "ScalingPolicy", "Tenant"):
            c.add(kind, [inf(kind, fv1)], no_fields(None))
        c.add("Namespace", [inf("Namespace", "v1")], no_fields(None))
        c.add("ResourceQuota", [inf("ResourceQuota", "v1", LABEL_TENANT)], no_fields(LABEL_TENANT))
        for kind, av in (("Deployment", "apps/v1"), ("Service", "v1"), ("PodDisruptionBudget", "policy/v1")):
            c.add(kind, [inf(kind, av, MANAGED)], no_fields(MANAGED))
        c.add("Node", [inf("Node", "v1", transform=slim_node)], lambda labels, fields: not fields)
        pods = [inf("Pod", "v1", LABEL_ISVC), inf("Pod", "v1", f"!{LABEL_ISVC}", LIVE_PODS, transform=slim_gpu_pod)]
        # Foresail's pods whole, in any phase; of the others only what the GPU supply reads (live GPU pods)
        c.add("Pod", pods, lambda labels, fields: _implies(labels, LABEL_ISVC) or (fields or "") == LIVE_PODS)
        return c

    def synced(self, kind: str) -> bool:
        """Whether ``kind`` is cached whole and every informer of it has synced."""
        k = self._kinds.get(kind)
        return k is not None and bool(k.informers) and all(i.synced and i.transform is None for i in k.informers)

    def on(self, kind: str, handler: Callable[[str, Obj], None]) -> None:
        """``handler(type, object)`` for every change of a cached kind (on its informers' threads)."""
        for i in self._kinds[kind].informers if kind in self._kinds else ():
            i.add_handler(handler)

    @property
    def kinds(self) -> list[str]:
        return list(self._kinds)

    def start(self) -> Caches:
        for i in self.informers:
            i.start()
        return self

    def stop(self) -> None:
        for i in self.informers:
            i.stop()

    def wait_synced(self, timeout: float | None = None) -> bool:
        return all(i.wait_synced(timeout) for i in self.informers)

    def health(self) -> list[CacheHealth]:
        return [i.health() for i in self.informers]

    def list(self, kind: str, namespace: str | None, label_selector: str | None, field_selector: str | None) -> list[Obj] | None:
        """The cached objects the request asks for, or None when the caches do not hold it (yet)."""
        k = self._kinds.get(kind)
        if k is None or not all(i.synced for i in k.informers) or not k.covers(label_selector, field_selector):
            return None
        out: list[Obj] = []
        for i in k.informers:
            if i.label_selector and not _compatible(label_selector, i.label_selector):
                continue
            out.extend(o for o in i.list(namespace, label_selector) if field_matches(o, field_selector))
        return out

    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """A copy of the cached object (only from informers keeping objects whole), or None (not cached)."""
        k = self._kinds.get(kind)
        for i in k.informers if k is not None else ():
            if i.transform is None and i.synced and (found := i.get(namespace, name)) is not None:
                return copy.deepcopy(found)
        return None


def _compatible(selector: str | None, scope: str) -> bool:
    """False when ``selector`` and the informer's ``scope`` cannot both hold (``k`` against ``!k``)."""
    have = {t.split("=", 1)[0] for t in _terms(selector) if "!" not in t}
    return not any(t.startswith("!") and t[1:] in have for t in _terms(scope))


# ------------------------------------------------------------------ compare before apply


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a == b)
    if (isinstance(a, int | float) and isinstance(b, str)) or (isinstance(a, str) and isinstance(b, int | float)):
        return str(a) == str(b)  # a quantity rendered as a number, stored as a string
    return bool(a == b)


def holds(live: Any, rendered: Any) -> bool:
    """Whether ``live`` carries every field of ``rendered`` with its value (lists element by element, of one
    length: an extra element is a change apply would make); fields the server defaulted are ignored, and so
    is an empty list or map that live lacks (the apiserver stores ``env: []`` as no ``env``)."""
    if isinstance(rendered, dict):
        return isinstance(live, dict) and all(
            holds(live[k], v) if k in live else v in ([], {}) for k, v in rendered.items() if v is not None
        )
    if isinstance(rendered, list):
        return (
            isinstance(live, list)
            and len(live) == len(rendered)
            and all(holds(x, y) for x, y in zip(live, rendered, strict=True))
        )
    return _same(live, rendered)


def _digest(obj: Obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Applied:
    """What this process last applied, by object: the digest of the rendered body (thread-safe)."""

    _last: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def same(self, key: tuple[str, str, str], digest: str) -> bool:
        with self._lock:
            return self._last.get(key) == digest

    def record(self, key: tuple[str, str, str], digest: str) -> None:
        with self._lock:
            self._last[key] = digest

    def forget(self, keys: Iterable[tuple[str, str, str]]) -> None:
        with self._lock:
            for k in keys:
                self._last.pop(k, None)


class CachedKube(Kube):
    """A ``Kube`` reading through ``Caches`` (see the module's docstring); it counts what it skipped."""

    def __init__(self, kube: Kube, caches: Caches, applied: Applied | None = None) -> None:
        super().__init__(kube.api, kube.timeout, kube.fence)
        self.caches = caches
        self.applied = applied if applied is not None else Applied()
        self.skipped_applies = 0
        for kind in caches.kinds:  # a deleted object leaves no memo behind
            caches.on(kind, functools.partial(self._forget, kind))

    def _forget(self, kind: str, event: str, obj: Obj) -> None:
        if event == "DELETED":
            self.applied.forget([(kind, obj["metadata"].get("namespace") or "", obj["metadata"]["name"])])

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None, field_selector: str | None = None
    ) -> list[dict[str, Any]]:
        got = self.caches.list(kind, namespace, label_selector, field_selector)
        return got if got is not None else super().list(kind, namespace, label_selector, field_selector)

    def get(self, kind: str, namespace: str | None, name: str, timeout: float | None = None) -> dict[str, Any] | None:
        got = self.caches.get(kind, namespace, name)
        return got if got is not None else super().get(kind, namespace, name, timeout)

    def get_managed(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        if self.caches.synced(kind):  # what the cache lacks is no object of ours: no request
            return self.caches.get(kind, namespace, name)
        return super().get_managed(kind, namespace, name)

    def apply(self, obj: dict[str, Any], field_manager: str = FIELD_MANAGER, dry_run: bool = False) -> dict[str, Any]:
        md = obj["metadata"]
        key = (str(obj["kind"]), str(md.get("namespace") or ""), str(md["name"]))
        stamped = (md.get("annotations") or {}).get(RENDERED_DIGEST)
        digest = stamped or _digest(obj)  # a stamped object carries its digest already
        mine = self.applied.same(key, digest)
        if not dry_run and field_manager == FIELD_MANAGER and (stamped or mine):
            live = self.caches.get(key[0], key[1] or None, key[2])
            live_stamp = ((live or {}).get("metadata") or {}).get("annotations") or {}
            if live is not None and (mine or live_stamp.get(RENDERED_DIGEST) == stamped) and holds(live, obj):
                self.skipped_applies += 1
                SKIPPED_APPLIES.add(path_for(key[0]).rsplit("/", 1)[-1], "APPLY")
                return live
        out = super().apply(obj, field_manager, dry_run)
        if not dry_run and field_manager == FIELD_MANAGER:
            self.applied.record(key, digest)
        return out
