"""Build the images from their steps, each cached by the hash of its inputs (``cache``): the build environment,
the Debian layer (shared), the pinned wheels, the app (the project's wheel, or tritonserver); then the image
config, the manifest, an OCI layout and the SBOM. ``ensure`` is what ``make image``, ``hack/cluster up`` and
the e2e suite call: it rebuilds only what changed."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hack.base.log import logger
from hack.base.paths import REPO
from hack.images import debian, layer, python, rootfs, tritonserver
from hack.images.cache import CACHE, cached_step, hash_files, hash_text
from hack.images.oci import (
    CONFIG_TYPE,
    LAYER_TYPE,
    MANIFEST_TYPE,
    Blob,
    canonical,
    image_config,
    image_manifest,
    rfc3339,
    write_layout,
)
from hack.images.sbom import cyclonedx
from hack.images.spec import IMAGES, NAMES, ImageSpec, debian_spec, image_spec

__all__ = ["BuiltImage", "ensure", "source_epoch"]

log = logger("images")


@dataclass(frozen=True)
class BuiltImage:
    name: str
    repository: str
    tag: str
    digest: str  # of the manifest
    layout: Path  # an OCI image layout holding the image, tagged ``tag``
    sbom: Path
    size: int  # compressed bytes of its layers and config
    uncompressed: int
    steps: dict[str, dict[str, Any]]  # step -> {seconds, cached, digest}

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def pinned(self) -> str:
        """``repository:tag@digest``: the tag shown, the digest pulled."""
        return f"{self.reference}@{self.digest}"


def source_epoch() -> int:
    """``SOURCE_DATE_EPOCH``, else ``epoch`` of ``images/debian/packages.toml``: a constant, so that commits
    that do not change an image's inputs do not change its digest (nor rebuild it)."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    return debian_spec().epoch


def _code(*modules: object) -> str:
    """The source of the modules a step runs: editing them rebuilds the step."""
    return hash_text(*(Path(str(getattr(m, "__file__", ""))).read_text() for m in modules))


def _layer_step(
    name: str, key: str, epoch: int, fill: Callable[[Path], dict[str, Any]], keep_tree: bool = False
) -> tuple[Path, dict[str, Any], bool]:
    def build(out: Path) -> dict[str, Any]:
        result = fill(out)
        digests = layer.write_layer(out / "tree", out / "layer.tar.gz", epoch)
        if not keep_tree:
            shutil.rmtree(out / "tree")
        return {**result, "layer": asdict(digests)}

    return cached_step(name, hash_text(key, str(epoch), _code(layer, rootfs)), build)


def _record(steps: dict[str, dict[str, Any]], name: str, rec: dict[str, Any], cached: bool) -> None:
    steps[name] = {"seconds": rec["seconds"], "cached": cached, **({"digest": rec["layer"]["digest"]} if "layer" in rec else {})}
    log(
        f"{name}: {'cached' if cached else 'built'} ({rec['seconds']} s{', ' + rec['layer']['digest'][:19] if 'layer' in rec else ''})"
    )


