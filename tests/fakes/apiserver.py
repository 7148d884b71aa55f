"""A small in-process Kubernetes API server for the controllers' tests.

It speaks enough of the API over real HTTP (``http.server``) for the operator's own client
(``foresail.clients.kube.Kube`` over the kubernetes package) to talk to it unchanged: GET of objects
and collections (namespace and label selectors), server-side apply (create or merge, the scale
subresource), JSON merge patches (with the resourceVersion precondition), POST (``generateName``),
DELETE (uid precondition), and watches (``?watch=true``: chunked newline-delimited events from a
resourceVersion, label and field selectors applied to the old and new object as the apiserver does,
BOOKMARK events every ``bookmark_s`` when asked for, an ERROR event with code 410 for a version older than
the last ``compact``). Every request is recorded, so a test asserts on what the controller sent.
``slow`` delays the answers to one client (by its User-Agent, ``kube(agent=...)``): a partition between
one replica and the apiserver.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from kubernetes import client

from foresail.clients.caches import field_matches
from foresail.clients.informer import matches
from foresail.clients.kube import Kube, path_for
from tests.fakes.http import send_json

__all__ = ["FakeApiServer", "Request"]

Key = tuple[str, str, str, str]  # (API prefix, plural, namespace, name)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any

    @property
    def sub(self) -> str:
        """The subresource (status, scale) or ''."""
        return _parse(self.path)[1]


def _parse(path: str) -> tuple[Key, str]:
    parts = path.strip("/").split("/")
    n = 2 if parts[0] == "api" else 3
    prefix, rest = "/" + "/".join(parts[:n]), parts[n:]
    ns = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    return (prefix, plural, ns, name), sub


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


def _selected(obj: dict[str, Any] | None, query: dict[str, str]) -> bool:
    """Whether the request's label and field selectors select ``obj``."""
    if obj is None:
        return False
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return matches(labels, query.get("labelSelector")) and field_matches(obj, query.get("fieldSelector"))


@dataclass(frozen=True)
class _Event:
    rv: int
    key: Key
    old: dict[str, Any] | None  # None: created
    new: dict[str, Any] | None  # None: deleted


