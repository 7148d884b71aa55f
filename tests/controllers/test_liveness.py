"""Liveness: the health check fails when the autoscaler loop has not completed a pass for several periods, or when
kopf's InferenceService watch has not shown the loop's status writes for longer than kopf takes to reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, cast

import kopf
import pytest

from foresail.controllers.autoscaler import Autoscaler
from foresail.controllers.liveness import Heartbeat
from foresail.controllers.operator import Health
from tests.controllers.objects import deployment, isvc
from tests.fakes.apiserver import FakeApiServer

T0 = 1_000.0

CASES: list[tuple[str, float | None, float | None, float, float, bool]] = [
    # name, started, last pass, now, loop period, stalled
    ("not started (a standby)", None, None, T0 + 10_000, 5, False),
    ("started, first pass still within the limit", T0, None, T0 + 60, 5, False),
    ("started, the first pass may take 5x the limit (caches, resumes, history)", T0, None, T0 + 300, 5, False),
    ("started, no pass for longer than 5x the limit", T0, None, T0 + 301, 5, True),
    ("last pass 5 s ago", T0, T0 + 100, T0 + 105, 5, False),
    ("last pass 61 s ago at a 5 s period", T0, T0 + 100, T0 + 161, 5, True),
    ("12 periods of 10 s are allowed", T0, T0 + 100, T0 + 220, 10, False),
    ("more than 12 periods of 10 s", T0, T0 + 100, T0 + 221, 10, True),
]


# name, (stall periods, stall minimum, watch stall minimum), last pass, unechoed write, now, loop period, why (a prefix) or None
LIMITS: list[tuple[str, tuple[float, float, float], float, float | None, float, float, str | None]] = [
    ("defaults: 60 s without a pass allowed", (12, 60, 150), T0, None, T0 + 60, 2, None),
    ("a lower minimum: 24 s (12 periods of 2 s) allowed", (12, 10, 150), T0, None, T0 + 24, 2, None),
    ("a lower minimum: 25 s without a pass", (12, 10, 150), T0, None, T0 + 25, 2, "autoscaler stalled: the last pass completed 25 s ago (limit 24 s)"),
    ("3 periods and 10 s: 10 s allowed", (3, 10, 150), T0, None, T0 + 10, 2, None),
    ("3 periods and 10 s: 11 s without a pass", (3, 10, 150), T0, None, T0 + 11, 2, "autoscaler stalled: the last pass completed 11 s ago (limit 10 s)"),
    ("3 periods of 5 s outweigh a 10 s minimum", (3, 10, 150), T0, None, T0 + 15, 5, None),
    ("a lower watch minimum: 20 s allowed", (3, 10, 20), T0 + 29, T0 + 10, T0 + 30, 2, None),
    ("a lower watch minimum: 21 s unechoed", (3, 10, 20), T0 + 30, T0 + 10, T0 + 31, 2, "watch stalled: a status write 21 s ago"),
    ("the default watch minimum: 21 s unechoed is fine", (3, 10, 150), T0 + 30, T0 + 10, T0 + 31, 2, None),
]


@pytest.mark.parametrize(("name", "limits", "last", "wrote", "now", "period", "why"), LIMITS, ids=[c[0] for c in LIMITS])
def test_the_limits_are_settings(
    name: str, limits: tuple[float, float, float], last: float, wrote: float | None, now: float, period: float, why: str | None
) -> None:
    hb = Heartbeat(started=T0, last_pass=last)
    hb.limit(*limits)
    if wrote is not None:
        hb.wrote(wrote)
    got = hb.stalled(now, period)
    if why is None:
        assert got is None, (name, got)
    else:
        assert got is not None and got.startswith(why), (name, got)


@pytest.mark.parametrize(("name", "started", "last", "now", "period", "stalled"), CASES, ids=[c[0] for c in CASES])
def test_stalled_after_several_missed_periods(
    name: str, started: float | None, last: float | None, now: float, period: float, stalled: bool
) -> None:
    hb = Heartbeat(started, last)
    why = hb.stalled(now, period)
    assert (why is not None) == stalled, name
    if why is not None:
        assert why.startswith("autoscaler stalled:")


# name, writes sent at, events at, now, loop period, stalled (the loop beats throughout)
WATCH: list[tuple[str, list[float], list[float], float, float, bool]] = [
    ("nothing written (a standby, no services): not judged", [], [], T0 + 10_000, 2, False),
    ("every write shown", [T0, T0 + 2, T0 + 4], [T0 + 0.1, T0 + 2.1, T0 + 4.1], T0 + 1_000, 2, False),
    ("a write not shown yet, within the limit", [T0], [], T0 + 150, 2, False),
    ("a write never shown, past the limit", [T0], [], T0 + 151, 2, True),
    ("writes every pass, none shown since 151 s", [T0 + 2 * i for i in range(100)], [T0 - 1], T0 + 151, 2, True),
    ("the event before a write does not count for it", [T0 + 1], [T0], T0 + 200, 2, True),
    ("shown after kopf reconnected (70 s): not stalled", [T0 + 2 * i for i in range(60)], [T0 + 75], T0 + 120, 2, False),
    ("writes every pass, shown only until 200 s ago", [T0 + 2 * i for i in range(200)], [T0 + 190], T0 + 400, 2, True),
    ("12 periods of 20 s allowed", [T0], [], T0 + 240, 20, False),
    ("more than 12 periods of 20 s", [T0], [], T0 + 241, 20, True),
]


@pytest.mark.parametrize(("name", "writes", "events", "now", "period", "stalled"), WATCH, ids=[c[0] for c in WATCH])
def test_the_watch_is_stalled_when_it_does_not_show_the_loops_writes(
    name: str, writes: list[float], events: list[float], now: float, period: float, stalled: bool
) -> None:
    hb = Heartbeat(started=T0 - 10, last_pass=now - 1)
    for t, kind in sorted([(w, "write") for w in writes] + [(e, "event") for e in events]):
        hb.wrote(t) if kind == "write" else hb.event(t)
    why = hb.stalled(now, period)
    assert (why is not None) == stalled, (name, why)
    if why is not None:
        assert why.startswith("watch stalled:"), why


def test_health_fails_while_the_watch_is_stalled_and_recovers_with_an_event() -> None:
    now = [T0]
    hb = Heartbeat(started=T0)
    health = Health(hb, period_s=2, clock=lambda: now[0])
    hb.wrote(T0)
    for t in range(2, 300, 2):  # the loop keeps completing passes and writing
        now[0] = T0 + t
        hb.beat(now[0])
        hb.wrote(now[0])
    assert not health.ok()
    hb.event(now[0] + 0.1)
    now[0] += 1
    assert health.ok()


async def test_the_loop_reports_its_status_writes_to_the_liveness_check(api: FakeApiServer) -> None:
    api.put(isvc("resnet", "team-a", scaling__capacityPerReplicaRps=20), deployment(replicas=1))
    a = Autoscaler(api.kube(), None, loop_seconds=1)
    try:
        await a.run_once(T0)
    finally:
        await a.close()
    assert a.heartbeat.unechoed is not None, "a status write the watch must show"
    written = a.heartbeat.unechoed
    a.heartbeat.event(written + 0.01)
    assert a.heartbeat.watch_stalled(written + 1_000, 1) is None


@pytest.mark.parametrize(
    ("name", "last_pass", "progress", "now", "why"),
    [
        ("a long pass still moving: progress 10 s ago", T0 + 100, T0 + 190, T0 + 200, None),
        ("a long pass that stopped moving", T0 + 100, T0 + 130, T0 + 191, "autoscaler stalled: the pass in flight last made progress 61 s ago"),
        ("progress before the last pass counts for nothing", T0 + 100, T0 + 90, T0 + 161, "autoscaler stalled: the last pass completed 61 s ago"),
        ("a first pass moving", None, T0 + 290, T0 + 340, None),
        ("a first pass that stopped moving", None, T0 + 10, T0 + 311, "autoscaler stalled: the pass in flight last made progress 301 s ago"),
    ],
)  # fmt: skip
def test_a_long_pass_that_keeps_moving_is_not_a_stall(name: str, last_pass: float | None, progress: float, now: float, why: str | None) -> None:
    hb = Heartbeat(started=T0, last_pass=last_pass, last_progress=progress)
    got = hb.loop_stalled(now, 5)
    assert (got is None) if why is None else (got is not None and got.startswith(why)), got


def test_health_fails_while_the_loop_is_stalled_and_recovers_with_a_pass() -> None:
    now = [T0]
    hb = Heartbeat()
    health = Health(hb, period_s=5, clock=lambda: now[0])
    assert health.ok(), "a standby (no loop) is healthy"
    hb.start(T0)
    now[0] = T0 + 90
    assert health.ok(), "the first pass may take longer"
    now[0] = T0 + 310
    assert not health.ok()
    hb.beat(now[0])
    assert health.ok()
    now[0] += 61
    assert not health.ok(), "after the first pass, 60 s without one is a stall"
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
        assert a.heartbeat.last_progress is None, "a pass that fails at its first step makes no progress"
        del api.failing["inferenceservices"]
        await until(lambda: a.heartbeat.last_pass is not None)
        assert a.heartbeat.last_progress is not None, "its steps beat the progress"
    finally:
        task.cancel()


def test_kopfs_event_handler_is_the_watchs_echo() -> None:
    from foresail.controllers.inferenceservice import on_isvc_event
    from foresail.controllers.liveness import HEARTBEAT

    before = HEARTBEAT.last_event
    body = kopf.Body(cast(kopf.RawBody, isvc("resnet", "team-a")))
    echo = on_isvc_event(event=cast(kopf.RawEvent, {"type": "MODIFIED", "object": dict(body)}), body=body)  # type: ignore[call-arg]  # kopf passes the rest
    asyncio.run(cast("Coroutine[Any, Any, None]", echo))  # on the event loop: never queued behind sync handlers
    assert HEARTBEAT.last_event is not None and HEARTBEAT.last_event != before
