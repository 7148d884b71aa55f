"""Reconcile coalescing: bursts of events for one object become one reconcile (client-go's work queue).

A child of an InferenceService (its Deployment, Service, PDB) changes many times in a burst: a rollout of
its pods moves the Deployment's status once per replica, an apply and a scale follow each other. Each
event used to run a full reconcile. Now an event only *marks* its owner (``mark``): a key marked while it
waits is queued once, and runs ``delay_s`` after its first mark; a key marked while its reconcile runs is
run once more afterwards (the reconcile may have read the state before the event), never twice at once.
``workers`` threads run the reconciles. ``forget`` drops what is kept of a key (its owner was deleted).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

__all__ = ["Coalescer", "configure", "mark"]

log = logging.getLogger("foresail.coalesce")


@dataclass
class Coalescer:
    work: Callable[[Hashable], None]
    delay_s: float = 1.0
    workers: int = 4
    clock: Callable[[], float] = time.monotonic
    marked: int = 0  # marks received
    ran: int = 0  # reconciles run
    _due: dict[Hashable, float] = field(default_factory=dict)  # queued keys, when each is due
    _running: set[Hashable] = field(default_factory=set)
    _again: set[Hashable] = field(default_factory=set)  # marked while running: once more afterwards
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _stop: bool = False
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Coalescer:
        for i in range(self.workers):
            t = threading.Thread(target=self._run, name=f"coalesce-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=5)

    def mark(self, key: Hashable) -> None:
        with self._cond:
            self.marked += 1
            if key in self._running:
                self._again.add(key)
            elif key not in self._due:
                self._due[key] = self.clock() + self.delay_s
                self._cond.notify()

    def forget(self, key: Hashable) -> None:
        with self._cond:
            self._due.pop(key, None)
            self._again.discard(key)

    def pending(self) -> int:
        with self._cond:
            return len(self._due) + len(self._running)

    def _next(self) -> Hashable | None:
        with self._cond:
            while not self._stop:
                now = self.clock()
                ready = [k for k, t in self._due.items() if t <= now and k not in self._running]
                if ready:
                    key = min(ready, key=lambda k: self._due[k])
                    del self._due[key]
                    self._running.add(key)
                    return key
                wait = min((t - now for k, t in self._due.items() if k not in self._running), default=None)
                self._cond.wait(None if wait is None else max(wait, 0.01))
            return None

    def _run(self) -> None:
        while (key := self._next()) is not None:
            try:
                self.work(key)
            except Exception as e:  # one object's failure is its own; the resync retries it
                log.exception("reconcile of %s failed: %r", key, e)
            finally:
                with self._cond:
                    self.ran += 1
                    self._running.discard(key)
                    if key in self._again:
                        self._again.discard(key)
                        self._due[key] = self.clock() + self.delay_s
                    self._cond.notify_all()


_children: Coalescer | None = None


def configure(coalescer: Coalescer | None) -> None:
    """The process's coalescer of child events (``foresail run`` starts one); None: reconcile at once."""
    global _children
    _children = coalescer


def mark(key: Hashable, otherwise: Callable[[], None]) -> None:
    """Mark ``key`` for a coalesced reconcile, or run ``otherwise`` now when no coalescer is configured."""
    if _children is None:
        otherwise()
    else:
        _children.mark(key)
