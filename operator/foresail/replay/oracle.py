"""Clairvoyant oracles (pure): the denominators of every replay figure, from the same simulator.

* ``oracle_policy``: perfect foresight at 100%: in every second the replicas that second's load needs at
  the capacity per replica at the SLO, started a cold start ahead (the plan is the maximum need over the
  next cold start + 2 s).
* ``Plateaus`` / ``capped_plan``: the same plan, allowed to give up a budget of requests. The need curve is
  cut into nested plateaus (maximal runs of seconds whose need is at least a level); giving up a plateau
  caps its seconds at the level below it, which saves its replicas for its length plus the cold-start lead,
  and leaves the work above the lower level's capacity unserved in time (the estimated misses). Plateaus
  are given up greedily, the most GPU-seconds saved per estimated miss first, until the estimated misses
  reach the budget. The caller searches
  the largest budget whose *simulated* share still meets the target (``run.capped_oracle``): the cheapest
  plan this greedy finds, an upper bound on the true optimum at that share.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from foresail.replay.signals import PolicyView
from foresail.replay.traces import Arrivals

__all__ = ["Plateaus", "oracle_plan", "oracle_policy", "plan_policy", "required_replicas"]

IntArray = npt.NDArray[np.int64]


def required_replicas(arr: Arrivals, capacity_rps: float, bucket: float) -> IntArray:
    """Replicas each bucket needs to keep every replica within its capacity at the SLO."""
    n = int(arr.duration // bucket) + 2
    load = np.bincount((arr.times // bucket).astype(np.int64), weights=arr.work, minlength=n)
    need: IntArray = np.ceil(load / bucket / capacity_rps - 1e-9).astype(np.int64)
    return need


def _width(cold_start_s: float) -> int:
    return math.ceil(cold_start_s) + 3


def _forward_max(need: IntArray, width: int) -> IntArray:
    """``out[i] = max(need[i : i + width])``."""
    out = need.copy()
    for k in range(1, min(width, len(need))):
        out[:-k] = np.maximum(out[:-k], need[k:])
    return out


def oracle_plan(need: IntArray, cold_start_s: float) -> IntArray:
    """Replicas to hold in each second so that every second's need is ready: started a cold start ahead."""
    return _forward_max(need, _width(cold_start_s))


def plan_policy(plan: IntArray) -> Callable[[PolicyView], int]:
    """Follow a per-second plan (at least 1 replica; 1 after its end)."""

    def policy(v: PolicyView) -> int:
        i = int(v.now)
        return max(1, int(plan[i])) if i < len(plan) else 1

    return policy


def oracle_policy(arr: Arrivals, capacity_rps: float, cold_start_s: float) -> Callable[[PolicyView], int]:
    """Knows the future: has exactly the replicas each second needs ready, started a cold start ahead."""
    return plan_policy(oracle_plan(required_replicas(arr, capacity_rps, 1.0), cold_start_s))


class Plateaus:
    """The need curve's nested plateaus, ordered once for the greedy; ``plan(budget)`` is cheap after that."""

    def __init__(self, arr: Arrivals, capacity_rps: float, cold_start_s: float, score_from_s: float) -> None:
        self.need = required_replicas(arr, capacity_rps, 1.0)
        self.cold_start_s = cold_start_s
        width = _width(cold_start_s)
        load = np.bincount(arr.times.astype(np.int64), weights=arr.work, minlength=len(self.need))[: len(self.need)].astype(float)
        ls, rs, bases, his, parents, misses = self._tree(load, capacity_rps)
        n = len(ls)
        saved = (his - bases) * (rs - ls + width)  # replica-seconds the plateau itself holds
        subtree = saved.astype(float)
        for x in range(n - 1, -1, -1):  # children come after their parents
            if parents[x] >= 0:
                subtree[parents[x]] += subtree[x]
        droppable = ls >= math.ceil(score_from_s)
        ratio = np.where(misses > 0, subtree / np.maximum(misses, 1.0), np.inf)
        chosen = np.zeros(n, bool)
        covered = np.zeros(n)
        order: list[int] = []
        used: list[float] = []
        total = 0.0
        for x in np.argsort(-ratio, kind="stable"):
            if not droppable[x]:
                continue
            a, blocked = parents[x], False
            while a >= 0:
                if chosen[a]:
                    blocked = True
                    break
                a = parents[a]
            if blocked:
                continue
            marginal = misses[x] - covered[x]
            chosen[x] = True
            total += marginal
            a = parents[x]
            while a >= 0:
                covered[a] += marginal
                a = parents[a]
            order.append(int(x))
            used.append(total)
        self._l, self._r, self._base = ls, rs, bases
        self._order = np.array(order, np.int64)
        self._used = np.array(used)

    def _tree(self, load: npt.NDArray[np.float64], capacity_rps: float) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray, npt.NDArray[np.float64]]:  # fmt: skip
        """Plateaus as (left, right inclusive, level below, top level, parent, work over the level below's
        capacity in its seconds), parents before children."""
        excess: list[npt.NDArray[np.float64]] = []
        ls: list[IntArray] = []
        rs: list[IntArray] = []
        bases: list[IntArray] = []
        his: list[int] = []
        parents: list[IntArray] = []
        count = 0
        prev_s = prev_e = prev_id = np.zeros(0, np.int64)
        tops: list[IntArray] = []
        for level in range(1, int(self.need.max(initial=0)) + 1):
            mask = np.concatenate([[False], self.need >= level, [False]]).astype(np.int8)
            edges = np.diff(mask)
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
            if level == 1:
                parent = np.full(len(starts), -1, np.int64)
                same = np.zeros(len(starts), bool)
            else:
                p = np.searchsorted(prev_s, starts, side="right") - 1
                parent = prev_id[p]
                same = (prev_s[p] == starts) & (prev_e[p] == ends)
            ids = np.where(same, parent, 0)
            new = ~same
            k = int(new.sum())
            ids[new] = np.arange(count, count + k)
            cum = np.concatenate([[0.0], np.cumsum(np.maximum(load - (level - 1) * capacity_rps, 0.0))])
            excess.append(cum[ends[new] + 1] - cum[starts[new]])
            ls.append(starts[new])
            rs.append(ends[new])
            bases.append(np.full(k, level - 1, np.int64))
            parents.append(parent[new])
            tops.append(ids)
            his.append(level)
            count += k
            prev_s, prev_e, prev_id = starts, ends, ids
        if not count:
            z = np.zeros(0, np.int64)
            return z, z, z, z, z, np.zeros(0)
        top = np.zeros(count, np.int64)
        for level, ids in zip(his, tops, strict=True):
            top[ids] = level  # the last level a plateau appears at is its top
        return np.concatenate(ls), np.concatenate(rs), np.concatenate(bases), top, np.concatenate(parents), np.concatenate(excess)

    def plan(self, budget: float) -> IntArray:
        """The oracle's per-second plan after giving up plateaus whose conservative misses fit ``budget``."""
        capped = self.need.copy()
        for x in self._order[: int(np.searchsorted(self._used, budget, side="right"))]:
            seg = capped[self._l[x] : self._r[x] + 1]
            np.minimum(seg, self._base[x], out=seg)
        return oracle_plan(capped, self.cold_start_s)
