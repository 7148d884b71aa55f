"""Liveness: the health check fails when the autoscaler loop has not completed a pass for several periods."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from foresail.controllers.autoscaler import Autoscaler
from foresail.controllers.liveness import Heartbeat
from foresail.controllers.operator import Health
from tests.fakes.apiserver import FakeApiServer

T0 = 1_000.0

CASES: list[tuple[str, float | None, float | None, float, float, bool]] = [
    # name, started, last pass, now, loop period, stalled
    ("not started (a standby)", None, None, T0 + 10_000, 5, False),
    ("started, first pass still within the limit", T0, None, T0 + 60, 5, False),
    ("started, no pass for longer than the limit", T0, None, T0 + 61, 5, True),
    ("last pass 5 s ago", T0, T0 + 100, T0 + 105, 5, False),
    ("last pass 61 s ago at a 5 s period", T0, T0 + 100, T0 + 161, 5, True),
    ("12 periods of 10 s are allowed", T0, T0 + 100, T0 + 220, 10, False),
    ("more than 12 periods of 10 s", T0, T0 + 100, T0 + 221, 10, True),
]


@pytest.mark.parametrize(("name", "started", "last", "now", "period", "stalled"), CASES, ids=[c[0] for c in CASES])
def test_stalled_after_several_missed_periods(
    name: str, started: float | None, last: float | None, now: float, period: float, stalled: bool
) -> None:
    hb = Heartbeat(started, last)
    why = hb.stalled(now, period)
    assert (why is not None) == stalled, name
    if why is not None:
        assert why.startswith("autoscaler stalled:")


def test_health_fails_while_the_loop_is_stalled_and_recovers_with_a_pass() -> None:
    now = [T0]
    hb = Heartbeat()
    health = Health(hb, period_s=5, clock=lambda: now[0])
    assert health.ok(), "a standby (no loop) is healthy"
    hb.start(T0)
    now[0] = T0 + 30
    assert health.ok()
    now[0] = T0 + 90
    assert not health.ok()
    hb.beat(now[0])
    assert health.ok()


async def until(done: Callable[[], bool]) -> None:
    for _ in range(3000):  # the loop's own period paces it; the bound only keeps a broken test from hanging
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def test_the_loop_beats_after_a_completed_pass_only(api: FakeApiServer) -> None:
    api.failing["inferenceservices"] = 500  # every pass fails: no beat
    a = Autoscaler(api.kube(), None, loop_seconds=1)
    task = asyncio.create_task(a.run())
    try:
        await until(lambda: sum(r.path.endswith("/inferenceservices") for r in api.requests) >= 2)  # the first pass failed
        assert a.heartbeat.started is not None and a.heartbeat.last_pass is None
        del api.failing["inferenceservices"]
        await until(lambda: a.heartbeat.last_pass is not None)
    finally:
        task.cancel()
