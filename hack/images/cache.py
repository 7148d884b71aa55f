"""The image build cache: ``~/.cache/foresail/images/`` (``FORESAIL_CACHE``), one directory per step and hash
of its inputs. A step builds into ``<dir>.partial`` under a lock and is renamed into place when complete, so an
interrupted build never looks done and two checkouts building the same step wait for each other."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from hack import tools

__all__ = ["CACHE", "cached_step", "hash_files", "hash_text", "locked"]

CACHE = tools.CACHE / "images"


def hash_text(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


def hash_files(root: Path, paths: Iterable[Path]) -> str:
    """One hash over files' paths (relative to ``root``), modes and contents."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(oct(p.stat().st_mode & 0o777).encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def cached_step(name: str, key: str, build: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict[str, Any], bool]:
    """The directory of step ``name`` for input hash ``key``, built by ``build(dir)`` unless cached; returns
    the directory, the step's record (``build``'s result plus its seconds) and whether it was cached."""
    final = CACHE / f"{name}-{key[:20]}"
    record = final / "step.json"
    if record.is_file():
        return final, json.loads(record.read_text()), True
    with locked(f"{name}-{key[:20]}"):
        if record.is_file():  # another checkout built it while we waited
            return final, json.loads(record.read_text()), True
        partial = final.with_name(final.name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        t0 = time.monotonic()
        result = build(partial)
        result["seconds"] = round(time.monotonic() - t0, 1)
        result["key"] = key
        (partial / "step.json").write_text(json.dumps(result, indent=1, sort_keys=True))
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
    _prune_partials(name)
    return final, result, False


def _prune_partials(name: str) -> None:
    """Remove what interrupted builds of step ``name`` left, unless a build holds it now."""
    for partial in CACHE.glob(f"{name}-*.partial"):
        with open(CACHE / f".{partial.name.removesuffix('.partial')}.lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(partial, ignore_errors=True)
