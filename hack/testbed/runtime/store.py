"""The cluster's image store (one for all fake nodes: they are this one machine): pulled blobs in an OCI
layout, each image unpacked once by ``umoci raw unpack`` into a read-only root filesystem that containers
overlay, and the tags resolved so far. ``ensure`` applies a container's ``imagePullPolicy``; concurrent pulls
of one image wait for each other, as in containerd."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack.testbed.runtime.pull import PullError, Reference, Registry, credentials, endpoints, parse_reference

__all__ = ["ImageStore", "LocalImage", "Pulled"]


@dataclass(frozen=True)
class LocalImage:
    name: str  # registry/repository
    digest: str  # of the manifest
    config: dict[str, Any]  # the image config's ``config``: User, Env, Entrypoint, Cmd, WorkingDir
    rootfs: Path
    size: int  # bytes of its compressed layers and config

    @property
    def image_id(self) -> str:
        """What a container status shows as ``imageID``: ``registry/repository@digest``."""
        return f"{self.name}@{self.digest}"


@dataclass(frozen=True)
class Pulled:
    image: LocalImage
    pulled: bool  # fetched for this start, or by a pull it waited for (False: already present on the machine)
    seconds: float  # the pull itself (0 when another pod's pull fetched it)
    waited: float  # including waiting for a pull of the same image by another pod


class ImageStore:
    def __init__(self, root: Path, mirrors: Path, umoci: Path) -> None:
        self.root, self.mirrors, self.umoci = root, mirrors, umoci
        self.layout, self.unpacked = root / "layout", root / "rootfs"
        (self.layout / "blobs/sha256").mkdir(parents=True, exist_ok=True)
        self.unpacked.mkdir(parents=True, exist_ok=True)
        if not (self.layout / "index.json").is_file():
            (self.layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
            self._write_index([])
        self.lock = threading.Lock()
        self.pulling: dict[str, threading.Lock] = {}
        self.tags: dict[str, str] = json.loads((root / "tags.json").read_text()) if (root / "tags.json").is_file() else {}

    # ---------------------------------------------------------------- what is present

    def _local(self, ref: Reference, digest: str) -> LocalImage | None:
        meta = self.unpacked / f"{digest.split(':')[1]}.json"
        if not meta.is_file():
            return None
        m = json.loads(meta.read_text())
        return LocalImage(f"{ref.registry}/{ref.repository}", digest, m["config"], self.unpacked / digest.split(":")[1], m["size"])

    def present(self, ref: Reference) -> LocalImage | None:
        digest = ref.digest or self.tags.get(str(ref))
        return self._local(ref, digest) if digest else None

    # ---------------------------------------------------------------- pulls

    def _lock_of(self, key: str) -> threading.Lock:
        """One lock per reference (concurrent pulls of an image wait for one) and per manifest digest (two
        references of one image fetch and unpack it once)."""
        with self.lock:
            return self.pulling.setdefault(key, threading.Lock())

    def ensure(self, image: str, policy: str, secrets: list[dict[str, Any]]) -> Pulled:
        """The image of a container starting now, pulled if ``policy`` (Always, IfNotPresent, Never) says so.
        Raises PullError (ErrImagePull), or ValueError for a reference that cannot be parsed (InvalidImageName)."""
        ref = parse_reference(image)
        t0 = time.monotonic()
        if policy != "Always" and (local := self.present(ref)) is not None:
            return Pulled(local, False, 0.0, 0.0)
        if policy == "Never":
            raise PullError("NotFound", f'Container image "{image}" is not present with pull policy of Never')
        with self._lock_of(str(ref)):
            t1 = time.monotonic()
            if policy != "Always" and (local := self.present(ref)) is not None:  # another pod's pull, which we waited for
                return Pulled(local, True, 0.0, round(t1 - t0, 3))
            local = self._pull(ref, Registry(lambda host: credentials(secrets, host) or credentials(secrets, ref.registry)))
            t2 = time.monotonic()
        return Pulled(local, True, round(t2 - t1, 3), round(t2 - t0, 3))

    def _pull(self, ref: Reference, reg: Registry) -> LocalImage:
        errors = []
        need = "pull" if ref.digest else "resolve"
        for ep in [e for e in endpoints(ref, self.mirrors) if need in e.capabilities]:
            try:
                body, media, digest = reg.manifest(ep, ref.repository, ref.ref)
            except PullError as e:
                errors.append(e)
                continue
            try:
                return self._fetch(ref, reg, ep, body, media, digest)
            except PullError as e:
                raise PullError(e.code, f'failed to pull and unpack image "{ref}": failed to copy: {e.message}') from None
        code = next((e.code for e in errors if e.code != "Unavailable"), errors[0].code if errors else "Unknown")
        text = "; ".join(e.message for e in errors)
        raise PullError(code, f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": {text}')

    def _fetch(self, ref: Reference, reg: Registry, ep: Any, body: bytes, media: str, digest: str) -> LocalImage:
        with self._lock_of(digest):
            return self._fetch_locked(ref, reg, ep, body, media, digest)

    def _fetch_locked(self, ref: Reference, reg: Registry, ep: Any, body: bytes, media: str, digest: str) -> LocalImage:
        blobs = self.layout / "blobs/sha256"
        manifest = json.loads(body)
        size = 0
        for desc in [manifest["config"], *manifest["layers"]]:
            target = blobs / desc["digest"].split(":")[1]
            if not target.is_file():
                reg.blob(ep, ref.repository, desc["digest"], target)
            size += int(desc["size"])
        config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_bytes())
        hexd = digest.split(":")[1]
        (blobs / hexd).write_bytes(body)
        rootfs = self.unpacked / hexd
        if not rootfs.is_dir():
            self._unpack(digest, media, len(body), rootfs)
        (self.unpacked / f"{hexd}.json").write_text(json.dumps({"config": config.get("config", {}), "size": size}))
        with self.lock:
            self.tags[str(ref)] = digest
            (self.root / "tags.json").write_text(json.dumps(self.tags, indent=1, sort_keys=True))
        return LocalImage(f"{ref.registry}/{ref.repository}", digest, config.get("config", {}), rootfs, size)

    def _write_index(self, manifests: list[dict[str, Any]]) -> None:
        tmp = self.layout / "index.json.partial"
        tmp.write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
        tmp.rename(self.layout / "index.json")

    def _unpack(self, digest: str, media: str, size: int, rootfs: Path) -> None:
        """``umoci raw unpack`` the manifest (named ``m-<hex>`` in the layout's index) into ``rootfs``."""
        name = f"m-{digest.split(':')[1]}"
        with self.lock:
            index = json.loads((self.layout / "index.json").read_text())
            entries = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != name]
            entry = {"mediaType": media, "digest": digest, "size": size, "annotations": {"org.opencontainers.image.ref.name": name}}
            self._write_index([*entries, entry])
        partial = rootfs.with_name(rootfs.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        proc = subprocess.run(
            [str(self.umoci), "raw", "unpack", "--image", f"{self.layout}:{name}", str(partial)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise PullError("Unknown", f"unpacking {digest}: {proc.stderr.strip()[-500:]}")
        partial.rename(rootfs)
