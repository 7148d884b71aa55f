"""Per-shard result files in a shared directory (a PVC in production): append-only, resumable, merged once.

Layout of the directory::

    shard-<i>.jsonl          the append log of shard i: one canonical JSON object per line, fsynced
    shard-<i>.final.jsonl    shard i complete, in the shard's item order (written atomically)
    shard-<i>.stats.json     shard i's run statistics so far (active spans, latency histogram), carried
                             across its attempts (written atomically; statistics only, never the score)
    results.jsonl            every shard, merged in id order when all finals exist (written atomically)

Canonical JSON is ``json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)``: result
objects hold only deterministic fields (no timing), so one spec yields byte-identical files. Non-finite
floats are written as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (the protobuf JSON mapping),
which keeps the files valid JSON; ``float()`` reads them back.

Reading the log (``done``):

- a last line without its newline is a write torn by a kill; it does not count and is cut off before the
  next append;
- a line that does not parse, or has no string id, is skipped (its item is simply redone);
- an id seen twice: the first success wins; an item with only error results keeps its latest error, and
  errors do not count as done for the runner (an error result is retried on resume).
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["RESULTS_FILE", "ResultStore", "ShardTotals", "canonical", "jsonable", "merge_if_complete", "write_atomic"]

RESULTS_FILE = "results.jsonl"


def canonical(obj: dict[str, Any]) -> bytes:
    """One result as a line of canonical JSON (with its newline)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    if isinstance(x, list):
        return [_finite(v) for v in x]
    if isinstance(x, bytes):
        return x.decode("utf-8", "backslashreplace")
    return x


def jsonable(value: NDArray[Any] | float) -> Any:
    """A tensor (or a float) as JSON data: nested lists, BYTES as text, non-finite floats as strings."""
    arr = np.asarray(value)
    data = arr.tolist()
    if arr.dtype.kind in "fc" and bool(np.isfinite(arr).all()):
        return data  # the common case needs no walk
    return _finite(data)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, lines: Iterable[bytes]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for line in lines:
                f.write(line)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_atomic(path: Path, lines: Iterable[bytes]) -> None:
    """Write ``lines`` to ``path`` atomically (a temporary file, fsync, rename, fsync of the directory)."""
    _atomic_write(path, lines)


def _records(data: bytes) -> Iterable[dict[str, Any]]:
    """Complete, parseable lines with a string id (the torn tail after the last newline is left out)."""
    for raw in data[: data.rfind(b"\n") + 1].split(b"\n"):
        if not raw:
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            yield obj


@dataclass(frozen=True)
class ShardTotals:
    """A shard's counts read from its final file: what its score is, whatever was reported on the way."""

    done: int = 0
    errors: int = 0
    correct: int = 0
    scored: int = 0


class ResultStore:
    """The result files of one shard."""

    def __init__(self, directory: Path, shard: int) -> None:
        if shard < 0:
            raise ValueError(f"shard = {shard}, must be >= 0")
        self.directory = Path(directory)
        self.shard = shard
        self.path = self.directory / f"shard-{shard}.jsonl"
        self.final_path = self.directory / f"shard-{shard}.final.jsonl"
        self.stats_path = self.directory / f"shard-{shard}.stats.json"

    def totals(self) -> ShardTotals:
        """The counts of the final file (every item of the shard once, this attempt's and earlier ones');
        ``FileNotFoundError`` before ``compact``."""
        done = errors = correct = scored = 0
        for obj in _records(self.final_path.read_bytes()):
            done += 1
            if "error" in obj:
                errors += 1
            elif "correct" in obj:
                scored += 1
                correct += bool(obj["correct"])
        return ShardTotals(done, errors, correct, scored)

    def load_stats(self) -> dict[str, Any]:
        """What ``save_stats`` last wrote ({} when nothing or unreadable: statistics are best effort)."""
        try:
            obj = json.loads(self.stats_path.read_bytes())
        except (OSError, ValueError):
            return {}
        return obj if isinstance(obj, dict) else {}

    def save_stats(self, stats: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.stats_path, [canonical(stats)])

    def done(self) -> dict[str, dict[str, Any]]:
        """Results recorded so far by id (see the module docstring for torn lines, duplicates and errors)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        out: dict[str, dict[str, Any]] = {}
        for obj in _records(data):
            prev = out.get(obj["id"])
            if prev is None or "error" in prev:  # a success is never replaced; an error by any later result
                out[obj["id"]] = obj
        return out

    def append(self, results: list[dict[str, Any]]) -> None:
        """Append results (one write), flush and fsync; a torn last line is cut off first."""
        if not results:
            return
        payload = b"".join(canonical(r) for r in results)
        self.directory.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        with open(self.path, "a+b") as f:
            size = f.seek(0, os.SEEK_END)
            if size:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    self._cut_torn_tail(f, size)
            f.seek(0, os.SEEK_END)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        if created:
            _fsync_dir(self.directory)

    @staticmethod
    def _cut_torn_tail(f: io.BufferedRandom, size: int) -> None:
        chunk = 1 << 16
        end = size
        while end > 0:
            start = max(0, end - chunk)
            f.seek(start)
            block = f.read(end - start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                f.truncate(start + nl + 1)
                return
            end = start
        f.truncate(0)

    def compact(self, order: list[str]) -> Path:
        """Write ``shard-<i>.final.jsonl`` with the result of every id of ``order``, in that order, atomically.

        Raises ``ValueError`` when an id has no result yet. Results for ids not in ``order`` are left out.
        """
        done = self.done()
        missing = [i for i in order if i not in done]
        if missing:
            raise ValueError(f"shard {self.shard}: {len(missing)} item(s) have no result yet, e.g. {missing[0]!r}")
        if len(set(order)) != len(order):
            raise ValueError(f"shard {self.shard}: the order lists an id twice")
        self.directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.final_path, (canonical(done[i]) for i in order))
        return self.final_path


def merge_if_complete(directory: Path, shards: int, order_key: Callable[[str], Any] | None = None) -> Path | None:
    """Write ``results.jsonl`` (every shard's final results, sorted by ``order_key(id)``, default the id) atomically.

    Returns None while a shard's final file is missing. Any shard may call it when it finishes: the last
    one writes the file, and concurrent writers write the same bytes. Raises ``ValueError`` when an id is
    in two shards (files from runs with different seeds or shard counts in one directory).
    """
    if shards < 1:
        raise ValueError(f"shards = {shards}, must be >= 1")
    directory = Path(directory)
    finals = [ResultStore(directory, i).final_path for i in range(shards)]
    if not all(p.exists() for p in finals):
        return None
    key = order_key or (lambda i: i)
    lines: dict[str, bytes] = {}
    for shard, path in enumerate(finals):
        for raw in path.read_bytes().splitlines(keepends=True):
            item_id = json.loads(raw)["id"]
            if item_id in lines:
                raise ValueError(f"id {item_id!r} is in two shards (shard {shard} and an earlier one)")
            lines[item_id] = raw
    out = directory / RESULTS_FILE
    _atomic_write(out, (lines[i] for i in sorted(lines, key=lambda i: (key(i), i))))
    return out
