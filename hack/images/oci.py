"""OCI image documents and layouts: the image config, the manifest, an image layout directory (blobs linked
from the layer cache) and its archive (``oci-archive:``, what ``skopeo copy`` reads). JSON is written with
sorted keys and no spaces, so the same image gives the same digests."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_TYPE",
    "INDEX_TYPE",
    "LAYER_TYPE",
    "MANIFEST_TYPE",
    "Blob",
    "canonical",
    "image_config",
    "image_manifest",
    "write_archive",
    "write_layout",
]

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    """Content with its descriptor: bytes in memory (config, manifest) or a file (a layer)."""

    media_type: str
    digest: str
    size: int
    path: Path | None = None
    data: bytes = b""

    @classmethod
    def of(cls, media_type: str, data: bytes) -> Blob:
        return cls(media_type, f"sha256:{hashlib.sha256(data).hexdigest()}", len(data), data=data)

    def descriptor(self, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if annotations:
            d["annotations"] = annotations
        return d


def rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def image_config(config: dict[str, Any], diff_ids: list[str], history: list[str], epoch: int) -> dict[str, Any]:
    """The image configuration (``config``: User, Env, Entrypoint, Cmd, WorkingDir, Labels, ExposedPorts)."""
    created = rfc3339(epoch)
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": h} for h in history],
    }


def image_manifest(config: Blob, layers: list[Blob], annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in layers],
        "annotations": annotations,
    }


def write_layout(out: Path, manifest: Blob, blobs: list[Blob], tag: str) -> None:
    """An OCI image layout at ``out`` holding one image tagged ``tag``; layer files are hard-linked (or copied)."""
    sha = out / "blobs" / "sha256"
    sha.mkdir(parents=True, exist_ok=True)
    for b in [manifest, *blobs]:
        target = sha / b.digest.split(":", 1)[1]
        if target.exists():
            continue
        if b.path is None:
            target.write_bytes(b.data)
        else:
            try:
                os.link(b.path, target)
            except OSError:
                shutil.copyfile(b.path, target)
    (out / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [manifest.descriptor({REF_NAME: tag})]}
    (out / "index.json").write_bytes(canonical(index))


def write_archive(layout: Path, out: Path, epoch: int) -> None:
    """``layout`` as a tar (an ``oci-archive:``): entries sorted, root-owned, mtime ``epoch``."""
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in layout.rglob("*")):
            rel = path.relative_to(layout).as_posix()
            info = tarfile.TarInfo(rel)
            info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            info.mode, info.size = 0o644, path.stat().st_size
            with open(path, "rb") as f:
                tar.addfile(info, f)
    partial.rename(out)