def _build(spec: ImageSpec, epoch: int) -> BuiltImage:
    steps: dict[str, dict[str, Any]] = {}
    env_dir, rec, cached = cached_step(
        "buildenv", hash_text(python.BUILD_LOCK.read_text(), sys.version.split()[0]), python.build_buildenv
    )
    _record(steps, "buildenv", rec, cached)
    deb = debian_spec()
    deb_key = hash_text(
        deb.lock.read_text() if deb.lock.is_file() else "", (IMAGES / "debian/packages.toml").read_text(), _code(debian)
    )
    deb_dir, deb_rec, cached = _layer_step("debian", deb_key, epoch, lambda o: debian.build_debian(deb, o, epoch), keep_tree=True)
    _record(steps, "debian", deb_rec, cached)
    tree = deb_dir / "tree"
    parts = [(deb_dir, deb_rec)]
    if spec.debian:
        extras = spec.debian_pinned()
        deb_key = hash_text(deb_key, *extras)
        extra_dir, extra_rec, cached = _layer_step(
            f"{spec.name}-debian", deb_key, epoch, lambda o: debian.build_extras(deb, extras, o, epoch)
        )
        _record(steps, f"{spec.name}-debian", extra_rec, cached)
        parts.append((extra_dir, extra_rec))
    req_key = hash_text(deb_key, rec["key"], spec.requirements.read_text(), _code(python))
    req_dir, req_rec, cached = _layer_step(
        f"{spec.name}-wheels", req_key, epoch, lambda o: python.build_requirements(tree, spec.requirements, env_dir, o, epoch)
    )
    _record(steps, f"{spec.name}-wheels", req_rec, cached)
    if spec.app == "foresail":
        app_key = hash_text(deb_key, rec["key"], hash_files(REPO, python.project_files()), repr(spec.users), _code(python))
        app_dir, app_rec, cached = _layer_step(
            spec.name, app_key, epoch, lambda o: python.build_project(tree, env_dir, spec.users, o, epoch)
        )
    else:
        assert spec.server is not None, f"{spec.name}: image.toml names no server lock"
        server = spec.server
        app_key = hash_text(server.read_text(), rec["key"], repr(spec.users), _code(tritonserver))
        app_dir, app_rec, cached = _layer_step(
            spec.name, app_key, epoch, lambda o: tritonserver.build_tritonserver(server, env_dir, spec.users, o)
        )
    _record(steps, spec.name, app_rec, cached)

    parts += [(req_dir, req_rec), (app_dir, app_rec)]
    blobs = [Blob(LAYER_TYPE, r["layer"]["digest"], r["layer"]["size"], path=d / "layer.tar.gz") for d, r in parts]
    history = [
        f"debian {deb.suite}: {' '.join(deb.packages)} (mmdebstrap --variant=extract, images/debian/packages.lock)",
        *([f"debian {deb.suite}: {' '.join(spec.debian)} (images/{spec.name}/packages.lock)"] if spec.debian else []),
        f"pip: {len(req_rec['packages'])} pinned wheels (images/{spec.name}/{spec.requirements.name})",
        " ".join(f"{p['name']} {p['version']}" for p in app_rec["packages"])
        + (" (the project's wheel)" if spec.app == "foresail" else " (tritonserver, Python backend)"),
    ]
    config = Blob.of(CONFIG_TYPE, canonical(image_config(spec.config, [r["layer"]["diff_id"] for _, r in parts], history, epoch)))
    annotations = {"org.opencontainers.image.created": rfc3339(epoch), "org.opencontainers.image.version": spec.tag}
    manifest = Blob.of(MANIFEST_TYPE, canonical(image_manifest(config, blobs, annotations)))
    out = CACHE / "oci" / f"{spec.name}-{manifest.digest.split(':')[1][:20]}"
    sbom_doc = cyclonedx(
        spec.repository, spec.tag, manifest.digest, deb_rec["packages"], req_rec["packages"] + app_rec["packages"], epoch
    )
    if not (out / "image.json").is_file():
        partial = out.with_name(out.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        write_layout(partial / "layout", manifest, [config, *blobs], spec.tag)
        (partial / "sbom.cdx.json").write_text(json.dumps(sbom_doc, indent=1, sort_keys=True) + "\n")
        (partial / "image.json").write_text(json.dumps({"digest": manifest.digest, "reference": spec.reference}))
        shutil.rmtree(out, ignore_errors=True)
        partial.rename(out)
    return BuiltImage(
        name=spec.name,
        repository=spec.repository,
        tag=spec.tag,
        digest=manifest.digest,
        layout=out / "layout",
        sbom=out / "sbom.cdx.json",
        size=config.size + sum(b.size for b in blobs),
        uncompressed=sum(r["layer"]["uncompressed"] for _, r in parts),
        steps=steps,
    )


def ensure(names: tuple[str, ...] = NAMES) -> dict[str, BuiltImage]:
    """Build (or find cached) the images ``names``; needs root (mmdebstrap, overlay mounts, chroot)."""
    if os.geteuid() != 0:
        raise SystemExit("images: building needs root (mmdebstrap --mode=root, overlay mounts, chroot)")
    os.umask(0o022)  # directories the steps create get the same modes on every machine
    epoch = source_epoch()
    return {n: _build(image_spec(n), epoch) for n in names}
