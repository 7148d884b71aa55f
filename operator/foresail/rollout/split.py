"""The replicas of two revisions (pure): how a service's replica count splits between the stable revision and
the canary for a step's percent, which slot gets which, and what both cost in GPUs.

The canary's traffic share is its share of the ready replicas behind the one Service (kube-proxy picks an
endpoint per connection, so the share is per connection and approximate), so the split is the traffic split:

* at 0% (no canary) everything is stable; at 100% (promotion) everything is the canary;
* in between the canary has at least 1 replica and the stable revision at least 1, and they sum to the
  total: ``canary = round(total x percent / 100)`` clamped to ``[1, total - 1]``;
* at total 1 there is no such split: it is 1 + 1, one *surge* replica beyond what the autoscaler asked for,
  which the tenant's quota must allow (``replicas_wanted`` asks the arbiter for it; ``split_grant`` gives
  the stable revision the only replica when the grant does not, and the canary waits);
* at total 0 there is nothing to split (0, 0) (minReplicas is at least 1, so only a paused service).

The effective percent (``effective_percent``) is what the split gives, which status shows beside the
planned one: 10% of 3 replicas is 1 of 3, 33%.

Both revisions' replicas count against the tenant's GPUs: the arbiter is asked for ``replicas_wanted``
(stable + canary) replicas of the service, and the grant is split by ``split_grant``.
"""

from __future__ import annotations

from foresail.api.rollout import RolloutStatus, Slot

__all__ = ["effective_percent", "replicas_wanted", "rollout_gpus", "slot_replicas", "split_grant", "split_replicas"]


def _check(total: int, percent: int) -> None:
    if total < 0:
        raise ValueError(f"total replicas must be >= 0 (got {total})")
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be in [0, 100] (got {percent})")


def split_replicas(total: int, percent: int) -> tuple[int, int]:
    """(stable, canary) replicas of ``total`` for the canary's ``percent`` (module docstring: the rules)."""
    _check(total, percent)
    if percent == 0:
        return total, 0
    if percent == 100:
        return 0, total
    if total == 0:
        return 0, 0
    if total == 1:
        return 1, 1  # a surge replica: the canary needs one, the stable revision keeps serving
    canary = min(max((total * percent + 50) // 100, 1), total - 1)
    return total - canary, canary


def effective_percent(stable: int, canary: int) -> int:
    """The canary's share of the replicas, percent, rounded half up (0 with no replicas)."""
    n = stable + canary
    return (200 * canary + n) // (2 * n) if n else 0


def replicas_wanted(total: int, percent: int) -> int:
    """The replicas of both revisions the tenant's arbiter is asked for: the total, plus the surge replica at total 1."""
    return sum(split_replicas(total, percent))


def split_grant(granted: int, percent: int) -> tuple[int, int]:
    """(stable, canary) of the replicas the arbiter granted: as ``split_replicas``, except that a single granted
    replica goes to the stable revision (below 100%): production keeps serving, the canary waits for quota."""
    _check(granted, percent)
    if granted == 1 and 0 < percent < 100:
        return 1, 0
    return split_replicas(granted, percent)


def rollout_gpus(stable: int, canary: int, gpus_per_replica: int) -> int:
    """The GPUs both revisions hold against the tenant's quota."""
    if min(stable, canary, gpus_per_replica) < 0:
        raise ValueError(f"replicas and GPUs must be >= 0 (got {stable}, {canary}, {gpus_per_replica})")
    return (stable + canary) * gpus_per_replica


def slot_replicas(status: RolloutStatus, granted: int) -> dict[Slot, int]:
    """The replicas of each Deployment slot: the stable slot and, while a canary runs, the other one at
    ``status.canaryPercent`` of ``granted`` (``split_grant``); without a canary the other slot is at zero."""
    percent = status.canary_percent if status.canary_revision is not None else 0
    stable, canary = split_grant(granted, percent)
    return {status.stable_slot: stable, status.stable_slot.other: canary}
