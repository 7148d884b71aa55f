"""The split of a tenant's GPU limit across its namespaces for the ResourceQuota backstop (pure).

Each namespace a tenant owns gets a ResourceQuota; the quotas together must never allow more than
the tenant's limit, whatever its namespaces do at the same moment. So the limit is *partitioned*:
the hard values sum to at most the limit. Within that, in this order:

1. every namespace keeps room for what its pods hold now (``used``; when the tenant is already over
   its limit, namespaces are filled in name order and the last ones get less than they hold: their
   pods keep running, new ones wait);
2. then room for what it will need (``needed``: the GPUs the arbiter grants its services plus what
   its pods outside Foresail hold), shared by water-filling (the smallest needs are met first, ties
   in name order);
3. whatever is left is spread evenly (the first namespaces by name get the remainder), so GPU pods
   Foresail does not govern have room in every namespace.

The writer lowers quotas before it raises any (``render.tenant_quota.plan_backstop``), so the sum
stays within the limit between writes too.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["split_limit"]


def _water_fill(extra: Mapping[str, int], budget: int) -> dict[str, int]:
    """Share ``budget`` among the wants in ``extra``: everyone up to a common level, the remainder one
    each in name order to those that want more than the level."""
    names = sorted(n for n, e in extra.items() if e > 0)
    out = dict.fromkeys(extra, 0)
    if sum(extra[n] for n in names) <= budget:
        return {n: max(0, e) for n, e in extra.items()}
    level, left = 0, budget
    wanting = names
    while wanting:
        step = min(min(extra[n] for n in wanting) - level, left // len(wanting))
        if step <= 0:
            break
        level += step
        left -= step * len(wanting)
        wanting = [n for n in wanting if extra[n] > level]
    for n in names:
        out[n] = min(extra[n], level)
    for n in wanting:
        if left <= 0:
            break
        out[n] += 1
        left -= 1
    return out


def split_limit(limit: int, used: Mapping[str, int], needed: Mapping[str, int]) -> dict[str, int]:
    """The hard GPU value per namespace (every key of ``used`` and ``needed``); they sum to at most
    ``limit`` (exactly ``limit`` when there is a namespace)."""
    names = sorted(set(used) | set(needed))
    if not names:
        return {}
    left = max(0, limit)
    hard: dict[str, int] = {}
    for n in names:  # 1. what the pods hold now
        hard[n] = min(max(0, used.get(n, 0)), left)
        left -= hard[n]
    extra = _water_fill({n: max(0, needed.get(n, 0) - hard[n]) for n in names}, left)
    for n in names:  # 2. what the namespace will need
        hard[n] += extra[n]
        left -= extra[n]
    share, rest = divmod(left, len(names))
    for i, n in enumerate(names):  # 3. the rest, evenly
        hard[n] += share + (1 if i < rest else 0)
    return hard
