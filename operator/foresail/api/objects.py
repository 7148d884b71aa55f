"""Pure helpers on Kubernetes objects held as plain dicts: conditions, pod states, grouping, timestamps.

One home for what the controllers, the renderers, the testbed and the e2e tests all ask of listed
objects, so that "is this pod ready" has exactly one answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, overload

__all__ = [
    "GPU_PRODUCT_LABEL",
    "LABEL_ISVC",
    "LABEL_REVISION",
    "LABEL_SLOT",
    "PROM_LABEL_ISVC",
    "PROM_LABEL_REVISION",
    "WARM_GATE",
    "condition",
    "condition_status",
    "controller_of",
    "format_rfc3339",
    "group_by_label",
    "is_condition_true",
    "parse_rfc3339",
    "pod_is_live",
    "pod_is_ready",
    "pod_is_warm",
    "spec_replicas",
]

# The label NVIDIA's GPU feature discovery puts on nodes (and Foresail's nodeSelector uses to pin a product)
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# The label on every child (and pod) of an InferenceService: its name
LABEL_ISVC = "foresail.dev/inferenceservice"
# ... as Prometheus names it on the scraped series (a pod label mapped by the PodMonitor or scrape config)
PROM_LABEL_ISVC = "foresail_dev_inferenceservice"
# The label on every pod of an InferenceService: the revision it serves (api.rollout.revision_of)
LABEL_REVISION = "foresail.dev/revision"
PROM_LABEL_REVISION = "foresail_dev_revision"
# The label on the pods (and in the selector) of the second Deployment slot, <name>-b (api.rollout.Slot)
LABEL_SLOT = "foresail.dev/slot"
# The readiness gate of an InferenceService's pods: True once the warm-up passed
WARM_GATE = "foresail.dev/warm"


def condition(obj: Mapping[str, Any] | None, type_: str) -> dict[str, Any] | None:
    """The condition ``type_`` of ``obj.status.conditions`` (a copy), or None."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def condition_status(obj: Mapping[str, Any] | None, type_: str) -> str | None:
    """``"True"``, ``"False"``, ``"Unknown"`` or None when the condition is absent."""
    c = condition(obj, type_)
    return None if c is None else str(c.get("status"))


def is_condition_true(obj: Mapping[str, Any] | None, type_: str) -> bool:
    return condition_status(obj, type_) == "True"


def pod_is_live(pod: Mapping[str, Any]) -> bool:
    """Not being deleted and not finished: a pod that holds (or will hold) its resources."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    """The pod's Ready condition is True (every container ready and every readiness gate True)."""
    return is_condition_true(pod, "Ready")


def pod_is_warm(pod: Mapping[str, Any]) -> bool:
    """The pod passed its warm-up: its readiness gate ``foresail.dev/warm`` is True."""
    return is_condition_true(pod, WARM_GATE)


def spec_replicas(obj: Mapping[str, Any] | None) -> int:
    """``spec.replicas`` of a Deployment (or Scale); 0 when the object or the field is absent."""
    return int(((obj or {}).get("spec") or {}).get("replicas", 0) or 0)


def controller_of(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The object's controller reference (the ownerReference with ``controller: true``), or None."""
    for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def group_by_label(objs: Iterable[dict[str, Any]], label: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Objects carrying ``label``, keyed by (namespace, label value); objects without it are left out."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for o in objs:
        md = o.get("metadata") or {}
        value = (md.get("labels") or {}).get(label)
        if value:
            out.setdefault((str(md.get("namespace", "")), str(value)), []).append(o)
    return out


def format_rfc3339(t: float | datetime) -> str:
    """A Kubernetes timestamp (UTC, whole seconds): ``2026-01-02T03:04:05Z``."""
    dt = t if isinstance(t, datetime) else datetime.fromtimestamp(t, UTC)
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@overload
def parse_rfc3339(s: str) -> float: ...
@overload
def parse_rfc3339(s: None) -> None: ...
def parse_rfc3339(s: str | None) -> float | None:
    """Seconds since the epoch of a Kubernetes timestamp (``Z`` or an offset, optional fraction); None for None."""
    if s is None:
        return None
    dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
