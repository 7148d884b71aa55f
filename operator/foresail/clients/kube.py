"""The Kubernetes client the operator uses: server-side apply, scale, status, events (sync).

A thin layer over ``kubernetes.client.ApiClient.call_api`` so that any object can be applied by its
apiVersion/kind with the right content type, and every write names its field manager. It counts the
requests it sends, by verb (``sent``), so that a loop can report what one pass cost the apiserver, and
every client of the process adds to ``REQUESTS`` by resource and verb (LIST and WATCH told from GET).

A client may be *fenced* (``fence``): before each write it asks the predicate (the leader lease's
``still leading``) and refuses the write with ``NotLeader`` when it says no, so a replica that lost the
lease mid-pass sends no further write.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

__all__ = [
    "FIELD_MANAGER", "REQUESTS", "SCALE_MANAGER", "ApiException", "Kube", "NotLeader", "RequestCounter", "api_message", "kube_from_kubeconfig",
    "load_config", "merge_noop", "path_for", "request_kind",
]  # fmt: skip

FIELD_MANAGER = "foresail"
SCALE_MANAGER = "foresail-autoscaler"

# kind -> (API prefix, plural, namespaced)
_KINDS: dict[str, tuple[str, str, bool]] = {
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "Service": ("/api/v1", "services", True),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims", True),
    "Pod": ("/api/v1", "pods", True),
    "Node": ("/api/v1", "nodes", False),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "EndpointSlice": ("/apis/discovery.k8s.io/v1", "endpointslices", True),
    "Namespace": ("/api/v1", "namespaces", False),
    "Job": ("/apis/batch/v1", "jobs", True),
    "ResourceQuota": ("/api/v1", "resourcequotas", True),
    "Event": ("/api/v1", "events", True),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases", True),
    "InferenceService": ("/apis/foresail.dev/v1alpha1", "inferenceservices", True),
    "EvalJob": ("/apis/foresail.dev/v1alpha1", "evaljobs", True),
    "Tenant": ("/apis/foresail.dev/v1alpha1", "tenants", False),
    "ScalingPolicy": ("/apis/foresail.dev/v1alpha1", "scalingpolicies", False),
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1", "httproutes", True),
}


def path_for(kind: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
    prefix, plural, namespaced = _KINDS[kind]
    p = prefix + (f"/namespaces/{namespace}" if namespaced and namespace else "") + f"/{plural}"
    if name:
        p += f"/{name}"
    if sub:
        p += f"/{sub}"
    return p


def api_message(e: ApiException) -> str:
    """The apiserver's own message of a failed call (an admission policy's denial, a conflict), else its reason."""
    try:
        return str(json.loads(e.body or "{}").get("message") or e.reason)
    except ValueError:
        return str(e.reason)


def merge_noop(current: Any, patch: Any) -> bool:
    """Whether the JSON merge patch (RFC 7386) ``patch`` would leave ``current`` as it is."""
    if not isinstance(patch, dict):
        return bool(current == patch)
    if not isinstance(current, dict):
        return False
    for k, v in patch.items():
        if v is None:
            if current.get(k) is not None:
                return False
        elif k not in current or not merge_noop(current[k], v):
            return False
    return True


def request_kind(method: str, path: str) -> tuple[str, str]:
    """(resource[/subresource], verb) of a request as the apiserver counts it: GET of a collection is LIST."""
    parts = path.strip("/").split("/")
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    resource = rest[0] if rest else "?"
    if len(rest) > 2:
        resource += "/" + rest[2]
    verb = "LIST" if method == "GET" and len(rest) == 1 else method
    return resource, verb


class RequestCounter:
    """Requests sent to the apiserver by this process, by (resource, verb); thread-safe."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, resource: str, verb: str) -> None:
        with self._lock:
            self._counts[(resource, verb)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)


REQUESTS = RequestCounter()  # every client's requests (the operator's /metrics: foresail_apiserver_requests_total)

_loaded = threading.Lock()


class NotLeader(Exception):
    """A write refused before it was sent: this replica no longer holds the leader lease."""


def load_config() -> None:
    """In-cluster configuration when running in a pod, else the kubeconfig."""
    with _loaded:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]


def kube_from_kubeconfig(path: str | None = None, context: str | None = None) -> Kube:
    """A client with a user's kubeconfig (``path``, else $KUBECONFIG or ~/.kube/config), for the command line."""
    return Kube(config.new_client_from_config(config_file=path, context=context))  # type: ignore[no-untyped-call]


