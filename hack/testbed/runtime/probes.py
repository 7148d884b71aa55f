"""Startup, readiness and liveness probes: when each is due, what its results add up to, and one check (HTTP,
TCP or exec) dialled from the cluster network like a kubelet on the pod network."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Probe", "check", "container_port"]


@dataclass
class Probe:
    spec: dict[str, Any]
    successes: int = 0
    failures: int = 0
    last: float = 0.0
    ok: bool = False

    @property
    def timeout_s(self) -> float:
        return float(self.spec.get("timeoutSeconds", 1))

    def due(self, now: float, started: float) -> bool:
        """Past ``initialDelaySeconds`` since the container started and ``periodSeconds`` since the last check."""
        if now - started < float(self.spec.get("initialDelaySeconds", 0)):
            return False
        return now - self.last >= float(self.spec.get("periodSeconds", 10))

    def record(self, ok: bool, now: float) -> bool:
        """Count one result; True while failures are at ``failureThreshold`` or more (the probe fails)."""
        self.last = now
        if ok:
            self.successes += 1
            self.failures = 0
            if self.successes >= int(self.spec.get("successThreshold", 1)):
                self.ok = True
            return False
        self.failures += 1
        self.successes = 0
        if self.failures >= int(self.spec.get("failureThreshold", 3)):
            self.ok = False
            return True
        return False

    def reset(self) -> None:
        """A (re)started container starts its probes from scratch."""
        self.successes = self.failures = 0
        self.ok = False
        self.last = 0.0


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's port: a number or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"no container port named {port!r}")


def check(spec: dict[str, Any], container: dict[str, Any], ip: str, run: Callable[[list[str], float], bool]) -> bool:
    """One probe check against the pod at ``ip`` (run it from the cluster's client namespace); exec probes
    run in the container by ``run(argv, timeout)``."""
    timeout = float(spec.get("timeoutSeconds", 1))
    if "httpGet" in spec:
        g = spec["httpGet"]
        url = f"{g.get('scheme', 'HTTP').lower()}://{ip}:{container_port(container, g['port'])}{g.get('path', '/')}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return 200 <= int(r.status) < 400
        except (urllib.error.URLError, OSError, ValueError):
            return False
    if "tcpSocket" in spec:
        try:
            with socket.create_connection((ip, container_port(container, spec["tcpSocket"]["port"])), timeout=timeout):
                return True
        except (OSError, ValueError):
            return False
    if "exec" in spec:
        return run(list(spec["exec"]["command"]), timeout)
    return True
