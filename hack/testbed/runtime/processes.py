"""The fast development mode (``FORESAIL_RUNTIME=processes``, never in ``make test``): no images; Triton
images run the pinned tritonserver, the Foresail image ``python -m foresail`` from the checkout's virtualenv,
as root, in the pod's network namespace with its volumes bound in a private mount namespace (``mounts``).
Any other image waits with ``UnsupportedLocalImage``."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from pathlib import Path
from typing import IO, Any

from hack import tools
from hack.base.paths import REPO, VENV
from hack.testbed.runtime.images import image_kind
from hack.testbed.runtime.mounts import Mount, mount_script
from hack.testbed.triton import tritonserver_command

__all__ = ["KEEP_VISIBLE", "ProcessHandle", "UnsupportedCommand", "container_command", "start_process"]

# what a container's processes need to see whatever its volumes hide: the checkout (virtualenv, code) and the tools
KEEP_VISIBLE = (str(REPO), str(tools.TOOLS))


class UnsupportedCommand(Exception):
    """A container this mode cannot run: an image it does not know, or a Triton image running something else."""


def container_command(image: str, spec: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """argv and environment additions for container ``spec`` (its image ``image``)."""
    kind = image_kind(image)
    if kind not in ("triton", "foresail"):
        raise UnsupportedCommand(f"image {image!r} cannot run on the local runtime's process mode (it runs Triton and Foresail images)")
    argv = list(spec.get("command") or []) + list(spec.get("args") or [])
    if kind == "triton":
        if argv and not argv[0].startswith("-"):
            if Path(argv[0]).name != "tritonserver":
                raise UnsupportedCommand(f"Triton image command {argv[0]!r}: only tritonserver runs locally")
            argv = argv[1:]
        return tritonserver_command(argv)
    python = str(VENV / "bin/python")
    if argv and Path(argv[0]).name == "foresail":
        return [python, "-m", "foresail", *argv[1:]], {}
    if argv and Path(argv[0]).name.startswith("python"):
        return [python, *argv[1:]], {}
    return [python, "-m", "foresail", *argv], {}


class ProcessHandle:
    """A container's process group, started by ``ip netns exec`` in the pod's network namespace."""

    def __init__(self, proc: subprocess.Popen[bytes], netns: str) -> None:
        self.proc, self.netns = proc, netns

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def exec(self, argv: list[str], timeout: float) -> bool:
        try:
            return subprocess.run(["ip", "netns", "exec", self.netns, *argv], capture_output=True, timeout=timeout, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def cleanup(self) -> None:
        self.kill()


def start_process(
    spec: dict[str, Any], env: dict[str, str], mounts: list[Mount], netns: str, cwd: Path, log: IO[bytes]
) -> ProcessHandle:
    """Start container ``spec`` as processes (``env``: the Kubernetes-defined variables)."""
    argv, extra_env = container_command(spec["image"], spec)
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/root", "LANG": "C.UTF-8"}
    lines = ["set -e", *mount_script(mounts, KEEP_VISIBLE)]
    if spec.get("workingDir"):
        lines.append(f"mkdir -p {shlex.quote(spec['workingDir'])} && cd {shlex.quote(spec['workingDir'])}")
    lines.append('exec "$@"')
    log.write(f"\n--- starting {shlex.join(argv)}\n".encode())
    log.flush()
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, "bash", "-c", "\n".join(lines), "bash", *argv],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**base, **env, **extra_env}, cwd=cwd,
        start_new_session=True,
    )  # fmt: skip
    return ProcessHandle(proc, netns)
