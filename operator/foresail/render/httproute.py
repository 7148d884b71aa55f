"""A Gateway API HTTPRoute splitting an InferenceService's HTTP traffic between its stable and canary revisions
by weight, and the per-revision Services it routes to (pure dicts).

Without a gateway the canary's share is its share of the ready replicas behind the one Service (per
connection, approximate: ``rollout.split``). With the operator's ``FORESAIL_GATEWAY`` set and the HTTPRoute
CRD served (a Gateway API implementation installed) the reconciler also applies, per service (``split_children``):

- ``<name>-stable``: while a canary runs, the pods of the stable revision (label ``foresail.dev/revision``);
  otherwise every pod of the service, like ``<name>`` (an in-place change of the spec rolls inside it, and
  after a promotion the old revision's replicas keep serving their share while they drain);
- ``<name>-canary``: the pods of the canary revision, only while a canary runs (deleted afterwards);
- the HTTPRoute ``<name>``, attached to the Gateway: ``<name>-stable`` at ``100 - w`` and ``<name>-canary``
  at ``w``, the step's ``status.rollout.canaryPercent`` (0 until a canary replica is ready); without a canary (none yet, promoted, rolled back,
  aborted) ``<name>-stable`` alone at 100. The route stays after a rollout: it is the service's entry point.

The split is then per request. The route carries HTTP only (port 8000); gRPC would need a GRPCRoute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import LABEL_ISVC, LABEL_REVISION, pod_is_live, pod_is_ready
from foresail.api.rollout import RolloutPhase
from foresail.render.meta import child_meta
from foresail.render.triton import GRPC, HTTP, child_labels

__all__ = [
    "GATEWAY_PATTERN",
    "HTTPROUTE_API_VERSION",
    "GatewayRef",
    "Role",
    "Split",
    "render_httproute",
    "render_revision_service",
    "revision_service_name",
    "split_children",
    "split_of",
]

HTTPROUTE_API_VERSION = "gateway.networking.k8s.io/v1"
_NAME = r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?"  # a Gateway's name and a listener's (DNS subdomains)
_NS = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
# FORESAIL_GATEWAY: [namespace/]name[:sectionName]
GATEWAY_PATTERN = rf"(?:(?P<namespace>{_NS})/)?(?P<name>{_NAME})(?::(?P<section>{_NAME}))?"


@dataclass(frozen=True)
class GatewayRef:
    """The Gateway the route attaches to (its ``parentRefs``): in the service's namespace unless ``namespace``
    is set, on all its listeners unless ``section_name`` names one."""

    name: str
    namespace: str | None = None
    section_name: str | None = None

    @classmethod
    def parse(cls, text: str) -> GatewayRef | None:
        """``[namespace/]name[:sectionName]`` (FORESAIL_GATEWAY); None when empty. ValueError when malformed."""
        text = text.strip()
        if not text:
            return None
        m = re.fullmatch(GATEWAY_PATTERN, text)
        if m is None:
            raise ValueError(f"not [namespace/]name[:sectionName]: {text!r}")
        return cls(m["name"], m["namespace"], m["section"])

    def __str__(self) -> str:
        return (
            (f"{self.namespace}/" if self.namespace else "") + self.name + (f":{self.section_name}" if self.section_name else "")
        )

    def parent_ref(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": self.name}
        if self.namespace:
            ref["namespace"] = self.namespace
        if self.section_name:
            ref["sectionName"] = self.section_name
        return ref


def _backend(service: str, weight: int, port: int) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": service, "port": port, "weight": weight}


def render_httproute(
    isvc: InferenceService,
    stable_service: str,
    canary_service: str | None,
    canary_weight: int,
    gateway: GatewayRef,
    port: int = HTTP,
) -> dict[str, Any]:
    """The HTTPRoute ``<name>``: ``stable_service`` at weight ``100 - canary_weight`` and ``canary_service`` at
    ``canary_weight`` (both listed, a weight of 0 included); without a canary, the stable Service alone at 100."""
    if not 0 <= canary_weight <= 100:
        raise ValueError(f"canary_weight must be in [0, 100] (got {canary_weight})")
    if canary_service is None:
        backends = [_backend(stable_service, 100, port)]
    else:
        backends = [_backend(stable_service, 100 - canary_weight, port), _backend(canary_service, canary_weight, port)]
    return {
        "apiVersion": HTTPROUTE_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": child_meta(isvc, isvc.name, child_labels(isvc)),
        "spec": {
            "parentRefs": [gateway.parent_ref()],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": backends}],
        },
    }


class Role(StrEnum):
    """Which revision a per-revision Service selects."""

    STABLE = "stable"
    CANARY = "canary"


def revision_service_name(service: str, role: Role) -> str:
    return f"{service}-{role.value}"


@dataclass(frozen=True)
class Split:
    """What the route sends where: the stable Service's revision (None: every pod of the service), the canary's
    revision (None: no canary) and the canary's weight, percent."""

    stable_revision: str | None
    canary_revision: str | None
    canary_weight: int


def _serves(pods: Iterable[Mapping[str, Any]], rev: str) -> bool:
    return any(
        ((p.get("metadata") or {}).get("labels") or {}).get(LABEL_REVISION) == rev and pod_is_live(p) and pod_is_ready(p)
        for p in pods
    )


def split_of(isvc: InferenceService, pods: Iterable[Mapping[str, Any]]) -> Split:
    """The split ``status.rollout`` asks for (the autoscaler's step machine writes it): while a canary runs,
    the stable and canary revisions at ``100 - canaryPercent`` / ``canaryPercent``; otherwise all to stable.
    A canary without a ready replica among the service's ``pods`` (it has just started) weighs 0: a gateway
    answers the requests it sends to a Service without endpoints with errors."""
    ro = isvc.status.rollout
    if ro is None or ro.canary_revision is None or ro.phase is not RolloutPhase.PROGRESSING or not ro.stable_revision:
        return Split(None, None, 0)
    weight = max(0, min(100, ro.canary_percent)) if _serves(pods, ro.canary_revision) else 0
    return Split(ro.stable_revision, ro.canary_revision, weight)


def render_revision_service(isvc: InferenceService, role: Role, revision: str | None) -> dict[str, Any]:
    """``<name>-stable`` or ``<name>-canary``: the service's pods of ``revision`` (None: all of them), HTTP and
    gRPC."""
    selector = {LABEL_ISVC: isvc.name}
    if revision is not None:
        selector[LABEL_REVISION] = revision
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_meta(isvc, revision_service_name(isvc.name, role), child_labels(isvc)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": "http", "port": HTTP, "targetPort": "http", "protocol": "TCP"},
                {"name": "grpc", "port": GRPC, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"},
            ],
        },
    }


def split_children(
    isvc: InferenceService, gateway: GatewayRef, pods: Iterable[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The per-revision Services and the HTTPRoute to apply (Services first: the route's backends), and the
    names of Services to delete (``<name>-canary`` when no canary runs); ``pods``: the service's."""
    split = split_of(isvc, pods)
    stable = render_revision_service(isvc, Role.STABLE, split.stable_revision)
    canary_name = revision_service_name(isvc.name, Role.CANARY)
    if split.canary_revision is None:
        route = render_httproute(isvc, stable["metadata"]["name"], None, 0, gateway)
        return [stable, route], [canary_name]
    canary = render_revision_service(isvc, Role.CANARY, split.canary_revision)
    route = render_httproute(isvc, stable["metadata"]["name"], canary_name, split.canary_weight, gateway)
    return [stable, canary, route], []
