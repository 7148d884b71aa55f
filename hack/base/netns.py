"""Run Python code inside a network namespace: sockets opened there live there.

``setns(2)`` moves only the calling *thread*, so the helpers here run the work on a fresh thread that
enters the namespace first. Used by the local pod runtime's probes and by e2e tests that must dial pod
IPs from the cluster's client namespace.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable
from typing import TypeVar

CLONE_NEWNET = 0x40000000
T = TypeVar("T")

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def enter(ns: str) -> None:
    """Move the calling thread into the named network namespace (``/run/netns/<ns>``)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def call_in(ns: str, fn: Callable[[], T], timeout: float | None = None) -> T:
    """Run ``fn()`` on a thread inside ``ns`` and return its result (or raise its exception)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            enter(ns)
            box["value"] = fn()
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=target, name=f"netns-{ns}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"call in netns {ns} did not finish in {timeout}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def black_hole(ns: str, ip: str, port: int, on: bool = True) -> None:
    """Silently drop (``on``) or again pass (``on=False``) TCP between namespace ``ns`` and ``ip:port``, both ways:
    connections hang as behind a dead link, nothing is refused. Only for namespaces the testbed created."""
    if not ns.startswith(("fs-", "fsp-")):
        raise ValueError(f"netns {ns!r} is not the testbed's")
    op = "-I" if on else "-D"
    for chain, where in (("OUTPUT", ["-d", ip, "--dport", str(port)]), ("INPUT", ["-s", ip, "--sport", str(port)])):
        cmd = ["ip", "netns", "exec", ns, "iptables", "-w", op, chain, "-p", "tcp", *where, "-j", "DROP"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 and on:
            raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
