"""One container's life as the kubelet reports it: waiting (creating, pulling its image, back-off), running,
terminated; restarts with back-off."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any, Protocol

from hack.testbed.runtime.probes import Probe

__all__ = ["BACKOFF_INITIAL_S", "BACKOFF_MAX_S", "BACKOFF_RESET_S", "Container", "Handle", "exit_code"]

BACKOFF_INITIAL_S = 2.0  # the kubelet starts at 10 s; shorter here so tests see restarts quickly
BACKOFF_MAX_S = 60.0
BACKOFF_RESET_S = 600.0  # back-off starts over after 10 minutes of good running, as in the kubelet


class Handle(Protocol):
    """What runs a container (runc, or processes in the fast mode): signals, a hard kill, exec, cleanup."""

    def signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...
    def exec(self, argv: list[str], timeout: float) -> bool: ...
    def cleanup(self) -> None: ...


def exit_code(rc: int) -> int:
    """A process's exit status as Kubernetes reports it: killed by signal N is 128 + N."""
    return rc if rc >= 0 else 128 - rc


@dataclass
class Container:
    spec: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    handle: Handle | None = None
    image_id: str = ""  # repository@digest of the image it runs, once pulled
    restart_count: int = 0
    started_at: str | None = None
    started_mono: float = 0.0
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    next_start: float = 0.0
    backoff: float = BACKOFF_INITIAL_S
    readiness: Probe | None = None
    liveness: Probe | None = None
    startup: Probe | None = None
    done: bool = False  # terminated and will not restart
    failed_at: float | None = None  # when the last attempt to start it failed (ErrImagePull turns into a back-off)

    def __post_init__(self) -> None:
        for kind in ("readiness", "liveness", "startup"):
            if self.spec.get(f"{kind}Probe"):
                setattr(self, kind, Probe(self.spec[f"{kind}Probe"]))

    @property
    def succeeded(self) -> bool:
        """Terminated for good with exit code 0 (an init container that did its work)."""
        return self.done and self.state.get("terminated", {}).get("exitCode") == 0

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def ready(self) -> bool:
        if self.proc is None or "running" not in self.state:
            return False
        return self.readiness.ok if self.readiness else True

    def probes(self) -> list[tuple[str, Probe]]:
        """The probes that run now: until the startup probe succeeds it is the only one (as in the kubelet)."""
        if self.startup is not None and not self.startup.ok:
            return [("startup", self.startup)]
        return [(k, p) for k, p in (("readiness", self.readiness), ("liveness", self.liveness)) if p is not None]

    def waiting(self, reason: str, message: str, final: bool = False) -> None:
        self.state = {"waiting": {"reason": reason, "message": message}}
        self.done = self.done or final

    def start_failed(self, reason: str, message: str, mono: float) -> None:
        """A start that failed before the container ran (its image, its configuration): retried after the
        back-off, which grows as for crashes."""
        self.waiting(reason, message)
        self.failed_at = mono
        self.next_start = mono + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)

    def started(self, proc: subprocess.Popen[bytes], handle: Handle, at: str, mono: float) -> None:
        self.proc, self.handle, self.started_at, self.started_mono = proc, handle, at, mono
        self.failed_at = None
        self.state = {"running": {"startedAt": at}}
        for p in (self.readiness, self.liveness, self.startup):
            if p:
                p.reset()

    def exited(self, rc: int, policy: str, at: str, mono: float, reason: str | None = None, message: str = "") -> bool:
        """The process ended with ``rc``: terminated for good, or waiting to restart after the back-off
        (``restartPolicy`` ``policy``). Returns whether it restarts. ``message``: its termination message."""
        term: dict[str, Any] = {
            "exitCode": exit_code(rc),
            "reason": reason or ("Completed" if rc == 0 else "Error"),
            "startedAt": self.started_at,
            "finishedAt": at,
        }
        if message:
            term["message"] = message
        self.proc = None
        restart = policy == "Always" or (policy == "OnFailure" and rc != 0)
        if not restart:
            self.state = {"terminated": term}
            self.done = True
            return False
        self.last_state = {"terminated": term}
        if mono - self.started_mono > BACKOFF_RESET_S:
            self.backoff = BACKOFF_INITIAL_S
        self.next_start = mono + self.backoff
        self.waiting("CrashLoopBackOff", f"back-off {self.backoff:.0f}s restarting failed container={self.name}")
        self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)
        self.restart_count += 1
        return True

    def killed(self, rc: int | None, at: str) -> None:
        """Stopped because its pod is deleted (``rc`` None: it had to be killed)."""
        if self.proc is not None or "running" in self.state:
            code = 137 if rc is None else exit_code(rc)
            self.state = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "finishedAt": at}}
            self.proc = None
        self.done = True

    def status(self, uid: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.spec["image"],
            "imageID": self.image_id,
            "containerID": f"local://{uid[:8]}-{self.name}-{self.restart_count}" if self.started_at else None,
            "ready": self.ready,
            "started": "running" in self.state,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
