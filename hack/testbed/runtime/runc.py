"""One container run by runc: a bundle whose root filesystem is an overlay (the image's unpacked tree below,
a fresh writable layer above, as every container start gets), ``runc run`` in the foreground (its exit status
is the container's, the signals it receives reach the container's first process), ``runc kill`` to stop it
for good, ``runc exec`` for exec probes, and the cleanup: the container, its overlay, its bundle."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import IO, Any

__all__ = ["RuncContainer", "cgroup_parents", "unmount_below"]


class RuncContainer:
    def __init__(self, runc: Path, state: Path, bundle: Path, cid: str) -> None:
        self.runc, self.state, self.bundle, self.id = str(runc), str(state), bundle, cid
        self.proc: subprocess.Popen[bytes] | None = None

    def _cmd(self, *args: str) -> list[str]:
        return [self.runc, "--root", self.state, *args]

    def start(self, lower: Path, config: dict[str, Any], log: IO[bytes]) -> subprocess.Popen[bytes]:
        """Create the bundle (overlay root filesystem on ``lower``) and ``runc run`` the container."""
        self.cleanup()
        rootfs, upper, work = self.bundle / "rootfs", self.bundle / "upper", self.bundle / "work"
        for d in (rootfs, upper, work):
            d.mkdir(parents=True, exist_ok=True)
        opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(rootfs)], check=True, capture_output=True)
        (self.bundle / "config.json").write_text(json.dumps({**config, "root": {**config["root"], "path": str(rootfs)}}))
        self.proc = subprocess.Popen(
            self._cmd("run", "--bundle", str(self.bundle), self.id),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        return self.proc

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the container's first process (runc run forwards what it receives)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL every process of the container."""
        subprocess.run(self._cmd("kill", "--all", self.id, "KILL"), capture_output=True, check=False)
        self.signal(signal.SIGKILL)

    def exec(self, argv: list[str], timeout: float) -> bool:
        """An exec probe: ``argv`` run in the container; True when it exits 0 within ``timeout``."""
        try:
            return subprocess.run(self._cmd("exec", self.id, *argv), capture_output=True, timeout=timeout, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def cleanup(self) -> None:
        """Delete the container (whatever state it is in), unmount its root filesystem, remove the bundle."""
        subprocess.run(self._cmd("delete", "--force", self.id), capture_output=True, check=False)
        unmount_below(self.bundle)
        shutil.rmtree(self.bundle, ignore_errors=True)


def unmount_below(path: Path) -> list[str]:
    """Lazily unmount every mount at or below ``path``, deepest first; returns what was unmounted."""
    prefix = str(path.resolve()) if path.exists() else str(path)
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    hits = sorted({p for p in points if p == prefix or p.startswith(prefix + "/")}, key=len, reverse=True)
    for p in hits:
        subprocess.run(["umount", "-l", p], capture_output=True, check=False)
    return hits


def cgroup_parents(relative: str) -> list[Path]:
    """Where a relative cgroups path lands in each cgroup v1 hierarchy (below this process's own cgroup) or in
    the v2 tree: the directories to remove when the containers below them are gone."""
    out = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            names = [c.removeprefix("name=") for c in controllers.split(",") if c] or ["unified"]
            for name in names:
                base = Path("/sys/fs/cgroup") / name if Path("/sys/fs/cgroup", name).is_dir() else Path("/sys/fs/cgroup")
                out.append(base / path.lstrip("/") / relative)
    return sorted(set(out))
