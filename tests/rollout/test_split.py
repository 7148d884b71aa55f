"""The replica split of two revisions (pure): every total against every percent, the grant, the slots."""

from __future__ import annotations

import pytest

from foresail.api.rollout import RolloutPhase, RolloutStatus, Slot
from foresail.rollout.split import effective_percent, replicas_wanted, rollout_gpus, slot_replicas, split_grant, split_replicas

# (total, percent) -> (stable, canary)
SPLITS: dict[tuple[int, int], tuple[int, int]] = {
    (0, 0): (0, 0), (0, 1): (0, 0), (0, 10): (0, 0), (0, 50): (0, 0), (0, 99): (0, 0), (0, 100): (0, 0),
    (1, 0): (1, 0), (1, 1): (1, 1), (1, 10): (1, 1), (1, 50): (1, 1), (1, 99): (1, 1), (1, 100): (0, 1),
    (2, 0): (2, 0), (2, 1): (1, 1), (2, 10): (1, 1), (2, 50): (1, 1), (2, 99): (1, 1), (2, 100): (0, 2),
    (3, 0): (3, 0), (3, 1): (2, 1), (3, 10): (2, 1), (3, 50): (1, 2), (3, 99): (1, 2), (3, 100): (0, 3),
    (10, 0): (10, 0), (10, 1): (9, 1), (10, 10): (9, 1), (10, 50): (5, 5), (10, 99): (1, 9), (10, 100): (0, 10),
}  # fmt: skip


@pytest.mark.parametrize(("total", "percent"), list(SPLITS), ids=[f"{t} replicas at {p}%" for t, p in SPLITS])
def test_split_replicas(total: int, percent: int) -> None:
    stable, canary = split_replicas(total, percent)
    assert (stable, canary) == SPLITS[(total, percent)]
    if 0 < percent < 100 and total >= 1:
        assert canary >= 1 and stable >= 1, "both revisions serve between 0 and 100%"
    if total >= 2 or percent in (0, 100):
        assert stable + canary == total
    if total == 1 and 0 < percent < 100:
        assert (stable, canary) == (1, 1), "one surge replica"


EFFECTIVE = [("none", 0, 0, 0), ("1 of 10", 9, 1, 10), ("1 of 3", 2, 1, 33), ("2 of 3", 1, 2, 67), ("1 of 2", 1, 1, 50), ("all", 0, 4, 100)]


@pytest.mark.parametrize(("name", "stable", "canary", "want"), EFFECTIVE, ids=[e[0] for e in EFFECTIVE])
def test_effective_percent(name: str, stable: int, canary: int, want: int) -> None:
    assert effective_percent(stable, canary) == want, name


# name, total the autoscaler wants, percent -> replicas asked of the arbiter; granted -> (stable, canary)
GRANTS = [
    ("no canary: the total", 3, 0, 3, 3, (3, 0)),
    ("total 1 in a step: the surge replica asked for and granted", 1, 10, 2, 2, (1, 1)),
    ("total 1, the surge not granted: the stable revision keeps the replica, the canary waits", 1, 10, 2, 1, (1, 0)),
    ("a grant of 1 at promotion: the canary's", 1, 100, 1, 1, (0, 1)),
    ("a grant smaller than asked: split again", 10, 50, 10, 4, (2, 2)),
    ("no grant: nothing", 3, 50, 3, 0, (0, 0)),
]


@pytest.mark.parametrize(("name", "total", "percent", "wanted", "granted", "split"), GRANTS, ids=[g[0] for g in GRANTS])
def test_wanted_and_granted(name: str, total: int, percent: int, wanted: int, granted: int, split: tuple[int, int]) -> None:
    assert replicas_wanted(total, percent) == wanted, name
    assert split_grant(granted, percent) == split, name


def test_both_revisions_count_against_the_quota() -> None:
    assert rollout_gpus(*split_replicas(1, 10), gpus_per_replica=2) == 4
    assert rollout_gpus(*split_replicas(10, 50), gpus_per_replica=1) == 10


@pytest.mark.parametrize(("total", "percent"), [(-1, 10), (3, -1), (3, 101)], ids=["negative total", "negative percent", "over 100%"])
def test_split_refuses_nonsense(total: int, percent: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        split_replicas(total, percent)


SLOTS = [
    ("stable alone in a", RolloutStatus(stable_revision="x"), 4, {Slot.A: 4, Slot.B: 0}),
    ("canary in b at 50%", RolloutStatus(stable_revision="x", canary_revision="y", canary_percent=50, phase=RolloutPhase.PROGRESSING), 4,
     {Slot.A: 2, Slot.B: 2}),
    ("stable in b, canary in a at 10%", RolloutStatus(stable_revision="x", stable_slot=Slot.B, canary_revision="y", canary_percent=10), 10,
     {Slot.B: 9, Slot.A: 1}),
    ("a percent left over without a canary is ignored", RolloutStatus(stable_revision="x", canary_percent=50), 4, {Slot.A: 4, Slot.B: 0}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "status", "granted", "want"), SLOTS, ids=[s[0] for s in SLOTS])
def test_slot_replicas(name: str, status: RolloutStatus, granted: int, want: dict[Slot, int]) -> None:
    assert slot_replicas(status, granted) == want, name
