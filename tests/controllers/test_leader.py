"""The leader lease against the fake apiserver: renewals on the elector's own thread."""

from __future__ import annotations

import asyncio
import threading

from foresail.controllers.leader import LeaseElector
from tests.fakes.apiserver import FakeApiServer


async def test_renewals_are_not_queued_behind_the_default_executor(api: FakeApiServer) -> None:
    elector = LeaseElector(api.kube(), "foresail", "lease", "me", duration=15.0, renew=0.05)
    await elector.acquire()
    loop = asyncio.get_running_loop()
    renewed = asyncio.Event()
    acquire = elector.try_acquire

    def counted() -> bool:
        ok = acquire()
        loop.call_soon_threadsafe(renewed.set)
        return ok

    elector.try_acquire = counted  # type: ignore[method-assign]
    released = threading.Event()
    busy = [loop.run_in_executor(None, released.wait) for _ in range(64)]  # every default thread blocked
    lost = asyncio.Event()
    hold = asyncio.create_task(elector.hold(lost))
    try:
        async with asyncio.timeout(30):  # a guard against hanging, not a measure: a renewal comes within 0.05 s
            await renewed.wait()
    finally:
        hold.cancel()
        released.set()
        await asyncio.gather(*busy, hold, return_exceptions=True)
    assert not lost.is_set()
    lease = api.get("Lease", "foresail", "lease")
    assert lease is not None and lease["spec"]["holderIdentity"] == "me"
