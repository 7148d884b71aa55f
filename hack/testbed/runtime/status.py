"""A pod's status as the kubelet reports it, from its containers and the readiness gates' conditions. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hack.testbed.runtime.containers import Container

__all__ = ["Conditions", "pod_phase", "pod_status"]


@dataclass
class Conditions:
    """Condition entries that keep their lastTransitionTime while their status stays the same."""

    transitions: dict[str, tuple[str, str]] = field(default_factory=dict)

    def make(self, type_: str, status: bool, now: str, reason: str = "", message: str = "") -> dict[str, Any]:
        s = "True" if status else "False"
        prev = self.transitions.get(type_)
        if prev is None or prev[0] != s:
            self.transitions[type_] = (s, now)
        return {
            "type": type_,
            "status": s,
            "lastTransitionTime": self.transitions[type_][1],
            "lastProbeTime": None,
            "reason": reason,
            "message": message,
        }


def pod_phase(containers: Sequence[Container]) -> str:
    """Succeeded/Failed once every container is done (by exit codes), Running once one ran, else Pending."""
    if containers and all(c.done for c in containers):
        ok = all(c.state.get("terminated", {}).get("exitCode", 1) == 0 for c in containers)
        return "Succeeded" if ok else "Failed"
    if any("running" in c.state or c.restart_count for c in containers):
        return "Running"
    return "Pending"


def pod_status(
    pod: dict[str, Any],
    uid: str,
    containers: Sequence[Container],
    conditions: Conditions,
    *,
    sandbox: bool,
    ip: str | None,
    host_ip: str,
    start_time: str,
    now: str,
    init_containers: Sequence[Container] = (),
) -> dict[str, Any]:
    """The status to write for ``pod``: Ready only when every container is ready *and* every readiness gate
    condition (set by others on the pod) is True."""
    present = {c["type"]: c for c in pod.get("status", {}).get("conditions", []) or []}
    gates = [g["conditionType"] for g in pod["spec"].get("readinessGates") or []]
    gates_false = [g for g in gates if present.get(g, {}).get("status") != "True"]
    containers_ready = bool(containers) and all(c.ready for c in containers)
    initialized = all(c.succeeded for c in init_containers)
    init_failed = any(c.done and not c.succeeded for c in init_containers)
    phase = "Failed" if init_failed else pod_phase(containers) if initialized else "Pending"
    if not containers_ready:
        not_ready = " ".join(c.name for c in containers if not c.ready)
        r_reason, r_msg = "ContainersNotReady", f"containers with unready status: [{not_ready}]"
    elif gates_false:
        r_reason = "ReadinessGatesNotReady"
        r_msg = f"corresponding condition of pod readiness gate {gates_false[0]!r} does not exist or is not True"
    else:
        r_reason, r_msg = "", ""
    status: dict[str, Any] = {
        "phase": phase,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "conditions": [
            conditions.make("PodReadyToStartContainers", sandbox or phase in ("Succeeded", "Failed"), now),
            conditions.make(
                "Initialized", initialized, now, "" if initialized else "ContainersNotInitialized",
                "" if initialized else "containers with incomplete status: [" + " ".join(c.name for c in init_containers if not c.succeeded) + "]",
            ),
            conditions.make("ContainersReady", containers_ready, now, "" if containers_ready else "ContainersNotReady"),
            conditions.make("Ready", containers_ready and not gates_false, now, r_reason, r_msg),
            conditions.make("PodScheduled", True, now),
        ],
        "containerStatuses": [c.status(uid) for c in containers],
    }
    if init_containers:
        status["initContainerStatuses"] = [c.status(uid) for c in init_containers]
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return status