class FakeApiServer:
    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.requests: list[Request] = []
        self._rv = 0  # the last resourceVersion handed out
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a new event in ``log``
        self.log: list[_Event] = []  # every change since the last compaction, in order
        self.compacted = 0  # watches from a version older than this get 410 Gone
        self.bookmark_s: float | None = 0.2  # BOOKMARK events this often on watches that allow them (None: never)
        self.watch_refused: int | None = None  # status code new watches get (a partition), None: served
        self._watch_generation = 0  # bumped by break_watches: the open watches end
        self._closing = False
        self.invalid: dict[str, str] = {}  # plural -> message: applies of that resource are refused (422)
        self.failing: dict[str, int] = {}  # plural -> status code: lists of that resource fail
        self.slow: dict[str, float] = {}  # User-Agent -> seconds each of its requests waits before its answer
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _handle(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                ctype = (self.headers.get("Content-Type") or "").split(";")[0]
                req = Request(self.command, url.path, query, ctype, body)
                if delay := server.slow.get(self.headers.get("User-Agent") or ""):
                    time.sleep(delay)  # it lands late, even when the client gave up waiting
                with server._lock:
                    server.requests.append(req)
                    code, answer = server._answer(req)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a slowed client gave up
                    send_json(self, code, answer)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if query.get("watch") in ("true", "1"):
                    server._watch(self, url.path, query)
                else:
                    self._handle()

            do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.http.block_on_close = False
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self._thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._changed.notify_all()
        self.http.shutdown()
        self.http.server_close()

    # ------------------------------------------------------------ for tests

    def kube(self, agent: str | None = None) -> Kube:
        """A client of this server (``agent``: its User-Agent, to slow it down by ``slow``)."""
        cfg = client.Configuration()
        cfg.host = self.url
        api = client.ApiClient(cfg)
        if agent is not None:
            api.user_agent = agent
        return Kube(api, timeout=5.0)

    def kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "fake", "user": {}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
                    "current-context": "fake",
                }
            )
        )
        return path

    def put(self, *objs: dict[str, Any]) -> None:
        """Store objects as they are (with metadata filled in), as if created earlier."""
        with self._lock:
            for obj in objs:
                md = obj["metadata"]
                key, _ = _parse(path_for(obj["kind"], md.get("namespace"), md["name"]))
                self._store(key, copy.deepcopy(obj))

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        key, _ = _parse(path_for(kind, namespace, name))
        obj = self.objects.get(key)
        return copy.deepcopy(obj) if obj is not None else None

    def writes(self, kind: str | None = None, sub: str | None = None) -> list[Request]:
        """Recorded requests that change something (optionally of one kind and subresource)."""
        plural = path_for(kind).rsplit("/", 1)[-1] if kind else None
        out = []
        for r in self.requests:
            if r.method == "GET":
                continue
            (_, p, _, _), s = _parse(r.path)
            if (plural is None or p == plural) and (sub is None or s == sub):
                out.append(r)
        return out

    def compact(self) -> None:
        """Forget the change log: a watch from any version seen so far is answered 410 Gone."""
        with self._lock:
            self.compacted = self._rv
            self.log.clear()

    def break_watches(self) -> None:
        """End every open watch (a dropped connection); clients resume or relist."""
        with self._lock:
            self._watch_generation += 1
            self._changed.notify_all()

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        """Delete an object as someone else would (a DELETED event for watches)."""
        key, _ = _parse(path_for(kind, namespace, name))
        with self._lock:
            self._remove(key)

    def counted(self, since: int = 0) -> list[tuple[str, str]]:
        """(verb, path) of the requests recorded after the first ``since``, watches as WATCH, lists as LIST."""
        out = []
        for r in self.requests[since:]:
            verb = r.method
            if verb == "GET" and not _parse(r.path)[0][3]:
                verb = "WATCH" if r.query.get("watch") in ("true", "1") else "LIST"
            out.append((verb, r.path))
        return out

    def events(self) -> list[dict[str, Any]]:
        return [r.body for r in self.writes("Event")]

    # ------------------------------------------------------------ the API

    def _store(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        md = obj.setdefault("metadata", {})
        md.setdefault("name", key[3])
        if key[2]:
            md.setdefault("namespace", key[2])
        md.setdefault("uid", f"uid-{key[1]}-{key[2]}-{key[3]}")
        md.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        md.setdefault("generation", 1)
        self._rv += 1
        md["resourceVersion"] = str(self._rv)
        old = self.objects.get(key)
        self.objects[key] = obj
        self.log.append(_Event(self._rv, key, copy.deepcopy(old), copy.deepcopy(obj)))
        self._changed.notify_all()
        return obj

    def _remove(self, key: Key) -> None:
        old = self.objects.pop(key, None)
        if old is None:
            return
        self._rv += 1
        self.log.append(_Event(self._rv, key, old, None))
        self._changed.notify_all()

    @staticmethod
    def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
        return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message, "code": code}

    def _answer(self, r: Request) -> tuple[int, Any]:
        key, sub = _parse(r.path)
        prefix, plural, ns, name = key
        if r.method == "GET" and not name and plural in self.failing:
            return self._status(self.failing[plural], "InternalError", f"listing {plural} failed")
        if r.method == "GET" and not name:
            items = [
                copy.deepcopy(o)
                for (p, pl, n, _), o in sorted(self.objects.items())
                if (p, pl) == (prefix, plural) and (not ns or n == ns) and _selected(o, r.query)
            ]
            return 200, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": str(self._rv)}, "items": items}
        cur = self.objects.get(key)
        if r.method == "GET":
            return (200, copy.deepcopy(cur)) if cur is not None else self._status(404, "NotFound", f"{plural} {name!r} not found")
        if r.method == "POST":
            return self._create(prefix, plural, ns, r.body)
        if r.method == "DELETE":
            if cur is None:
                return self._status(404, "NotFound", f"{plural} {name!r} not found")
            uid = ((r.body or {}).get("preconditions") or {}).get("uid")
            if uid and uid != cur["metadata"]["uid"]:
                return self._status(409, "Conflict", "uid precondition failed")
            self._remove(key)
            return 200, {"kind": "Status", "status": "Success"}
        if r.method == "PATCH":
            return self._patch(key, sub, r)
        if r.method == "PUT" and cur is not None:  # a replace, guarded by the resourceVersion it read
            if (r.body or {}).get("metadata", {}).get("resourceVersion") != cur["metadata"]["resourceVersion"]:
                return self._status(409, "Conflict", "the object has been modified")
            return 200, copy.deepcopy(self._store(key, copy.deepcopy(r.body)))
        return self._status(405, "MethodNotAllowed", r.method)

    def _create(self, prefix: str, plural: str, ns: str, body: dict[str, Any]) -> tuple[int, Any]:
        md = body.setdefault("metadata", {})
        if not md.get("name"):
            md["name"] = f"{md.get('generateName', 'x-')}{self._rv + 1}"
        key = (prefix, plural, ns, md["name"])
        if key in self.objects:
            return self._status(409, "AlreadyExists", f"{plural} {md['name']!r} already exists")
        return 201, copy.deepcopy(self._store(key, body))

    def _patch(self, key: Key, sub: str, r: Request) -> tuple[int, Any]:
        cur = self.objects.get(key)
        if sub == "scale":
            if cur is None:
                return self._status(404, "NotFound", f"deployment {key[3]!r} not found")
            cur.setdefault("spec", {})["replicas"] = r.body["spec"]["replicas"]
            self._store(key, cur)
            return 200, {"kind": "Scale", "spec": {"replicas": cur["spec"]["replicas"]}}
        if r.content_type == "application/apply-patch+yaml":
            if key[1] in self.invalid:
                return self._status(422, "Invalid", self.invalid[key[1]])
            merged = _merge(cur or {}, r.body)
            return 200, copy.deepcopy(self._store(key, merged))
        if cur is None:
            return self._status(404, "NotFound", f"{key[1]} {key[3]!r} not found")
        want_version = ((r.body or {}).get("metadata") or {}).get("resourceVersion")
        if want_version and want_version != cur["metadata"]["resourceVersion"]:
            return self._status(409, "Conflict", "the object has been modified")
        patch = r.body if sub != "status" else {"status": (r.body or {}).get("status")}
        return 200, copy.deepcopy(self._store(key, _merge(cur, patch)))

    # ------------------------------------------------------------ watches

    def _watch(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, str]) -> None:
        """Stream the changes after ``resourceVersion`` (all objects as ADDED without one) until
        ``timeoutSeconds``, ``break_watches`` or ``close``."""
        (prefix, plural, ns, _), _ = _parse(path)
        req = Request("GET", path, query, "", None)
        with self._lock:
            self.requests.append(req)
            refused, generation = self.watch_refused, self._watch_generation
        if refused is not None:
            send_json(h, *self._status(refused, "ServiceUnavailable", "watches refused"))
            return
        h.protocol_version = "HTTP/1.1"
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.close_connection = True

        def send(events: list[dict[str, Any]]) -> None:
            data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
            if data:
                h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                h.wfile.flush()

        def mine(key: Key) -> bool:
            return key[:2] == (prefix, plural) and (not ns or key[2] == ns)

        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 60)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        last_mark = time.monotonic()
        try:
            with self._lock:
                since = query.get("resourceVersion")
                if since and int(since) < self.compacted:
                    gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired", "code": 410,
                            "message": f"too old resource version: {since} ({self.compacted})"}  # fmt: skip
                    send([{"type": "ERROR", "object": gone}])
                    return
                if not since:  # no version: the current objects as ADDED, then the changes
                    start = [{"type": "ADDED", "object": copy.deepcopy(o)} for k, o in sorted(self.objects.items()) if mine(k) and _selected(o, query)]
                    send(start)
                pos = int(since) if since else self._rv
            while True:
                with self._lock:
                    while not self._closing and self._watch_generation == generation and not (self.log and self.log[-1].rv > pos):
                        now = time.monotonic()
                        wait = deadline - now
                        if bookmarks and self.bookmark_s is not None:
                            wait = min(wait, last_mark + self.bookmark_s - now)
                        if wait <= 0:
                            break
                        self._changed.wait(wait)
                    if self._closing or self._watch_generation != generation:
                        return
                    new = [e for e in self.log if e.rv > pos]
                    head = self._rv
                out = []
                for e in new:
                    if not mine(e.key):
                        continue
                    was, now_in = _selected(e.old, query), _selected(e.new, query)
                    if now_in:
                        out.append({"type": "MODIFIED" if was else "ADDED", "object": e.new})
                    elif was:
                        obj = copy.deepcopy(e.old if e.new is None else e.new)
                        assert obj is not None
                        obj["metadata"]["resourceVersion"] = str(e.rv)
                        out.append({"type": "DELETED", "object": obj})
                pos = head
                if bookmarks and self.bookmark_s is not None and time.monotonic() - last_mark >= self.bookmark_s:
                    out.append({"type": "BOOKMARK", "object": {"kind": plural, "metadata": {"resourceVersion": str(head)}}})
                    last_mark = time.monotonic()
                send(out)
                if time.monotonic() >= deadline:
                    return
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
                h.wfile.write(b"0\r\n\r\n")
                h.wfile.flush()
