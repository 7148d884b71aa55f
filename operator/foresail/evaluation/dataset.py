"""JSONL evaluation datasets (pure): bytes -> items, with errors that name the line.

One JSON object per line::

    {"id": "img-1", "inputs": {"INPUT0": [[0.1, 0.2]]}, "expected": {"OUTPUT0": [1, 0]}, "label": 3}

``id`` (string or integer, unique, not empty) and ``inputs`` (an object of tensor name -> nested list or
scalar) are required; ``expected`` (an object of output tensor -> nested list) and ``label`` (integer or
string) are optional. Blank lines are skipped; unknown keys are ignored (datasets carry their own
metadata). ``NaN``/``Infinity`` are refused: they are not JSON, and results must stay valid JSON.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DatasetError", "Item", "load_jsonl", "sha256_hex"]


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the line and the problem."""


@dataclass(frozen=True)
class Item:
    """One dataset row. ``id`` is always a string (integer ids are converted: 7 and "7" are the same id)."""

    id: str
    inputs: dict[str, Any] = field(hash=False)
    expected: dict[str, Any] | None = field(default=None, hash=False)
    label: int | str | None = None


def sha256_hex(data: bytes) -> str:
    """The dataset digest recorded in provenance."""
    return hashlib.sha256(data).hexdigest()


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_line(raw: bytes, n: int) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"line {n}: not UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        obj = json.loads(text, parse_constant=_no_constants)
    except ValueError as e:  # JSONDecodeError is a ValueError, so is _no_constants
        raise DatasetError(f"line {n}: invalid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"line {n}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _item(obj: dict[str, Any], n: int) -> Item:
    if "id" not in obj or obj["id"] is None:
        raise DatasetError(f"line {n}: missing id")
    raw_id = obj["id"]
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        raise DatasetError(f"line {n}: id must be a string or an integer, got {type(raw_id).__name__}")
    item_id = str(raw_id)
    if not item_id.strip():
        raise DatasetError(f"line {n}: empty id")
    if "inputs" not in obj:
        raise DatasetError(f"line {n} (id {item_id!r}): missing inputs")
    inputs = obj["inputs"]
    if not isinstance(inputs, dict):
        raise DatasetError(
            f"line {n} (id {item_id!r}): inputs must be an object of tensor name -> value, got {type(inputs).__name__}"
        )
    if not inputs:
        raise DatasetError(f"line {n} (id {item_id!r}): inputs is empty")
    expected = obj.get("expected")
    if expected is not None and not isinstance(expected, dict):
        raise DatasetError(
            f"line {n} (id {item_id!r}): expected must be an object of output tensor -> value, got {type(expected).__name__}"
        )
    label = obj.get("label")
    if label is not None and (isinstance(label, bool) or not isinstance(label, int | str)):
        raise DatasetError(f"line {n} (id {item_id!r}): label must be an integer or a string, got {type(label).__name__}")
    return Item(id=item_id, inputs=inputs, expected=expected, label=label)


def load_jsonl(data: bytes) -> list[Item]:
    """Parse a whole JSONL dataset, in file order. Raises ``DatasetError`` on the first bad line."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 byte order mark (some editors write one)
    items: list[Item] = []
    first_line: dict[str, int] = {}
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        item = _item(_parse_line(raw, n), n)
        if item.id in first_line:
            raise DatasetError(f"line {n}: duplicate id {item.id!r} (first on line {first_line[item.id]})")
        first_line[item.id] = n
        items.append(item)
    if not items:
        raise DatasetError("the dataset has no items")
    return items
