"""Watch-fed caches of Kubernetes objects (an informer per kind, after client-go's reflector).

An ``Informer`` lists its kind once (paginated, ``limit``/``continue``), remembers the list's
``resourceVersion`` and then watches from it with bookmarks (``allowWatchBookmarks``), so that a quiet
kind still advances the version it would resume from. A watch that ends (the server's timeout, a dropped
connection) resumes from the last version seen; one the apiserver answers with 410 Gone (the version was
compacted away) relists, and the relist replaces the store: what vanished in between is reported as
deleted. Errors back off exponentially (reset by the next success). Each informer runs on its own daemon
thread with the operator's synchronous client (``clients.kube.Kube``), whose request counter sees its
LIST and WATCH requests like any other.

The store holds what ``transform`` keeps of each object (``None``: not kept at all), so a cluster-wide
cache can hold only the fields a consumer reads (``slim_node``, ``slim_gpu_pod``). Objects in the store
are replaced, never changed in place: a list handed out stays a consistent view, and must not be mutated.

``health()`` says whether the first list completed (``synced``) and how long ago the informer last heard
from the apiserver (an event, a bookmark or a list), for a liveness check.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from foresail.clients.kube import ApiException, Kube, path_for

__all__ = ["BACKOFF", "CacheHealth", "Informer", "matches", "slim_gpu_pod", "slim_node"]

log = logging.getLogger("foresail.informer")

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)
Handler = Callable[[str, Obj], None]  # (ADDED | MODIFIED | DELETED, object)
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before the next try after 1, 2, ... failures in a row
PAGE = 500  # objects per list page


class Gone(Exception):
    """The version to resume from is too old (HTTP 410 / an ERROR event with code 410): relist."""


@dataclass(frozen=True)
class CacheHealth:
    kind: str
    selector: str
    synced: bool
    objects: int
    last_event_age_s: float | None  # since the last event, bookmark or list; None before the first
    relists: int  # lists after the first (410 Gone)
    errors: int  # failed lists and watches


def matches(labels: Mapping[str, str], selector: str | None) -> bool:
    """Whether ``labels`` satisfy a label selector of equality terms: ``k``, ``!k``, ``k=v``, ``k==v``, ``k!=v``."""
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if term.startswith("!"):
            if term[1:] in labels:
                return False
        elif "!=" in term:
            k, _, v = term.partition("!=")
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, _, v = term.partition("=")
            if labels.get(k) != v.lstrip("="):
                return False
        elif term not in labels:
            return False
    return True


def _key(obj: Mapping[str, Any]) -> Key:
    md = obj["metadata"]
    return str(md.get("namespace") or ""), str(md["name"])


class Informer:
    """One kind (optionally narrowed by label and field selectors) kept in memory by list + watch."""

    def __init__(
        self,
        kube: Kube,
        kind: str,
        api_version: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        transform: Callable[[Obj], Obj | None] | None = None,
        watch_timeout_s: int = 270,
        backoff: tuple[float, ...] = BACKOFF,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.kind = kind
        self.api_version = api_version
        self.label_selector = label_selector or None
        self.field_selector = field_selector or None
        self.transform = transform
        self.watch_timeout_s = watch_timeout_s
        self.backoff = backoff
        self.clock = clock
        self.handlers: list[Handler] = []
        self.resource_version: str | None = None
        self._store: dict[Key, Obj] = {}
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_event: float | None = None
        self._relists = 0
        self._errors = 0
        self._lists = 0
        self._response: Any = None  # the watch response being read (closed by stop)

    # ------------------------------------------------------------ reading

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    def list(self, namespace: str | None = None, label_selector: str | None = None) -> list[Obj]:
        """The stored objects (shared, never to be mutated), of one namespace and matching ``label_selector``."""
        with self._lock:
            objs = list(self._store.values())
        return [
            o
            for o in objs
            if (not namespace or o["metadata"].get("namespace") == namespace)
            and (not label_selector or matches(o["metadata"].get("labels") or {}, label_selector))
        ]

    def get(self, namespace: str | None, name: str) -> Obj | None:
        with self._lock:
            return self._store.get((namespace or "", name))

    def health(self) -> CacheHealth:
        age = None if self._last_event is None else max(0.0, self.clock() - self._last_event)
        sel = ",".join(s for s in (self.label_selector, self.field_selector) if s)
        with self._lock:
            n = len(self._store)
        return CacheHealth(self.kind, sel, self.synced, n, age, self._relists, self._errors)

    def add_handler(self, handler: Handler) -> None:
        """``handler(type, object)`` on the informer's thread for every change the store takes in."""
        self.handlers.append(handler)

    # ------------------------------------------------------------ running

    def start(self) -> Informer:
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name=f"informer-{self.kind}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        resp = self._response
        if resp is not None:
            with contextlib.suppress(Exception):  # best effort: the read ends at the watch's timeout anyway
                resp.response.shutdown()  # unblocks a read in progress (urllib3 >= 2.3)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if self.resource_version is None:
                    self._relist()
                started = self.clock()
                if self._watch() == 0 and self.clock() - started < 1.0:
                    self._stop.wait(1.0)  # a watch ended at once with nothing (client-go's "very short watch")
                failures = 0
            except Gone:
                log.info("%s: resourceVersion %s is too old (410 Gone): relisting", self.kind, self.resource_version)
                self.resource_version = None
                failures = 0
            except Exception as e:
                if self._stop.is_set():
                    return
                self._errors += 1
                delay = self.backoff[min(failures, len(self.backoff) - 1)]
                failures += 1
                log.warning("%s: list/watch failed (%r); retrying in %.1f s", self.kind, e, delay)
                self._stop.wait(delay)

    def _query(self) -> builtins.list[tuple[str, str]]:
        q = []
        if self.label_selector:
            q.append(("labelSelector", self.label_selector))
        if self.field_selector:
            q.append(("fieldSelector", self.field_selector))
        return q

    def _keep(self, obj: Obj) -> Obj | None:
        obj.setdefault("apiVersion", self.api_version)  # list items carry neither
        obj.setdefault("kind", self.kind)
        return self.transform(obj) if self.transform is not None else obj

    def _relist(self) -> None:
        """List every page, then replace the store; what vanished since is reported as deleted."""
        items: builtins.list[Obj] = []
        cont: str | None = None
        while True:
            q = [*self._query(), ("limit", str(PAGE))] + ([("continue", cont)] if cont else [])
            try:
                page = self.kube.request("GET", path_for(self.kind), query=q)
            except ApiException as e:
                if e.status == 410 and cont:  # the continue token expired: list again from the start
                    items, cont = [], None
                    continue
                raise
            items.extend(page.get("items") or [])
            cont = (page.get("metadata") or {}).get("continue") or None
            if not cont:
                break
        fresh: dict[Key, Obj] = {}
        for item in items:
            kept = self._keep(item)
            if kept is not None:
                fresh[_key(kept)] = kept
        with self._lock:
            old, self._store = self._store, fresh
        self.resource_version = str((page.get("metadata") or {}).get("resourceVersion") or "") or None
        self._relists += 1 if self._lists else 0
        self._lists += 1
        self._last_event = self.clock()
        self._synced.set()
        for k, o in old.items():
            if k not in fresh:
                self._notify("DELETED", o)
        for k, o in fresh.items():
            prev = old.get(k)
            if prev is None:
                self._notify("ADDED", o)
            elif prev["metadata"].get("resourceVersion") != o["metadata"].get("resourceVersion"):
                self._notify("MODIFIED", o)

    def _watch(self) -> int:
        """Watch from ``resource_version`` until the server ends the watch (its timeout) or it fails; the
        number of events it carried."""
        q = [
            *self._query(),
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(self.watch_timeout_s)),
        ]
        if self.resource_version:
            q.append(("resourceVersion", self.resource_version))
        n = 0
        for ev in self._stream(q):
            if self._stop.is_set():
                break
            self._apply(ev)
            n += 1
        return n

    def _stream(self, query: builtins.list[tuple[str, str]]) -> Iterator[Obj]:
        kube = self.kube
        kube.count("WATCH", self.kind)
        m, url, hdrs, payload, post = kube.api.param_serialize(
            method="GET",
            resource_path=path_for(self.kind),
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        resp = kube.api.call_api(
            m, url, header_params=hdrs, body=payload, post_params=post, _request_timeout=(10.0, self.watch_timeout_s + 30.0)
        )
        if resp.status != 200:
            resp.read()  # type: ignore[no-untyped-call]
            if resp.status == 410:
                raise Gone()
            raise ApiException(status=resp.status, reason=resp.reason, http_resp=resp)
        self._response = resp
        buf = bytearray()
        done = False
        try:
            for chunk in resp.response.stream(amt=None, decode_content=False):
                buf.extend(chunk)
                while (nl := buf.find(b"\n")) != -1:
                    line, buf = bytes(buf[:nl]), buf[nl + 1 :]
                    if line.strip():
                        yield json.loads(line)
            done = True
        finally:
            self._response = None
            if done:
                resp.response.release_conn()
            else:  # left before its end (410, stop, an error): the connection cannot be reused
                resp.response.close()

    def _apply(self, ev: Obj) -> None:
        kind, obj = ev.get("type"), ev.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise ApiException(status=int(obj.get("code") or 500), reason=str(obj.get("message") or "watch error"))
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        self._last_event = self.clock()
        if kind == "BOOKMARK":
            self.resource_version = rv or self.resource_version
            return
        key = _key(obj)
        if kind == "DELETED":
            with self._lock:
                gone = self._store.pop(key, None)
            if gone is not None:
                self._notify("DELETED", gone)
        elif kind in ("ADDED", "MODIFIED"):
            kept = self._keep(obj)
            with self._lock:
                had = self._store.pop(key, None) if kept is None else self._store.get(key)
                if kept is not None:
                    self._store[key] = kept
            if kept is not None:
                self._notify("MODIFIED" if had is not None else "ADDED", kept)
            elif had is not None:  # no longer kept (its transform drops it now)
                self._notify("DELETED", had)
        self.resource_version = rv or self.resource_version

    def _notify(self, kind: str, obj: Obj) -> None:
        for h in self.handlers:
            try:
                h(kind, obj)
            except Exception as e:  # one consumer's failure never stops the cache
                log.exception("%s: a handler failed on %s %s: %r", self.kind, kind, obj["metadata"].get("name"), e)


# ------------------------------------------------------------------ transforms: only what consumers read


def _pick(d: Mapping[str, Any] | None, *keys: str) -> dict[str, Any]:
    return {k: d[k] for k in keys if d and k in d}


def slim_node(node: Obj) -> Obj:
    """What the GPU supply reads of a node: labels, schedulability, taints, allocatable, Ready."""
    st = node.get("status") or {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": _pick(node.get("metadata"), "name", "uid", "labels", "resourceVersion", "creationTimestamp"),
        "spec": _pick(node.get("spec"), "unschedulable", "taints"),
        "status": {
            "allocatable": st.get("allocatable") or {},
            "conditions": [_pick(c, "type", "status") for c in st.get("conditions") or [] if c.get("type") == "Ready"],
        },
    }


def slim_gpu_pod(pod: Obj, resource: str = "nvidia.com/gpu") -> Obj | None:
    """A pod Foresail does not run, as the GPU supply reads it, or None when it asks for no GPU."""
    spec = pod.get("spec") or {}

    def res(cs: builtins.list[Obj] | None) -> builtins.list[Obj]:
        return [{"name": c.get("name"), "resources": _pick(c.get("resources"), "requests", "limits")} for c in cs or []]

    def asks(cs: builtins.list[Obj]) -> bool:
        return any(
            resource in (c["resources"].get("limits") or {}) or resource in (c["resources"].get("requests") or {}) for c in cs
        )

    containers, init = res(spec.get("containers")), res(spec.get("initContainers"))
    if not asks(containers) and not asks(init):
        return None
    out_spec = {"containers": containers, **_pick(spec, "nodeName", "priorityClassName")}
    if init:
        out_spec["initContainers"] = init
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _pick(
            pod.get("metadata"), "name", "namespace", "uid", "labels", "resourceVersion", "creationTimestamp", "deletionTimestamp"
        ),
        "spec": out_spec,
        "status": _pick(pod.get("status"), "phase", "startTime"),
    }
