"""Scorer plugins for the tests (loaded by name, as an EvalJob's ``plugin: module:function`` would be)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from numpy.typing import NDArray

from foresail.evaluation.dataset import Item
from foresail.evaluation.scoring import ItemScore

NOT_A_FUNCTION = 42


def first_positive(item: Item, outputs: Mapping[str, NDArray[Any]]) -> ItemScore:
    """Correct when the first output value is positive; the value is that number."""
    v = float(next(iter(outputs.values())).ravel()[0])
    return ItemScore(v > 0, v)


def even_label(item: Item, outputs: Mapping[str, NDArray[Any]]) -> bool:
    """A plugin may return a bool."""
    return isinstance(item.label, int) and item.label % 2 == 0


def wrong_type(item: Item, outputs: Mapping[str, NDArray[Any]]) -> str:
    return "yes"


class Nested:
    @staticmethod
    def always(item: Item, outputs: Mapping[str, NDArray[Any]]) -> ItemScore:
        return ItemScore(True, 1.0)
