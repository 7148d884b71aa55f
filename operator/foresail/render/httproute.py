"""A Gateway API HTTPRoute splitting an InferenceService's HTTP traffic between its stable and canary revisions
by weight (pure dict).

Without a gateway the canary's share is its share of the ready replicas behind the one Service (per
connection, approximate: ``rollout.split``). Where a Gateway API implementation is installed (the
HTTPRoute CRD is present) the controller renders this route instead, attached to the Gateway it is given,
and the split is per request: ``backendRefs`` weights ``100 - w`` and ``w``. The route carries HTTP only
(port 8000); gRPC would need a GRPCRoute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foresail.api.inferenceservice import InferenceService
from foresail.render.meta import child_meta
from foresail.render.triton import HTTP, child_labels

__all__ = ["HTTPROUTE_API_VERSION", "GatewayRef", "render_httproute"]

HTTPROUTE_API_VERSION = "gateway.networking.k8s.io/v1"


@dataclass(frozen=True)
class GatewayRef:
    """The Gateway the route attaches to (its ``parentRefs``): in the service's namespace unless ``namespace``
    is set, on all its listeners unless ``section_name`` names one."""

    name: str
    namespace: str | None = None
    section_name: str | None = None

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
