"""The Python layers: a pinned build environment (pip, setuptools, wheel of ``images/build.lock``), the pinned
wheels of an image's ``requirements.lock``, and the project's own wheel. pip installs each into an overlay on
the Debian tree, so a layer holds exactly what its step added; the image's own Python byte-compiles it."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path
from typing import Any

from hack.base.paths import REPO
from hack.images.rootfs import SITE, compile_python, install_scripts, overlay, pip_target_args, run, write_users
from hack.images.spec import IMAGES, User, read_pins

__all__ = ["BUILD_LOCK", "PROJECT_INPUTS", "build_buildenv", "build_project", "build_requirements", "project_files"]

BUILD_LOCK = IMAGES / "build.lock"
PROJECT_INPUTS = ("pyproject.toml", "README.md", "operator")


def build_buildenv(out: Path) -> dict[str, Any]:
    """A virtualenv with the pinned pip, setuptools and wheel."""
    run([sys.executable, "-m", "venv", str(out / "venv")])
    run([str(out / "venv/bin/python"), "-m", "pip", "install", "-q", "--no-deps", "--require-hashes", "-r", str(BUILD_LOCK)])
    return {"pins": [p.line() for p in read_pins(BUILD_LOCK)]}


def _license(dist_info: Path) -> str:
    """The license a distribution declares in its METADATA (``License-Expression``, else ``License``)."""
    meta = dist_info / "METADATA"
    if not meta.is_file():
        return ""
    found = ""
    for line in meta.read_text(errors="replace").split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(": ")
        if key == "License-Expression":
            return value.strip()
        if key == "License" and not found and len(value) < 80:
            found = value.strip()
    return found


def build_requirements(debian: Path, lock: Path, buildenv: Path, out: Path, epoch: int) -> dict[str, Any]:
    """The wheels pinned in ``lock``, installed for the image's Python 3.11."""
    python = str(buildenv / "venv/bin/python")
    pins = read_pins(lock)
    with overlay(debian, out / "tree", out / "scratch") as root:
        run([python, "-m", "pip", "install", "-q", "--require-hashes", *pip_target_args(root), "-r", str(lock)])
        scripts = install_scripts(root)
        compile_python(root, f"/{SITE}", epoch=epoch)
        site = root / SITE
        licenses = {d.name.split("-")[0].lower().replace("_", "-"): _license(d) for d in site.glob("*.dist-info")}
    packages = [
        {"name": p.name, "version": p.version, "sha256": p.sha256, "license": licenses.get(p.name.lower().replace("_", "-"), "")}
        for p in pins
    ]
    return {"packages": packages, "scripts": scripts}


def project_files() -> list[Path]:
    """The files the project's wheel is built from (what its layer's cache key covers)."""
    files = []
    for top in PROJECT_INPUTS:
        p = REPO / top
        if p.is_file():
            files.append(p)
            continue
        files += [
            f
            for f in p.rglob("*")
            if f.is_file() and "__pycache__" not in f.parts and not any(x.endswith(".egg-info") for x in f.parts)
        ]
    return sorted(files)


def build_project(debian: Path, buildenv: Path, users: tuple[User, ...], out: Path, epoch: int) -> dict[str, Any]:
    """The project's wheel (built from a copy of its sources with the pinned setuptools), installed, and the
    image's users."""
    python = str(buildenv / "venv/bin/python")
    src = out / "src"
    for f in project_files():
        target = src / f.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    wheels = out / "wheels"
    run([python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
        env={"SOURCE_DATE_EPOCH": str(epoch)})  # fmt: skip
    (wheel,) = wheels.glob("*.whl")
    with overlay(debian, out / "tree", out / "scratch") as root:
        run([python, "-m", "pip", "install", "-q", *pip_target_args(root), str(wheel)])
        install_scripts(root)
        # `python` as in the python:3.11 images operator/Dockerfile starts from
        (root / "usr/local/bin/python").symlink_to("/usr/bin/python3.11")
        for direct in (root / SITE).glob("*.dist-info/direct_url.json"):  # names the build's temporary path
            record = direct.parent / "RECORD"
            rel = f"{direct.parent.name}/direct_url.json,"
            record.write_text("".join(ln for ln in record.read_text().splitlines(True) if not ln.startswith(rel)))
            direct.unlink()
        write_users(root, users)
        package = wheel.name.split("-")[0]
        compile_python(root, f"/{SITE}/{package}", epoch=epoch)
    shutil.rmtree(src)
    version = wheel.name.split("-")[1]
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    shutil.rmtree(wheels)
    return {"packages": [{"name": package, "version": version, "sha256": sha, "license": "Apache-2.0"}]}
