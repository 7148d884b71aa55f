"""One image layer from a directory tree, written deterministically: a gzip-compressed tar whose entries are
sorted by path, owned by the numeric ids on disk with no user or group names, stamped with one fixed mtime
(``SOURCE_DATE_EPOCH``), no access times, no extended attributes, hard links kept as links to the first path
in order, and a gzip header without name or time. The same tree gives the same bytes, so the same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["LayerDigests", "write_layer"]

GZIP_LEVEL = 6


@dataclass(frozen=True)
class LayerDigests:
    diff_id: str  # sha256 of the uncompressed tar (the image config's rootfs.diff_ids)
    digest: str  # sha256 of the compressed blob (the manifest's layer descriptor)
    size: int  # compressed bytes
    uncompressed: int


class _Hashing:
    """A write-only file that hashes and counts what passes through to ``inner``."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.inner.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.inner.flush()


def _entries(root: Path) -> list[str]:
    """Every path under ``root`` (relative, POSIX), sorted; symlinks to directories are not followed."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        out += [n if rel_dir == "." else f"{rel_dir}/{n}" for n in (*dirnames, *filenames)]
    return sorted(out)


def write_layer(root: Path, out: Path, epoch: int) -> LayerDigests:
    """Write ``root``'s tree as the layer ``out`` (tar+gzip)."""
    links: dict[tuple[int, int], str] = {}
    with open(out, "wb") as raw:
        compressed = _Hashing(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=GZIP_LEVEL, mtime=0) as gz:
            plain = _Hashing(gz)  # type: ignore[arg-type]
            with tarfile.open(fileobj=plain, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                for rel in _entries(root):
                    path = root / rel
                    st = os.lstat(path)
                    info = tarfile.TarInfo(rel)
                    info.mode = stat.S_IMODE(st.st_mode)
                    info.uid, info.gid = st.st_uid, st.st_gid
                    info.uname = info.gname = ""
                    info.mtime = epoch
                    key = (st.st_dev, st.st_ino)
                    if stat.S_ISDIR(st.st_mode):
                        info.type = tarfile.DIRTYPE
                    elif stat.S_ISLNK(st.st_mode):
                        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
                    elif stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and key in links:
                        info.type, info.linkname = tarfile.LNKTYPE, links[key]
                    elif stat.S_ISREG(st.st_mode):
                        if st.st_nlink > 1:
                            links[key] = rel
                        info.size = st.st_size
                        with open(path, "rb") as f:
                            tar.addfile(info, f)
                        continue
                    else:
                        raise ValueError(f"layer {root}: {rel} is neither a file, a directory nor a symlink")
                    tar.addfile(info)
    return LayerDigests(f"sha256:{plain.sha.hexdigest()}", f"sha256:{compressed.sha.hexdigest()}", compressed.size, plain.size)
