"""The periodic reconciles: one loop, no kopf timer, so no finalizer can block deletion."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import kopf
import pytest

from foresail.clients.kube import Kube
from foresail.controllers import operator  # noqa: F401 - registers every handler
from foresail.controllers.evaljob import finished_job, in_progress
from foresail.controllers.resync import Periodic, Resync
from tests.controllers.objects import isvc
from tests.fakes.apiserver import FakeApiServer


def test_no_handler_makes_kopf_add_a_finalizer() -> None:
    """A timer, daemon or non-optional delete handler would: deletion would then hang without the operator."""
    registry = kopf.get_default_registry()
    handlers = [h for reg in (registry._spawning, registry._changing, registry._watching) for h in reg.get_all_handlers()]
    assert handlers, "the handlers are registered"
    assert [h.id for h in handlers if getattr(h, "requires_finalizer", None)] == []
    assert registry._spawning.get_all_handlers() == [], "no kopf timers or daemons"


async def test_each_object_is_reconciled_once_a_period_and_one_failure_stops_none(api: FakeApiServer) -> None:
    gone = isvc("gone")
    gone["metadata"]["deletionTimestamp"] = "2027-01-01T00:00:00Z"
    api.put(isvc("a"), isvc("b"), isvc("c"), isvc("other", ns="team-b"), gone)
    seen: list[str] = []

    def reconcile(_kube: Kube, body: dict[str, Any], _now: datetime) -> None:
        seen.append(body["metadata"]["name"])
        if body["metadata"]["name"] == "a":
            raise RuntimeError("broken")

    loop = Resync(api.kube(), [Periodic("InferenceService", 30.0, reconcile, lambda b: b["metadata"]["name"] != "c")], watch=["team-a"])
    await loop.run_once(100.0)
    assert seen == [], "the first period starts at the first call (kopf's resume reconciles at start)"
    await loop.run_once(129.0)
    assert seen == []
    await loop.run_once(130.0)
    assert sorted(seen) == ["a", "b"], "due, in the watched namespaces, not being deleted; a's failure stops none"
    await loop.run_once(131.0)
    assert sorted(seen) == ["a", "b"]


def done(kind: str) -> dict[str, Any]:
    return {"type": kind, "status": "True", "reason": kind, "message": "", "lastTransitionTime": "2027-01-01T00:00:00Z"}


IN_PROGRESS = [
    ("new", {}, 1, True),
    ("running", {"phase": "Running", "observedGeneration": 1}, 1, True),
    ("succeeded", {"conditions": [done("Succeeded")], "observedGeneration": 1}, 1, False),
    ("failed", {"conditions": [done("Failed")], "observedGeneration": 1}, 1, False),
    ("finished, then edited (reported once)", {"conditions": [done("Succeeded")], "observedGeneration": 1}, 2, True),
]


@pytest.mark.parametrize(("name", "status", "generation", "due"), IN_PROGRESS, ids=[c[0] for c in IN_PROGRESS])
def test_evaljobs_resynced_while_in_progress(name: str, status: dict[str, Any], generation: int, due: bool) -> None:
    assert in_progress({"metadata": {"generation": generation}, "status": status}) == due, name


@pytest.mark.parametrize(("name", "status", "generation", "due"), IN_PROGRESS, ids=[c[0] for c in IN_PROGRESS])
def test_finished_evaljobs_resynced_slowly_for_their_cleanup(name: str, status: dict[str, Any], generation: int, due: bool) -> None:
    """Every EvalJob is on exactly one of the two periodics: finished ones too (level-triggered cleanup)."""
    assert finished_job({"metadata": {"generation": generation}, "status": status}) == (not due), name


async def test_two_periodics_of_one_kind_keep_their_own_periods(api: FakeApiServer) -> None:
    api.put(isvc("a"))
    seen: list[str] = []
    fast = Periodic("InferenceService", 3.0, lambda _k, _b, _n: seen.append("fast"))
    slow = Periodic("InferenceService", 60.0, lambda _k, _b, _n: seen.append("slow"), name="slow")
    loop = Resync(api.kube(), [fast, slow])
    for t in (0.0, 3.0, 6.0, 60.0):
        await loop.run_once(t)
    assert seen == ["fast", "fast", "fast", "slow"]


def _noop(_kube: Kube, _body: dict[str, Any], _now: datetime) -> None:
    return None


@pytest.mark.parametrize(
    ("name", "objects", "rate", "period"),
    [
        ("no rate: the period", 5_000, None, 30.0),
        ("a small fleet: the period", 300, 10.0, 30.0),
        ("1,000 services at 10 a second: every 100 s", 1_000, 10.0, 100.0),
        ("2,000: every 200 s", 2_000, 10.0, 200.0),
        ("no objects", 0, 10.0, 30.0),
    ],
)
def test_a_big_fleet_is_resynced_less_often(name: str, objects: int, rate: float | None, period: float) -> None:
    assert Periodic("InferenceService", 30.0, _noop, max_per_second=rate).period_s(objects) == period


async def test_the_next_resync_of_a_big_fleet_waits_for_its_period(api: FakeApiServer) -> None:
    api.put(*(isvc(f"s{i}") for i in range(40)))
    seen: list[str] = []

    def reconcile(_kube: Kube, body: dict[str, Any], _now: datetime) -> None:
        seen.append(body["metadata"]["name"])

    loop = Resync(api.kube(), [Periodic("InferenceService", 2.0, reconcile, max_per_second=10.0)])  # 40 objects: every 4 s
    await loop.run_once(100.0)
    await loop.run_once(102.0)
    assert len(seen) == 40
    await loop.run_once(105.9)
    assert len(seen) == 40, "not before 4 s"
    await loop.run_once(106.0)
    assert len(seen) == 80
