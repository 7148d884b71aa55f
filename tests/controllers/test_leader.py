"""The leader lease against the fake apiserver: renewals on the elector's own thread, within a renew
deadline on the local monotonic clock; a candidate judges expiry by how long it has seen the lease unchanged
(client-go's observedTime), never by comparing the holder's renewTime with its own clock."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from foresail.controllers.leader import LeaseElector
from tests.fakes.apiserver import FakeApiServer


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def elector(api: FakeApiServer, identity: str, clock: Any = time.monotonic, skew_s: float = 0.0, **kw: float) -> LeaseElector:
    """``skew_s``: how far this replica's wall clock is ahead of the others' (it only writes renewTime)."""
    timing = {"duration": 15.0, "renew_deadline": 10.0, "retry": 2.0, **kw}
    return LeaseElector(
        api.kube(agent=identity),
        "foresail",
        "lease",
        identity,
        clock=clock,
        wall=lambda: datetime.now(UTC) + timedelta(seconds=skew_s),
        **timing,
    )


async def test_renewals_are_not_queued_behind_the_default_executor(api: FakeApiServer) -> None:
    e = elector(api, "me", retry=0.05, renew_deadline=10.0)
    await e.acquire()
    loop = asyncio.get_running_loop()
    renewed = asyncio.Event()
    acquire = e.try_acquire

    def counted(deadline: float | None = None) -> bool:
        ok = acquire(deadline)
        loop.call_soon_threadsafe(renewed.set)
        return ok

    e.try_acquire = counted  # type: ignore[method-assign]
    released = threading.Event()
    busy = [loop.run_in_executor(None, released.wait) for _ in range(64)]  # every default thread blocked
    lost = asyncio.Event()
    hold = asyncio.create_task(e.hold(lost))
    try:
        async with asyncio.timeout(30):  # a guard against hanging, not a measure: a renewal comes within 0.05 s
            await renewed.wait()
    finally:
        hold.cancel()
        released.set()
        await asyncio.gather(*busy, hold, return_exceptions=True)
    assert not lost.is_set() and e.leading()
    lease = api.get("Lease", "foresail", "lease")
    assert lease is not None and lease["spec"]["holderIdentity"] == "me"


async def test_a_renewal_past_its_deadline_drops_leadership_before_the_lease_can_be_taken(api: FakeApiServer) -> None:
    """The apiserver answers the leader 5 s late (each request would be allowed 5 s): it stops acting
    when its renew deadline passes, before the candidate can take the lease."""
    timing = {"duration": 3.0, "renew_deadline": 1.0, "retry": 0.1}
    a, b = elector(api, "a", **timing), elector(api, "b", **timing)
    await a.acquire()
    lost = asyncio.Event()
    hold = asyncio.create_task(a.hold(lost))
    seen: list[tuple[str, bool]] = []
    try:
        await asyncio.sleep(0.3)
        assert a.leading() and not lost.is_set()
        api.slow["a"] = 5.0

        async def dropped() -> None:
            await lost.wait()
            seen.append(("a dropped", a.leading()))

        watcher = asyncio.create_task(dropped())
        async with asyncio.timeout(30):
            await b.acquire()
        seen.append(("b took the lease", a.leading()))
        await asyncio.wait_for(watcher, 5)
    finally:
        hold.cancel()
        await asyncio.gather(hold, return_exceptions=True)
    assert seen == [("a dropped", False), ("b took the lease", False)]
    lease = api.get("Lease", "foresail", "lease")
    assert lease is not None and lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1


CANDIDATES = [
    pytest.param(3600.0, True, id="candidate's clock 1 h ahead, holder renewing: never taken"),
    pytest.param(-3600.0, True, id="candidate's clock 1 h behind, holder renewing: never taken"),
    pytest.param(3600.0, False, id="candidate's clock 1 h ahead, holder gone: taken after leaseDuration unchanged, not before"),
    pytest.param(-3600.0, False, id="candidate's clock 1 h behind, holder gone: taken after leaseDuration unchanged"),
    pytest.param(0.0, False, id="same clocks, holder gone: taken after leaseDuration unchanged"),
]


@pytest.mark.parametrize(("skew_s", "holder_renews"), CANDIDATES)
def test_a_candidate_judges_expiry_on_its_own_clock(api: FakeApiServer, skew_s: float, holder_renews: bool) -> None:
    holder_clock, clock = Clock(), Clock(50.0)
    holder = elector(api, "a", holder_clock)
    assert holder.try_acquire()
    candidate = elector(api, "b", clock, skew_s=skew_s)
    took = []
    for _ in range(20):  # a try every 2 s for 40 s
        if holder_renews:
            assert holder.try_acquire()
        took.append(candidate.try_acquire())
        clock.t += 2.0
        holder_clock.t += 2.0
        if took[-1]:
            break
    lease = api.get("Lease", "foresail", "lease")
    assert lease is not None
    if holder_renews:
        assert not any(took) and lease["spec"]["holderIdentity"] == "a" and holder.leading()
    else:
        # first seen at 50; unchanged for 15 s on the candidate's clock at 66 (the ninth try), not at 64
        assert took == [False] * 8 + [True]
        assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1 and candidate.leading()


def test_a_lease_whose_renew_time_is_an_hour_old_is_still_watched_for_a_lease_duration(api: FakeApiServer) -> None:
    """The holder's clock is 1 h behind the candidate's: its renewTime looks old, but the lease changes."""
    old = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "lease", "namespace": "foresail"},
        "spec": {"holderIdentity": "ghost", "leaseDurationSeconds": 15, "acquireTime": old, "renewTime": old, "leaseTransitions": 0},
    }
    api.put(lease)
    clock = Clock()
    candidate = elector(api, "b", clock)
    assert not candidate.try_acquire()
    clock.t += 14.0
    assert not candidate.try_acquire()
    clock.t += 1.5
    assert candidate.try_acquire()


def test_a_released_lease_is_taken_at_the_standbys_next_attempt(api: FakeApiServer) -> None:
    clock = Clock()
    leader, standby = elector(api, "a", clock), elector(api, "b", clock)
    assert leader.try_acquire() and leader.leading()
    assert not standby.try_acquire()
    assert leader.release()
    assert not leader.leading(), "it stops acting before it gives the lease up"
    lease = api.get("Lease", "foresail", "lease")
    assert lease is not None and not lease["spec"].get("holderIdentity") and lease["spec"]["leaseDurationSeconds"] == 1
    clock.t += 2.0  # the standby's next attempt, not a lease duration later
    assert standby.try_acquire() and standby.leading()
    lease = api.get("Lease", "foresail", "lease")
    assert lease is not None and lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1


@pytest.mark.parametrize(
    "case",
    ["another holder took it", "no lease at all"],
)
def test_release_leaves_a_lease_that_is_not_its_own(api: FakeApiServer, case: str) -> None:
    clock = Clock()
    leader = elector(api, "a", clock)
    if case == "another holder took it":
        other = elector(api, "b", clock)
        assert other.try_acquire()
    assert not leader.release()
    assert not leader.leading()
    lease = api.get("Lease", "foresail", "lease")
    if case == "another holder took it":
        assert lease is not None and lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseDurationSeconds"] == 15
    else:
        assert lease is None
