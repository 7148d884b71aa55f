"""A background sampler for chaos tests: what the cluster shows, read every ``interval`` seconds on the test's
monotonic clock, so that "never lower during the fault" is checked on every read, not on one before and after."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Sampler(Generic[T]):
    read: Callable[[], T]
    interval: float = 0.5
    samples: list[tuple[float, T]] = field(default_factory=list)
    errors: int = 0

    def between(self, t0: float, t1: float) -> list[T]:
        """The values read in [t0, t1] (test clock)."""
        return [v for t, v in list(self.samples) if t0 <= t <= t1]


@contextmanager
def sampling(read: Callable[[], T], interval: float = 0.5) -> Iterator[Sampler[T]]:
    """Read ``read()`` every ``interval`` seconds on a thread while the block runs (a failed read is counted and
    skipped: the apiserver is shared with the fault)."""
    s: Sampler[T] = Sampler(read, interval)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            t = time.monotonic()
            try:
                s.samples.append((t, read()))
            except Exception:
                s.errors += 1
            stop.wait(interval)

    th = threading.Thread(target=loop, name="chaos-sampler", daemon=True)
    th.start()
    try:
        yield s
    finally:
        stop.set()
        th.join(timeout=30)
