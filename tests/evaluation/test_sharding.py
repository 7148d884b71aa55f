"""Sharding: a fixed table (a change of hash breaks it), each item in exactly one shard, even balance."""

from __future__ import annotations

from collections import Counter

import pytest

from foresail.evaluation.dataset import Item
from foresail.evaluation.sharding import item_rng, shard_items, shard_of


@pytest.mark.parametrize(
    ("item_id", "seed0_of4", "seed1_of4", "seed0_of7"),
    [
        ("0", 2, 0, 5),
        ("1", 0, 1, 1),
        ("2", 1, 0, 2),
        ("img-1", 2, 1, 0),
        ("img-2", 3, 2, 0),
        ("cat", 0, 0, 4),
        ("dog", 0, 2, 0),
        ("a/b", 1, 0, 5),
        ("αβγ", 1, 0, 2),
    ],
)
def test_shard_table_is_stable(item_id: str, seed0_of4: int, seed1_of4: int, seed0_of7: int) -> None:
    assert (shard_of(item_id, 0, 4), shard_of(item_id, 1, 4), shard_of(item_id, 0, 7)) == (seed0_of4, seed1_of4, seed0_of7)


def items(n: int) -> list[Item]:
    return [Item(id=f"item-{i}", inputs={"x": i}) for i in range(n)]


@pytest.mark.parametrize(("seed", "shards"), [(0, 1), (0, 3), (1, 3), (42, 8)])
def test_each_item_is_in_exactly_one_shard(seed: int, shards: int) -> None:
    data = items(500)
    parts = [shard_items(data, i, seed, shards) for i in range(shards)]
    seen = Counter(it.id for part in parts for it in part)
    assert set(seen) == {it.id for it in data}
    assert set(seen.values()) == {1}
    for i, part in enumerate(parts):
        assert all(shard_of(it.id, seed, shards) == i for it in part)


def test_order_is_deterministic_and_independent_of_the_input_order() -> None:
    data = items(200)
    a = [it.id for it in shard_items(data, 1, 5, 3)]
    b = [it.id for it in shard_items(list(reversed(data)), 1, 5, 3)]
    assert a == b
    assert a != sorted(a)  # ordered by hash, not by id


def test_other_items_never_move_an_item() -> None:
    small = {it.id for it in shard_items(items(100), 2, 0, 4)}
    large = {it.id for it in shard_items(items(1000), 2, 0, 4)}
    assert small <= large


def test_balance_is_roughly_even_over_10k_ids() -> None:
    counts = Counter(shard_of(f"id-{i}", 0, 8) for i in range(10_000))
    assert len(counts) == 8
    assert all(abs(c - 1250) < 125 for c in counts.values()), counts


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("no shards", ("a", 0, 0), "shards = 0"),
        ("negative seed", ("a", -1, 2), "seed = -1"),
    ],
)
def test_shard_of_rejects_bad_arguments(name: str, args: tuple[str, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        shard_of(*args)


def test_shard_index_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"shard index = 3, must be in \[0; 2\]"):
        shard_items(items(3), 3, 0, 3)


def test_item_rng_depends_only_on_id_and_seed() -> None:
    a = item_rng("x", 0).random(4)
    assert list(a) == list(item_rng("x", 0).random(4))
    assert list(a) != list(item_rng("x", 1).random(4))
    assert list(a) != list(item_rng("y", 0).random(4))
    assert item_rng("x", 0).integers(0, 1_000_000) == 924_248  # a change of derivation breaks this
