"""Traffic split through a Gateway API implementation (``FORESAIL_GATEWAY``): whether the HTTPRoute CRD is
served, and when an InferenceService's split changed.

``HTTPRouteDiscovery`` asks the apiserver's discovery document of ``gateway.networking.k8s.io/v1`` whether
``httproutes`` is served, and keeps the answer for a while (``present_ttl_s`` / ``absent_ttl_s``), so that a
reconcile costs no request for it; an apply answered 404 (the CRD was removed) forgets it at once.

``SplitWatch`` sees every InferenceService event: when ``status.rollout`` moved to another split (a canary
started, its step's percent changed, it was promoted, rolled back or aborted; the autoscaler writes that
status), it marks the service for a coalesced reconcile, so the route's weights follow the step at once rather
than at the 30 s resync.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from foresail.clients.kube import ApiException, Kube

__all__ = ["HTTPROUTE_GROUP_VERSION", "HTTPRouteDiscovery", "SplitWatch", "split_signature"]

HTTPROUTE_GROUP_VERSION = "/apis/gateway.networking.k8s.io/v1"


class HTTPRouteDiscovery:
    """Whether ``httproutes`` of ``gateway.networking.k8s.io/v1`` is served, asked at most once per TTL."""

    def __init__(
        self, present_ttl_s: float = 300.0, absent_ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.present_ttl_s = present_ttl_s
        self.absent_ttl_s = absent_ttl_s
        self.clock = clock
        self._known: tuple[bool, float] | None = None  # (served, when asked)
        self._lock = threading.Lock()

    def served(self, kube: Kube) -> bool:
        with self._lock:
            now = self.clock()
            if self._known is not None:
                served, asked = self._known
                if now - asked < (self.present_ttl_s if served else self.absent_ttl_s):
                    return served
            served = self._ask(kube)
            self._known = (served, now)
            return served

    def forget(self) -> None:
        """Ask again next time (an apply found no such resource)."""
        with self._lock:
            self._known = None

    @staticmethod
    def _ask(kube: Kube) -> bool:
        try:
            doc = kube.request("GET", HTTPROUTE_GROUP_VERSION)
        except ApiException as e:
            if e.status in (404, 503):  # the group is not served (or its CRD is being established)
                return False
            raise
        return any(r.get("name") == "httproutes" for r in (doc or {}).get("resources") or [])


def split_signature(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of ``status.rollout`` the route's weights and the per-revision Services' selectors depend on."""
    ro = (body.get("status") or {}).get("rollout") or {}
    return (ro.get("phase"), ro.get("stableRevision"), ro.get("canaryRevision"), ro.get("canaryPercent"))


class SplitWatch:
    """InferenceService events -> ``mark((namespace, name))`` when the service's split changed."""

    def __init__(self, mark: Callable[[tuple[str, str]], None]) -> None:
        self.mark = mark
        self._seen: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._lock = threading.Lock()

    def __call__(self, kind: str, body: Mapping[str, Any]) -> None:
        md = body.get("metadata") or {}
        key = (str(md.get("namespace") or ""), str(md.get("name") or ""))
        with self._lock:
            if kind == "DELETED":
                self._seen.pop(key, None)
                return
            sig = split_signature(body)
            before = self._seen.get(key)
            self._seen[key] = sig
        if before is not None and before != sig:
            self.mark(key)