class Kube:
    def __init__(self, api: client.ApiClient | None = None, timeout: float = 30.0, fence: Callable[[], bool] | None = None) -> None:
        self.api = api or client.ApiClient()
        self.timeout = timeout
        self.fence = fence  # writes only while it returns True (None: unfenced)
        self.sent: Counter[str] = Counter()  # requests sent, by verb
        self._counting = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One request; ``timeout``: its limit in seconds, all of it (default: the client's)."""
        if method != "GET" and self.fence is not None and not self.fence():
            raise NotLeader(f"{method} {path}: not the leader (lease not renewed in time)")
        with self._counting:
            self.sent[method] += 1
        REQUESTS.add(*request_kind(method, path))
        headers = {"Accept": "application/json", "Content-Type": content_type}
        m, url, hdrs, payload, post = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = self.api.call_api(m, url, header_params=hdrs, body=payload, post_params=post, _request_timeout=self.timeout if timeout is None else timeout)
        resp.read()  # type: ignore[no-untyped-call]
        if not 200 <= resp.status <= 299:
            raise ApiException(status=resp.status, reason=resp.reason, http_resp=resp)
        return json.loads(resp.data) if resp.data else None

    def count(self, verb: str, kind: str) -> None:
        """Count a request sent outside ``request`` (a watch) under ``verb``."""
        with self._counting:
            self.sent[verb] += 1
        REQUESTS.add(path_for(kind).rsplit("/", 1)[-1], verb)

    def get(self, kind: str, namespace: str | None, name: str, timeout: float | None = None) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self.request("GET", path_for(kind, namespace, name), timeout=timeout)
            return obj
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def get_managed(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object only when it may be one Foresail manages (callers still check its controller): the same as
        ``get`` here; a cached client answers from its label-filtered cache without asking the apiserver."""
        return self.get(kind, namespace, name)

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None, field_selector: str | None = None
    ) -> list[dict[str, Any]]:
        q = [("labelSelector", label_selector)] if label_selector else []
        if field_selector:
            q.append(("fieldSelector", field_selector))
        items: list[dict[str, Any]] = self.request("GET", path_for(kind, namespace), query=q)["items"]
        return items

    def apply(self, obj: dict[str, Any], field_manager: str = FIELD_MANAGER, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply, taking ownership of the fields in ``obj`` (force)."""
        md = obj["metadata"]
        q = [("fieldManager", field_manager), ("force", "true")]
        if dry_run:
            q.append(("dryRun", "All"))
        out: dict[str, Any] = self.request(
            "PATCH", path_for(obj["kind"], md.get("namespace"), md["name"]), json.dumps(obj), "application/apply-patch+yaml", q
        )
        return out

    def create(self, obj: dict[str, Any], dry_run: bool = False, timeout: float | None = None) -> dict[str, Any]:
        q = [("dryRun", "All")] if dry_run else []
        out: dict[str, Any] = self.request("POST", path_for(obj["kind"], obj["metadata"].get("namespace")), obj, query=q, timeout=timeout)
        return out

    def merge_patch(self, kind: str, namespace: str | None, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386) of the object's main resource."""
        out: dict[str, Any] = self.request(
            "PATCH", path_for(kind, namespace, name), patch, "application/merge-patch+json", [("fieldManager", FIELD_MANAGER)]
        )
        return out

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        """Set a Deployment's replicas through the scale subresource, as the autoscaler.

        Server-side apply on the subresource, so ``spec.replicas`` is recorded as owned by the field
        manager ``foresail-autoscaler`` (a merge patch there records no owner).
        """
        body = {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas},
        }
        self.request(
            "PATCH",
            path_for("Deployment", namespace, name, "scale"),
            json.dumps(body),
            "application/apply-patch+yaml",
            [("fieldManager", SCALE_MANAGER), ("force", "true")],
        )

    def patch_status(self, kind: str, namespace: str | None, name: str, status: dict[str, Any]) -> None:
        self.request(
            "PATCH",
            path_for(kind, namespace, name, "status"),
            {"status": status},
            "application/merge-patch+json",
            [("fieldManager", FIELD_MANAGER)],
        )

    def update_status(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        build: Any,
        attempts: int = 5,
        listed: dict[str, Any] | None = None,
        on_write: Callable[[float], None] | None = None,
    ) -> bool:
        """Read-modify-write of status with optimistic concurrency: ``build(fresh) -> status patch | None``.

        Several loops write one object's status (each its own fields, some sharing ``conditions``); the
        resourceVersion precondition makes a writer that read a stale object retry on a fresh one. The first
        attempt builds on ``listed`` (the object as a list returned it this pass) when given, saving the read;
        a patch that changes nothing is not sent. ``on_write(sent)`` after a write succeeded, with the
        monotonic time it was sent at (the liveness check waits for the watch to show it).
        """
        for attempt in range(attempts):
            if attempt == 0:
                fresh = listed if listed is not None else self.get(kind, namespace, name)
            else:  # a conflict: read the object from the apiserver itself, never from a cache (``Kube.get``)
                fresh = Kube.get(self, kind, namespace, name)
            if fresh is None:
                return False
            patch = build(fresh)
            if patch is None or merge_noop(fresh.get("status") or {}, patch):
                return True
            body = {"metadata": {"resourceVersion": fresh["metadata"]["resourceVersion"]}, "status": patch}
            sent = time.monotonic()
            try:
                self.request(
                    "PATCH",
                    path_for(kind, namespace, name, "status"),
                    body,
                    "application/merge-patch+json",
                    [("fieldManager", FIELD_MANAGER)],
                )
                if on_write is not None:
                    on_write(sent)
                return True
            except ApiException as e:
                if e.status != 409:
                    raise
        return False

    def delete(self, kind: str, namespace: str | None, name: str, uid: str | None = None) -> None:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", path_for(kind, namespace, name), body)
        except ApiException as e:
            if e.status not in (404, 409):
                raise

    def event(self, involved: dict[str, Any], reason: str, message: str, type_: str = "Normal") -> None:
        """A core/v1 Event about ``involved`` (best effort: events never fail a reconcile)."""
        if not involved.get("kind"):
            raise ValueError("an event's involved object needs its kind (list items carry none)")
        md = involved["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ns = md.get("namespace") or "default"
        ev = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{md['name']}.", "namespace": ns},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": md["name"],
                "namespace": md.get("namespace"),
                "uid": md.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": "foresail"},
            "reportingComponent": "foresail",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(ApiException):
            self.request("POST", path_for("Event", ns), ev)
