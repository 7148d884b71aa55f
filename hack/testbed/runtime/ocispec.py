"""The OCI runtime configuration (runc's ``config.json``) of one container, as a CRI runtime derives it from
the pod: the command (Kubernetes ``command``/``args`` over the image's ``Entrypoint``/``Cmd``), the user
(``runAsUser``/``runAsGroup`` over the image's ``User``, ``runAsNonRoot`` checked), capabilities (the
container runtime's default set, ``drop``/``add``), ``allowPrivilegeEscalation``, ``readOnlyRootFilesystem``,
the mounts (the runtime's own, ``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf``, then the volumes,
parents first; a volume at ``/dev/shm`` replaces the default one), CPU and memory limits, and the pod's
network namespace. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from hack.testbed.runtime.mounts import Mount

__all__ = [
    "DEFAULT_CAPABILITIES",
    "ContainerConfigError",
    "Identity",
    "capabilities",
    "command",
    "identity",
    "quantity",
    "resources",
    "runtime_spec",
]

# containerd's default capability set for containers
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)  # fmt: skip
MASKED = ("/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
          "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap")  # fmt: skip
READONLY = ("/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
            "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}  # fmt: skip


class ContainerConfigError(Exception):
    """The container cannot be created as specified (the kubelet's CreateContainerConfigError)."""


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity (``1Gi``, ``500m``, ``2``, ``1e3``) as a number. Pure."""
    m = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([A-Za-z]*)", str(text).strip())
    if m is None or m.group(2) not in SUFFIXES:
        raise ValueError(f"not a quantity: {text!r}")
    return float(m.group(1)) * SUFFIXES[m.group(2)]


def command(container: dict[str, Any], image: dict[str, Any]) -> list[str]:
    """What runs: ``command`` replaces the image's Entrypoint (and drops its Cmd), ``args`` replace its Cmd."""
    entry = list(container.get("command") or image.get("Entrypoint") or [])
    if container.get("command"):
        args = list(container.get("args") or [])
    else:
        args = list(container.get("args") or image.get("Cmd") or [])
    argv = entry + args
    if not argv:
        raise ContainerConfigError("no command specified")
    return argv


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _sc(pod: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    """A security setting of the container, else of the pod."""
    c = (container.get("securityContext") or {}).get(key)
    return c if c is not None else (pod["spec"].get("securityContext") or {}).get(key)


def identity(
    pod: dict[str, Any], container: dict[str, Any], image: dict[str, Any], passwd: dict[str, tuple[int, int, str]]
) -> Identity:
    """Who the process runs as; ``passwd`` maps user names and uids (as text) to (uid, gid, home)."""
    user, _, group = str(image.get("User") or "").partition(":")
    uid = _sc(pod, container, "runAsUser")
    if uid is None:
        if user and not user.isdigit() and user not in passwd:
            raise ContainerConfigError(f"unable to find user {user}: no matching entries in passwd file")
        if user and not user.isdigit() and _sc(pod, container, "runAsNonRoot"):
            raise ContainerConfigError(f"container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root")
        uid = int(user) if user.isdigit() else passwd[user][0] if user else 0
    if _sc(pod, container, "runAsNonRoot") and int(uid) == 0:
        raise ContainerConfigError("container has runAsNonRoot and image will run as root")
    entry = passwd.get(str(uid))
    gid = _sc(pod, container, "runAsGroup")
    if gid is None:
        gid = int(group) if group.isdigit() else entry[1] if entry else 0
    pod_sc = pod["spec"].get("securityContext") or {}
    groups = [int(g) for g in pod_sc.get("supplementalGroups") or []]
    if pod_sc.get("fsGroup") is not None:
        groups.insert(0, int(pod_sc["fsGroup"]))
    return Identity(int(uid), int(gid), tuple(dict.fromkeys(groups)), entry[2] if entry else "/")


def capabilities(container: dict[str, Any], uid: int) -> dict[str, list[str]]:
    """The default set, less ``drop`` (``ALL`` drops every one), plus ``add``; privileged keeps all it has.
    A non-root process gets them only in its bounding set (the kernel clears the others at exec)."""
    sc = container.get("securityContext") or {}
    caps = (sc.get("capabilities") or {})
    drop = {f"CAP_{c.upper().removeprefix('CAP_')}" for c in caps.get("drop") or []}
    have = [] if "CAP_ALL" in drop else [c for c in DEFAULT_CAPABILITIES if c not in drop]
    have += [f"CAP_{c.upper().removeprefix('CAP_')}" for c in caps.get("add") or []]
    have = list(dict.fromkeys(have))
    effective = have if uid == 0 else []
    return {"bounding": have, "effective": effective, "permitted": effective}


def resources(container: dict[str, Any]) -> dict[str, Any]:
    """The cgroup settings of the container's CPU and memory: limits, and the CPU request as shares."""
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    out: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if limits.get("memory"):
        out["memory"] = {"limit": int(quantity(limits["memory"]))}
    cpu: dict[str, int] = {}
    if limits.get("cpu"):
        cpu.update(quota=max(1000, int(quantity(limits["cpu"]) * 100_000)), period=100_000)
    if requests.get("cpu") or limits.get("cpu"):
        cpu["shares"] = max(2, int(quantity(requests.get("cpu") or limits["cpu"]) * 1024))
    if cpu:
        out["cpu"] = cpu
    return out


def _default_mounts(shm_replaced: bool) -> list[dict[str, Any]]:
    m = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]  # fmt: skip
    if not shm_replaced:  # the container runtime's default /dev/shm: 64 MiB
        m.insert(3, {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})  # fmt: skip
    return m


def runtime_spec(
    *,
    pod: dict[str, Any],
    container: dict[str, Any],
    image: dict[str, Any],
    who: Identity,
    env: dict[str, str],
    mounts: Sequence[Mount],
    rootfs: str,
    netns: str,
    cgroups_path: str | None,
) -> dict[str, Any]:
    """runc's config.json; ``mounts`` are the volumes and the pod's /etc files; ``cgroups_path`` None: the host
    does not let the runtime set limits."""
    sc = container.get("securityContext") or {}
    privileged = bool(sc.get("privileged"))
    targets = {m.target for m in mounts}
    binds = [
        {"destination": m.target, "type": "bind", "source": m.source, "options": ["rbind", "rprivate", "ro" if m.read_only else "rw"]}
        for m in sorted(mounts, key=lambda m: len(PurePosixPath(m.target).parts))
    ]
    caps = capabilities(container, who.uid)
    if privileged:
        every = [*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_RESOURCE"]
        caps = {"bounding": every, "effective": every if who.uid == 0 else [], "permitted": every if who.uid == 0 else []}
    workdir = container.get("workingDir") or image.get("WorkingDir") or "/"
    linux: dict[str, Any] = {
        "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network", "path": netns}],
        "maskedPaths": [] if privileged else list(MASKED),
        "readonlyPaths": [] if privileged else list(READONLY),
        "resources": resources(container) if cgroups_path else {"devices": [{"allow": False, "access": "rwm"}]},
    }
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": who.uid, "gid": who.gid, **({"additionalGids": list(who.groups)} if who.groups else {})},
            "args": command(container, image),
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": workdir,
            "capabilities": caps,
            "noNewPrivileges": sc.get("allowPrivilegeEscalation") is False,
        },
        "root": {"path": rootfs, "readonly": bool(sc.get("readOnlyRootFilesystem"))},
        "hostname": pod["metadata"]["name"],
        "mounts": _default_mounts("/dev/shm" in targets) + binds,
        "linux": linux,
    }
