"""Fakes at the runner's boundary: a clock that moves only when someone sleeps, and an in-memory Triton."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from foresail.evaluation.dataset import Item
from foresail.evaluation.progress import ShardProgress
from foresail.evaluation.runner import PermanentError


class FakeTime:
    """``clock()`` returns virtual seconds; ``sleep(dt)`` moves them on and yields to the event loop."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    async def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.t += dt
        await asyncio.sleep(0)


class RealTime(FakeTime):
    """The real monotonic clock and ``asyncio.sleep``, behind the same interface (for short timing tests)."""

    def clock(self) -> float:
        return time.monotonic()

    async def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        await asyncio.sleep(dt)


def items(n: int, prefix: str = "item") -> list[Item]:
    return [Item(id=f"{prefix}-{i}", inputs={"x": [i, i + 1]}, expected={"y": [2 * i + 1]}, label=i % 3) for i in range(n)]


@dataclass
class FakeTriton:
    """Deterministic outputs: ``y`` = [sum of x] (equal to ``expected`` unless the id is in ``wrong``).

    ``fail_first[id]``: the first attempts of a request holding id raise ConnectionError (transient);
    ``always_fail``: they always do; ``slow_first``/``always_slow``: the call hangs (real time) so the
    runner's timeout fires; ``bad``: PermanentError (a rejected input). ``calls`` logs (virtual start
    time, ids, in flight at the start).
    """

    time: FakeTime
    latency_s: float = 0.01
    fail_first: dict[str, int] = field(default_factory=dict)
    always_fail: set[str] = field(default_factory=set)
    slow_first: set[str] = field(default_factory=set)
    always_slow: set[str] = field(default_factory=set)
    bad: set[str] = field(default_factory=set)
    wrong: set[str] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0
    attempts: Counter[str] = field(default_factory=Counter)
    calls: list[tuple[float, list[str], int]] = field(default_factory=list)
    _waiters: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    async def until_calls(self, n: int) -> None:
        """Return once ``n`` calls have started (to kill, stop or squeeze a run in its middle)."""
        if len(self.calls) < n:
            ev = asyncio.Event()
            self._waiters.append((n, ev))
            await ev.wait()

    async def __call__(self, batch: list[Item]) -> Sequence[Mapping[str, NDArray[Any]]]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        ids = [it.id for it in batch]
        self.calls.append((self.time.clock(), ids, self.in_flight))
        for n, ev in self._waiters:
            if len(self.calls) >= n:
                ev.set()
        try:
            for i in ids:
                self.attempts[i] += 1
            await self.time.sleep(self.latency_s)
            if any(i in self.always_slow or (i in self.slow_first and self.attempts[i] == 1) for i in ids):
                await asyncio.sleep(5)  # real time: only the runner's timeout ends this
            if any(i in self.bad for i in ids):
                raise PermanentError("input x: unexpected shape")
            if any(i in self.always_fail or self.attempts[i] <= self.fail_first.get(i, 0) for i in ids):
                raise ConnectionError("server overloaded")
            return [
                {"y": np.array([[sum(it.inputs["x"]) + (1 if it.id in self.wrong else 0)]], dtype=np.float32)} for it in batch
            ]
        finally:
            self.in_flight -= 1

    def sent(self) -> list[str]:
        return [i for _, ids, _ in self.calls for i in ids]


@dataclass
class Reports:
    time: FakeTime
    seen: list[tuple[float, ShardProgress]] = field(default_factory=list)

    async def __call__(self, progress: ShardProgress) -> None:
        self.seen.append((self.time.t, progress))
