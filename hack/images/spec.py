"""What the images are made of, read from ``images/``: the Debian root filesystem (``debian/packages.toml`` and
its lock), each image's ``image.toml`` (repository, tag, config, users, the app it carries) and its pinned
wheels (``requirements.lock``), the build environment's pins (``build.lock``)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack.base.paths import REPO

__all__ = ["IMAGES", "NAMES", "DebianSpec", "ImageSpec", "Pin", "User", "debian_spec", "image_spec", "read_pins"]

IMAGES = REPO / "images"
NAMES = ("foresail", "tritonserver")


@dataclass(frozen=True)
class Pin:
    """One pinned PyPI distribution: ``name==version --hash=sha256:...``."""

    name: str
    version: str
    sha256: str

    def line(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


def read_pins(path: Path) -> list[Pin]:
    """The pins of a lock file (``name==version --hash=sha256:HEX`` per line, ``#`` comments)."""
    pins = []
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)\s+--hash=sha256:([0-9a-f]{64})", line)
        if m is None:
            raise SystemExit(f"images: {path}:{n}: expected 'name==version --hash=sha256:HEX', got {line!r}")
        pins.append(Pin(*m.groups()))
    return pins


@dataclass(frozen=True)
class DebianSpec:
    epoch: int  # SOURCE_DATE_EPOCH of the builds
    suite: str
    sources: tuple[str, ...]
    packages: tuple[str, ...]
    drop: tuple[str, ...]
    lock: Path

    def pinned(self) -> list[str]:
        """``name=version`` of every package the lock holds (empty before the first ``lock``)."""
        if not self.lock.is_file():
            return []
        return [ln.strip() for ln in self.lock.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def debian_spec(root: Path = IMAGES) -> DebianSpec:
    raw = tomllib.loads((root / "debian/packages.toml").read_text())
    return DebianSpec(
        int(raw["epoch"]), raw["suite"], tuple(raw["sources"]), tuple(raw["packages"]), tuple(raw.get("drop", ())), root / "debian/packages.lock"
    )


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class ImageSpec:
    name: str
    dir: Path
    repository: str
    tag: str
    app: str  # "foresail" (the project's wheel) or "tritonserver" (the server of the nvidia-pytriton wheel)
    config: dict[str, Any]
    users: tuple[User, ...]
    requirements: Path
    server: Path | None
    debian: tuple[str, ...]  # the image's own Debian packages, over the shared tree
    debian_lock: Path  # their pins (and their dependencies'): packages.lock

    def debian_pinned(self) -> list[str]:
        if not self.debian:
            return []
        if not self.debian_lock.is_file():
            raise SystemExit(f"images: {self.debian_lock} is missing: run python -m hack.images lock")
        return [ln.strip() for ln in self.debian_lock.read_text().splitlines() if ln.strip() and not ln.startswith("#")]

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


def image_spec(name: str, root: Path = IMAGES) -> ImageSpec:
    d = root / name
    try:
        raw = tomllib.loads((d / "image.toml").read_text())
    except FileNotFoundError:
        raise SystemExit(f"images: no image {name!r} (known: {', '.join(NAMES)})") from None
    if raw.get("app") not in ("foresail", "tritonserver"):
        raise SystemExit(f"images: {d}/image.toml: app must be foresail or tritonserver, got {raw.get('app')!r}")
    users = tuple(User(u["name"], int(u["uid"]), int(u["gid"]), u["home"]) for u in raw.get("users", []))
    return ImageSpec(
        name=name,
        dir=d,
        repository=raw["repository"],
        tag=raw["tag"],
        app=raw["app"],
        config=raw.get("config", {}),
        users=users,
        requirements=d / raw["requirements"],
        server=d / raw["server"] if raw.get("server") else None,
        debian=tuple(raw.get("debian", ())),
        debian_lock=d / "packages.lock",
    )
