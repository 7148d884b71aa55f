"""The mount plan of one container: volumes bound at their mountPath in the container's private mount namespace.

Containers share the host's root filesystem, so a volume mounted at ``/tmp`` hides everything the host keeps
under ``/tmp``: a checkout there (the virtualenv the container runs from, the pod's volume directories), or a
volume's own source. The plan therefore

* opens, before anything is mounted, a file descriptor on every source and every path that must stay
  visible (``keep``) that a mount would hide, and binds those from ``/proc/self/fd/N`` (the descriptor holds
  the directory itself, not its name, so later mounts cannot hide it);
* mounts parents before children (``/tmp`` before ``/tmp/cache``), whatever order the pod lists them in;
* binds each hidden ``keep`` path again at its own place right after the mount that hid it;
* remounts read-only mounts last, so that mount points below them can still be created.

Pure: it returns the lines of a bash script (run by ``ip netns exec``, which gives the container its own mount
namespace); the descriptors are opened there, since the kernel binds only mounts of the caller's namespace.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

__all__ = ["FIRST_FD", "Mount", "mount_script"]

FIRST_FD = 10  # bash keeps 0-9 for redirections of its own


@dataclass(frozen=True)
class Mount:
    source: str  # host path: a directory, or a file with is_dir False
    target: str  # absolute path in the container
    read_only: bool = False
    is_dir: bool = True


def _under(path: str, top: str) -> bool:
    """``path`` is ``top`` or lies below it."""
    p, t = PurePosixPath(path), PurePosixPath(top)
    return p == t or t in p.parents


def _depth(path: str) -> int:
    return len(PurePosixPath(path).parts)


def mount_script(mounts: Sequence[Mount], keep: Sequence[str] = (), first_fd: int = FIRST_FD) -> list[str]:
    """The bash lines that mount ``mounts`` and keep each ``keep`` path visible (the script's caller adds the exec)."""
    q = shlex.quote
    targets = [m.target for m in mounts]
    fds: dict[str, int] = {}
    lines: list[str] = []

    def hold(path: str) -> None:
        if path not in fds:
            fds[path] = first_fd + len(fds)
            lines.append(f"exec {fds[path]}<{q(path)}")

    for i, m in enumerate(mounts):
        if any(_under(m.source, t) for j, t in enumerate(targets) if j != i):
            hold(m.source)
    hidden_keep = [k for k in keep if any(_under(k, t) and k != t for t in targets)]
    for k in hidden_keep:
        hold(k)

    def src(path: str) -> str:
        return f"/proc/self/fd/{fds[path]}" if path in fds else q(path)

    for m in sorted(mounts, key=lambda m: _depth(m.target)):
        t = q(m.target)
        if m.is_dir:
            lines.append(f"mkdir -p {t}")
        else:
            lines.append(f"mkdir -p {q(str(PurePosixPath(m.target).parent))} && touch {t}")
        lines.append(f"mount --no-canonicalize --bind {src(m.source)} {t}")
        for k in hidden_keep:
            if _under(k, m.target) and k != m.target:
                lines.append(f"mkdir -p {q(k)} && mount --no-canonicalize --bind {src(k)} {q(k)}")
    lines += [f"mount -o remount,bind,ro {q(m.target)}" for m in mounts if m.read_only]
    lines += [f"exec {fd}<&-" for fd in fds.values()]
    return lines
