"""Helpers the build steps share: an overlay on the Debian tree (a step's writes land in its own upper
directory, which becomes its layer), byte-compiling with the image's own Python, pip into a root filesystem,
console scripts and the image's users."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from hack.base.log import logger
from hack.images.spec import User

__all__ = ["SITE", "compile_python", "install_scripts", "overlay", "pip_target_args", "run", "write_users"]

log = logger("images")
SITE = "usr/local/lib/python3.11/dist-packages"  # where Debian's python3.11 finds packages installed locally
PYTHON = "/usr/bin/python3.11"
# the images' Python: wheels for CPython 3.11 on glibc 2.36 (Debian 12), x86_64, whatever the build host is
# (pip does not widen an explicit manylinux_2_36 to the older manylinux tags that glibc 2.36 also runs)
GLIBC_MINOR = 36
PLATFORM = (
    *(a for minor in range(GLIBC_MINOR, 4, -1) for a in ("--platform", f"manylinux_2_{minor}_x86_64")),
    *("--platform", "manylinux2014_x86_64", "--platform", "manylinux2010_x86_64", "--platform", "manylinux1_x86_64"),
    *("--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"),
)


def run(cmd: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd, check=False)
    if proc.returncode != 0:
        raise SystemExit(
            f"images: command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}{proc.stderr[-5000:]}"
        )
    return proc.stdout


@contextlib.contextmanager
def overlay(lower: Path, upper: Path, scratch: Path) -> Iterator[Path]:
    """``lower`` (read-only) with ``upper`` on top, mounted at ``scratch/merged``; yields the merged tree."""
    work, merged = scratch / "work", scratch / "merged"
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)])
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def compile_python(root: Path, *dirs: str, epoch: int) -> None:
    """Byte-compile ``dirs`` (paths inside ``root``) with the image's Python, reproducibly: unchecked-hash
    pycs (no source mtimes), a fixed hash seed (set and frozenset constants in a stable order)."""
    env = {"PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": str(epoch), "PATH": "/usr/bin:/bin"}
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    run([chroot, str(root), PYTHON, "-m", "compileall", "-q", "-q", "--invalidation-mode", "unchecked-hash", *dirs], env=env)


def pip_target_args(root: Path) -> list[str]:
    """``pip install`` arguments that install wheels for the image's Python into ``root``'s site directory."""
    return [
        "--no-deps",
        "--no-compile",
        "--only-binary=:all:",
        *PLATFORM,
        "--target",
        str(root / SITE),
        "--no-warn-script-location",
    ]


def _record_hash(data: bytes) -> str:
    """A RECORD file's hash of ``data``: urlsafe base64 of the SHA-256, unpadded."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def install_scripts(root: Path) -> list[str]:
    """Move the console scripts pip left in the site directory's ``bin/`` to ``/usr/local/bin``, run by the
    image's Python, and say so in the distributions' RECORD files (the paths and hashes there named the build
    environment's Python); returns their names."""
    src, dst = root / SITE / "bin", root / "usr/local/bin"
    if not src.is_dir():
        return []
    dst.mkdir(parents=True, exist_ok=True)
    moved: dict[str, str] = {}
    for script in sorted(src.iterdir()):
        head, _, body = script.read_bytes().partition(b"\n")
        data = f"#!{PYTHON}\n".encode() + body if head.startswith(b"#!") else script.read_bytes()
        (dst / script.name).write_bytes(data)
        (dst / script.name).chmod(0o755)
        moved[f"../../bin/{script.name}"] = f"../../../bin/{script.name},{_record_hash(data)},{len(data)}"
    shutil.rmtree(src)
    for record in (root / SITE).glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(True)
        fixed = [moved.get(ln.split(",", 1)[0], ln.rstrip("\n")) + "\n" if ln.split(",", 1)[0] in moved else ln for ln in lines]
        if fixed != lines:
            record.write_text("".join(fixed))
    return sorted(n.rsplit("/", 1)[1] for n in moved)


def write_users(root: Path, users: Sequence[User]) -> None:
    """``/etc/passwd`` and ``/etc/group`` with root and ``users`` (no login shells: the images have none), and
    the users' home directories where they are real directories."""
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    passwd = ["root:x:0:0:root:/root:/usr/sbin/nologin"] + [
        f"{u.name}:x:{u.uid}:{u.gid}:{u.name}:{u.home}:/usr/sbin/nologin" for u in users
    ]
    passwd.append("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin")
    groups = ["root:x:0:"] + [f"{u.name}:x:{u.gid}:" for u in users] + ["nogroup:x:65534:"]
    (etc / "passwd").write_text("\n".join(passwd) + "\n")
    (etc / "group").write_text("\n".join(groups) + "\n")
    for p in (etc / "passwd", etc / "group"):
        p.chmod(0o644)
    for u in users:
        if u.home.startswith("/home/"):
            home = root / u.home.lstrip("/")
            home.mkdir(parents=True, exist_ok=True)
            home.chmod(0o750)
            os.chown(home, u.uid, u.gid)
