"""The backstop's split of a tenant's limit across its namespaces: named cases and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foresail.quota.backstop import split_limit


@pytest.mark.parametrize(
    ("name", "limit", "used", "needed", "want"),
    [
        ("no namespaces", 8, {}, {}, {}),
        ("one namespace gets the whole limit", 8, {"a": 2}, {"a": 3}, {"a": 8}),
        ("idle namespaces share evenly, remainder by name", 7, {"a": 0, "b": 0}, {}, {"a": 4, "b": 3}),
        ("what is used is kept, the rest shared", 8, {"a": 5, "b": 0}, {}, {"a": 7, "b": 1}),
        ("needs before the even share", 8, {"a": 0, "b": 0}, {"a": 6}, {"a": 7, "b": 1}),
        ("needs larger than the limit: water-filling", 8, {"a": 0, "b": 0, "c": 0}, {"a": 1, "b": 6, "c": 6}, {"a": 1, "b": 4, "c": 3}),
        ("used over the limit: filled in name order, the last get less", 4, {"a": 3, "b": 3}, {}, {"a": 3, "b": 1}),
        ("a shrinking namespace keeps what it holds", 8, {"a": 6, "b": 0}, {"a": 2, "b": 6}, {"a": 6, "b": 2}),
        ("limit zero", 0, {"a": 2}, {"a": 2}, {"a": 0}),
        ("namespaces known only by need", 4, {}, {"a": 1, "b": 1}, {"a": 2, "b": 2}),
    ],
)
def test_split(name: str, limit: int, used: dict[str, int], needed: dict[str, int], want: dict[str, int]) -> None:
    assert split_limit(limit, used, needed) == want, name


_counts = st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 40), max_size=8)


@settings(max_examples=500, deadline=None)
@given(limit=st.integers(0, 100), used=_counts, needed=_counts)
def test_the_quotas_never_sum_past_the_limit(limit: int, used: dict[str, int], needed: dict[str, int]) -> None:
    hard = split_limit(limit, used, needed)
    assert set(hard) == set(used) | set(needed)
    assert all(h >= 0 for h in hard.values())
    assert sum(hard.values()) == (limit if hard else 0)
    if sum(used.values()) <= limit:
        assert all(hard[n] >= u for n, u in used.items()), "what is held keeps its room"
    if sum(max(used.get(n, 0), needed.get(n, 0)) for n in hard) <= limit:
        assert all(hard[n] >= need for n, need in needed.items()), "every need fits when the needs fit"
    assert split_limit(limit, dict(reversed(list(used.items()))), needed) == hard, "independent of order"
