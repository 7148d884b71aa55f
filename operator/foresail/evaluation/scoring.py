"""Scorers (pure): (item, the model's outputs for it) -> ``ItemScore``, and the summary of a run.

Built-in kinds:

- ``exactMatch``: the output tensor (``output``, default the first one the model returned) equals
  ``expected[output]`` element for element after flattening (shape-insensitive; a different number of
  elements is a mismatch). BYTES outputs compare as UTF-8 text. ``value`` is 1.0 or 0.0.
- ``top1``: the argmax of the (flattened) output tensor equals the item's integer ``label``, or, without a
  label, the argmax of ``expected[output]``. ``value`` is 1.0 or 0.0.
- ``numericTolerance``: every ``|out - exp| <= atol + rtol * |exp|`` (numpy ``isclose`` semantics, NaN
  never close). ``value`` is the share of elements within tolerance; a different number of elements is
  an error (a wrong model or dataset, not a wrong answer).
- ``plugin``: ``plugin`` is ``"module:function"`` (imported with importlib) or the name of an entry point
  in group ``foresail.scorers``. The function takes ``(item, outputs)`` and returns an ``ItemScore`` or a
  bool (``value`` 1.0/0.0).

A scorer raises ``ValueError`` for an item it cannot score (no expected value, no label, missing output
tensor); the runner records that item as an error. ``Scorer.check(items)`` finds such items up front.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
from numpy.typing import NDArray

from foresail.evaluation.dataset import Item

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "ItemScore",
    "Outputs",
    "ScoreFn",
    "Scorer",
    "load_plugin",
    "make_scorer",
    "summarize",
]

ENTRY_POINT_GROUP = "foresail.scorers"
KINDS = ("exactMatch", "top1", "numericTolerance", "plugin")

Outputs = Mapping[str, NDArray[Any]]


@dataclass(frozen=True)
class ItemScore:
    correct: bool
    value: float


ScoreFn = Callable[[Item, Outputs], ItemScore]


@dataclass(frozen=True)
class Scorer:
    """A scoring function with what it needs from each item (``"expected"``, ``"label"``, ``"expected or label"``)."""

    kind: str
    fn: ScoreFn
    needs: str | None = None

    def __call__(self, item: Item, outputs: Outputs) -> ItemScore:
        return self.fn(item, outputs)

    def check(self, items: Iterable[Item]) -> None:
        """Raise ``ValueError`` naming (a few of) the items this scorer cannot score, before any inference."""
        if self.needs is None:
            return
        bad = [it.id for it in items if not _has(it, self.needs)]
        if bad:
            shown = ", ".join(repr(i) for i in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise ValueError(f"scorer {self.kind} needs {self.needs} on every item; {len(bad)} item(s) have none: {shown}")


def _has(item: Item, needs: str) -> bool:
    has_expected = bool(item.expected)
    has_label = item.label is not None
    return {"expected": has_expected, "label": has_label}.get(needs, has_expected or has_label)


def _output(item: Item, outputs: Outputs, name: str | None) -> tuple[str, NDArray[Any]]:
    if not outputs:
        raise ValueError(f"item {item.id!r}: the model returned no outputs")
    key = name if name is not None else next(iter(outputs))
    if key not in outputs:
        raise ValueError(f"item {item.id!r}: no output tensor {key!r} (the model returned: {', '.join(outputs)})")
    return key, np.asarray(outputs[key])


def _expected(item: Item, key: str) -> NDArray[Any]:
    if not item.expected:
        raise ValueError(f"item {item.id!r}: no expected value to compare output {key!r} with")
    if key not in item.expected:
        raise ValueError(f"item {item.id!r}: expected has no {key!r} (it has: {', '.join(item.expected)})")
    return np.asarray(item.expected[key])


def _text(a: NDArray[Any]) -> NDArray[Any]:
    """BYTES tensors (object arrays of bytes) as text, so they compare with the strings of a JSON dataset."""
    if a.dtype.kind in "OS":
        return np.array([x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in a.ravel()], dtype=object)
    return a.ravel()


def exact_match(output: str | None = None) -> Scorer:
    def score(item: Item, outputs: Outputs) -> ItemScore:
        key, out = _output(item, outputs, output)
        ok = bool(np.array_equal(_text(out), _text(_expected(item, key))))
        return ItemScore(ok, 1.0 if ok else 0.0)

    return Scorer("exactMatch", score, "expected")


def _int_label(item: Item) -> int:
    label = item.label
    if isinstance(label, str):
        try:
            return int(label)
        except ValueError:
            raise ValueError(f"item {item.id!r}: top1 needs an integer class label, got {label!r}") from None
    assert label is not None
    return label


def top1(output: str | None = None) -> Scorer:
    def score(item: Item, outputs: Outputs) -> ItemScore:
        key, out = _output(item, outputs, output)
        if out.size == 0:
            raise ValueError(f"item {item.id!r}: output {key!r} is empty")
        if item.label is not None:
            want = _int_label(item)
        else:
            exp = _expected(item, key)
            if exp.size == 0:
                raise ValueError(f"item {item.id!r}: expected {key!r} is empty")
            want = int(np.argmax(exp.ravel()))
        ok = int(np.argmax(out.ravel())) == want
        return ItemScore(ok, 1.0 if ok else 0.0)

    return Scorer("top1", score, "expected or label")


def numeric_tolerance(output: str | None = None, atol: float = 1e-6, rtol: float = 1e-5) -> Scorer:
    for name, v in (("atol", atol), ("rtol", rtol)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} = {v}, must be a finite number >= 0")

    def score(item: Item, outputs: Outputs) -> ItemScore:
        key, out = _output(item, outputs, output)
        exp = _expected(item, key)
        if out.size != exp.size:
            raise ValueError(f"item {item.id!r}: output {key!r} has {out.size} values, expected has {exp.size}")
        if out.size == 0:
            return ItemScore(True, 1.0)
        try:
            close = np.isclose(out.ravel().astype(np.float64), exp.ravel().astype(np.float64), rtol=rtol, atol=atol)
        except (TypeError, ValueError) as e:
            raise ValueError(f"item {item.id!r}: output {key!r} is not numeric: {e}") from None
        return ItemScore(bool(close.all()), float(close.mean()))

    return Scorer("numericTolerance", score, "expected")


def _coerce(ref: str, result: object) -> ItemScore:
    if isinstance(result, ItemScore):
        return result
    if isinstance(result, bool | np.bool_):
        return ItemScore(bool(result), 1.0 if result else 0.0)
    raise TypeError(f"scorer plugin {ref!r} returned {type(result).__name__}; it must return an ItemScore or a bool")


def _resolve(ref: str) -> object:
    if ":" in ref:
        module, _, attr = ref.partition(":")
        if not module or not attr:
            raise ValueError(f"scorer plugin {ref!r}: expected 'module:function'")
        try:
            obj: object = importlib.import_module(module)
        except ImportError as e:
            raise ValueError(f"scorer plugin {ref!r}: cannot import {module!r}: {e}") from None
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise ValueError(f"scorer plugin {ref!r}: module {module!r} has no {attr!r}")
            obj = getattr(obj, part)
        return obj
    found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == ref]
    if not found:
        names = sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)})
        raise ValueError(
            f"scorer plugin {ref!r}: no entry point of that name in group {ENTRY_POINT_GROUP!r} "
            f"(installed: {', '.join(names) or 'none'}); use 'module:function' or install a package that provides it"
        )
    try:
        return found[0].load()
    except Exception as e:
        raise ValueError(f"scorer plugin {ref!r}: loading entry point {found[0].value!r} failed: {e}") from e


def load_plugin(ref: str) -> Scorer:
    """A scorer from ``"module:function"`` or an entry point name in group ``foresail.scorers``."""
    fn = _resolve(ref)
    if not callable(fn):
        raise ValueError(f"scorer plugin {ref!r} is a {type(fn).__name__}, not a function")

    def score(item: Item, outputs: Outputs) -> ItemScore:
        return _coerce(ref, fn(item, outputs))

    return Scorer(f"plugin {ref}", score, None)


def make_scorer(
    kind: str, output: str | None = None, atol: float = 1e-6, rtol: float = 1e-5, plugin: str | None = None
) -> Scorer:
    """The scorer an EvalJob's ``spec.scoring`` asks for; ``ValueError`` for anything it cannot build."""
    if kind == "plugin":
        if not plugin:
            raise ValueError(
                "scorer kind plugin needs plugin: 'module:function' or an entry point name in group foresail.scorers"
            )
        return load_plugin(plugin)
    if plugin:
        raise ValueError(f"plugin = {plugin!r} is only used with scorer kind plugin, not {kind!r}")
    if kind == "exactMatch":
        return exact_match(output)
    if kind == "top1":
        return top1(output)
    if kind == "numericTolerance":
        return numeric_tolerance(output, atol, rtol)
    raise ValueError(f"unknown scorer kind {kind!r}, must be one of: {', '.join(KINDS)}")


def summarize(scores: Iterable[ItemScore]) -> dict[str, int | float | None]:
    """``scored``, ``correct``, ``accuracy`` (correct / scored) and ``mean`` value; None when nothing was scored.

    The mean uses ``math.fsum`` so it does not depend on the order the scores arrived in.
    """
    values: list[float] = []
    correct = 0
    for s in scores:
        values.append(s.value)
        correct += bool(s.correct)
    n = len(values)
    return {
        "scored": n,
        "correct": correct,
        "accuracy": correct / n if n else None,
        "mean": math.fsum(values) / n if n else None,
    }
