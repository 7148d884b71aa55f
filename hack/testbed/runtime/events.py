"""Events about pods, reported as the kubelet would (``kubectl get events`` shows them)."""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

from foresail.api.objects import format_rfc3339
from hack.base.kube import Kube

__all__ = ["COMPONENT", "Events", "pod_event"]

COMPONENT = "foresail-local-runtime"


def pod_event(pod: dict[str, Any], reason: str, message: str, type_: str, now: float) -> dict[str, Any]:
    md = pod["metadata"]
    at = format_rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{md['name']}.{uuid.uuid4().hex[:12]}", "namespace": md["namespace"]},
        "involvedObject": {"kind": "Pod", "apiVersion": "v1", "name": md["name"], "namespace": md["namespace"], "uid": md["uid"]},
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": COMPONENT, "host": pod["spec"].get("nodeName", "")},
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": 1,
        "reportingComponent": COMPONENT,
    }


class Events:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def __call__(self, pod: dict[str, Any], reason: str, message: str, type_: str = "Normal") -> None:
        """Post an event; a failure to post one never stops the pod."""
        with contextlib.suppress(Exception):
            ns = pod["metadata"]["namespace"]
            self.kube.api("POST", f"/api/v1/namespaces/{ns}/events", pod_event(pod, reason, message, type_, time.time()))
