"""Shards of a dataset (pure): which pod of the Indexed Job evaluates which item, in which order.

The shard of an item depends only on its id and the seed (sha256 of ``f"{seed}\\0{id}"``, never Python's
``hash()``, which is salted per process), so every pod computes the same split on its own, adding or
removing other items never moves an item to another shard, and a rerun with the same seed repeats it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from foresail.evaluation.dataset import Item

__all__ = ["item_rng", "shard_items", "shard_of"]


def _digest(item_id: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\0{item_id}".encode()).digest()[:8], "big")


def _check(seed: int, shards: int) -> None:
    if shards < 1:
        raise ValueError(f"shards = {shards}, must be >= 1")
    if seed < 0:
        raise ValueError(f"seed = {seed}, must be >= 0")


def shard_of(item_id: str, seed: int, shards: int) -> int:
    """The shard (0 .. shards-1) of an item."""
    _check(seed, shards)
    return _digest(item_id, seed) % shards


def shard_items(items: Iterable[Item], index: int, seed: int, shards: int) -> list[Item]:
    """The items of shard ``index``, ordered by the same hash, then id (independent of the file order)."""
    _check(seed, shards)
    if not 0 <= index < shards:
        raise ValueError(f"shard index = {index}, must be in [0; {shards - 1}]")
    keyed = [(_digest(it.id, seed), it.id, it) for it in items]
    return [it for d, _, it in sorted(keyed, key=lambda k: (k[0], k[1])) if d % shards == index]


def item_rng(item_id: str, seed: int) -> np.random.Generator:
    """A random generator for one item (augmentation, sampling), the same in every pod and every rerun."""
    _check(seed, 1)
    digest = hashlib.sha256(f"rng\0{seed}\0{item_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))
