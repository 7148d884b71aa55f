"""The Debian layer: mmdebstrap's ``extract`` variant unpacks the pinned packages (and nothing runs), the
packages the variant brings for itself are removed again, the standard library is byte-compiled, and a
``/var/lib/dpkg/status.d/<package>`` entry per package tells image scanners what is inside (as distroless
images do). Returns the packages for the SBOM."""

from __future__ import annotations

import hashlib
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hack import tools
from hack.images.rootfs import compile_python, run
from hack.images.spec import DebianSpec

__all__ = ["build_debian", "deb_fields"]

# what mmdebstrap leaves that belongs to the build machine or to a package manager the images do not carry
SCRUB = ("etc/apt", "etc/hostname", "etc/resolv.conf", "etc/hosts", "var/cache/apt", "var/lib/apt", "var/log", "var/lib/dpkg")


def deb_fields(deb: Path) -> dict[str, str]:
    out = run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture", "Source"])
    fields = {}
    for line in out.splitlines():
        k, _, v = line.partition(":")
        fields[k.strip()] = v.strip()
    return fields


def _contents(deb: Path) -> list[str]:
    """The paths a package ships (relative, directories ending in ``/``)."""
    out = []
    for line in run(["dpkg-deb", "-c", str(deb)]).splitlines():
        path = line.split(None, 5)[-1].split(" -> ")[0]
        out.append(path[2:] if path.startswith("./") else path)
    return [p for p in out if p and p != "/"]


def _remove_dropped(tree: Path, debs: list[Path], drop: set[str]) -> None:
    """Remove what the ``drop`` packages ship and no kept package also ships (files, then emptied directories)."""
    contents = {deb_fields(deb)["Package"]: _contents(deb) for deb in debs}
    kept = {p.rstrip("/") for n, ps in contents.items() if n not in drop for p in ps}
    # deepest first (a directory after what it holds), then by name: the same result on every run
    dropped = sorted({p for n in drop for p in contents.get(n, [])}, key=lambda p: (-p.rstrip("/").count("/"), p))
    for p in dropped:
        rel = p.rstrip("/")
        target = tree / rel
        if rel in kept:
            continue
        if p.endswith("/"):
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
        elif target.is_file() or target.is_symlink():
            target.unlink()


def _mmdebstrap(spec: DebianSpec, includes: list[str], tree: Path, debs_dir: Path, epoch: int) -> list[Path]:
    """Unpack ``includes`` (``name`` or ``name=version``) with their dependencies into ``tree``; returns the
    .deb files it unpacked (copied to ``debs_dir``)."""
    mmdebstrap = tools.TOOLS_BY_NAME["oci"].ensure() / "bin/mmdebstrap"
    debs_dir.mkdir(parents=True)
    hook = f'cp "$1"/var/cache/apt/archives/*.deb {shlex.quote(str(debs_dir))}/'
    cmd = [str(mmdebstrap), "--mode=root", "--variant=extract", f"--include={','.join(includes)}", f"--extract-hook={hook}"]
    try:
        run([*cmd, spec.suite, str(tree), *spec.sources], env={"SOURCE_DATE_EPOCH": str(epoch)})
    except SystemExit as e:
        if "was not found" in str(e):
            raise SystemExit(f"{e}\nimages: the mirror no longer has a pinned version: run python -m hack.images lock") from None
        raise
    return sorted(debs_dir.glob("*.deb"))


def _status(tree: Path, debs: list[Path], skip: set[str]) -> list[dict[str, Any]]:
    """A ``/var/lib/dpkg/status.d/<package>`` entry per package not in ``skip``; returns them for the SBOM."""
    status = tree / "var/lib/dpkg/status.d"
    status.mkdir(parents=True, exist_ok=True)
    packages = []
    for deb in debs:
        f = deb_fields(deb)
        if f["Package"] in skip:
            continue
        sha = hashlib.sha256(deb.read_bytes()).hexdigest()
        packages.append({"name": f["Package"], "version": f["Version"], "arch": f["Architecture"], "sha256": sha})
        lines = [f"Package: {f['Package']}", f"Version: {f['Version']}", f"Architecture: {f['Architecture']}"]
        if f.get("Source"):
            lines.append(f"Source: {f['Source']}")
        (status / f["Package"]).write_text("\n".join(lines) + "\nStatus: install ok installed\n")
    return packages


def _pins(debs: list[Path]) -> list[str]:
    return sorted(f"{f['Package']}={f['Version']}" for f in map(deb_fields, debs))


def build_debian(spec: DebianSpec, out: Path, epoch: int, pinned: bool = True) -> dict[str, Any]:
    """Build the tree into ``out/tree``; ``pinned`` False resolves the packages afresh (for ``lock``)."""
    includes = spec.pinned() if pinned else list(spec.packages)
    if pinned and not includes:
        raise SystemExit(f"images: {spec.lock} is missing: run python -m hack.images lock")
    tree = out / "tree"
    debs = _mmdebstrap(spec, includes, tree, out / "debs", epoch)
    _remove_dropped(tree, debs, set(spec.drop))
    for rel in SCRUB:
        p = tree / rel
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    for d in (tree / "dev").iterdir() if (tree / "dev").is_dir() else []:
        d.unlink() if not d.is_dir() or d.is_symlink() else shutil.rmtree(d)
    packages = _status(tree, debs, set(spec.drop))
    compile_python(tree, "/usr/lib/python3.11", epoch=epoch)
    pins = _pins(debs)
    shutil.rmtree(out / "debs")
    return {"packages": packages, "pins": pins}


def build_extras(spec: DebianSpec, extras: list[str], out: Path, epoch: int) -> dict[str, Any]:
    """The layer of an image's own Debian packages (``extras``: names or pins) over the shared tree: the files
    of the packages the shared tree does not hold, unpacked with ``dpkg-deb`` into ``out/tree``."""
    base = {p.split("=", 1)[0] for p in spec.pinned()}
    with tempfile.TemporaryDirectory(prefix="foresail-extras-", dir=out) as tmp:
        debs = _mmdebstrap(spec, [*spec.pinned(), *extras], Path(tmp) / "tree", Path(tmp) / "debs", epoch)
        new = [d for d in debs if deb_fields(d)["Package"] not in base | set(spec.drop)]
        tree = out / "tree"
        tree.mkdir()
        for deb in new:
            run(["dpkg-deb", "-x", str(deb), str(tree)])
        packages = _status(tree, new, set())
        pins = [p for p in _pins(debs) if p.split("=", 1)[0] not in base]
    return {"packages": packages, "pins": pins}
