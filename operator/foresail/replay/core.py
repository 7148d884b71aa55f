"""The arrays of one replay simulation (``kernel.run_until`` works on them) and the fleet changes of a tick.

Replica slots are reused after a release; the slot arrays double when full. Fleet changes happen only at
ticks, in Python: ``add`` (a replica holding a GPU from now, serving after its cold start) and ``remove``
(replicas still starting go first, then the ready ones with the shortest queue, which drain: they stop
taking requests, finish their queue, then release their GPU).
"""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from foresail.replay import kernel as k
from foresail.replay import signals as sg
from foresail.replay.kernel import DRAINING, EX, FREE, NREADY, QL, READY, ROUTINGS, SEQ, ST, STARTING

__all__ = ["Core", "compile_seconds"]

_compile_s: list[float] = []


def compile_seconds() -> float | None:
    """Seconds the first run of this process spent compiling (or loading the cached compilation)."""
    return _compile_s[0] if _compile_s else None


class Core:
    """The arrays of one simulation and the fleet changes the driver makes at ticks."""

    def __init__(
        self,
        times: npt.NDArray[np.float64],
        work: npt.NDArray[np.float64],
        *,
        base_ms: float,
        per_item_ms: float,
        max_batch: int,
        routing: str,
        queue_max: int,
        queue_timeout_s: float,
        connections: int,
        connection_lifetime_s: float,
        scrape_s: float,
        ring: int,
        backs: list[int],
        score_from: float,
        end: float,
        seed: int,
    ) -> None:
        k.ensure_numba()
        n = len(times)
        self.t_arr, self.work = times, work
        self.lat = np.full(n, np.inf)
        self.status = np.zeros(n, np.int8)
        self.nxt = np.full(n, -1, np.int64 if n >= 2**31 - 1 else np.int32)
        self.ri = np.zeros((8, 7), np.int64)
        self.rf = np.zeros((8, 2))
        self.ready = np.zeros(8, np.int64)
        self.gi = np.zeros(14, np.int64)
        self.g = np.zeros(3)
        self.g[k.NEXTEV] = k.INF
        self.cf = np.array([base_ms, per_item_ms, queue_timeout_s, connection_lifetime_s, scrape_s, score_from, end])
        self.ci = np.array([max_batch, ROUTINGS.index(routing), queue_max, max(connections, 1)], np.int64)
        self.ctr = np.zeros(5)
        self.hist = np.zeros(sg.BUCKETS, np.int64)
        self.rng = np.array([seed & (2**64 - 1)], np.uint64)
        self.conn_slot = np.full(max(connections, 1), -1, np.int64)
        self.conn_seq = np.full(max(connections, 1), -1, np.int64)
        self.conn_exp = np.zeros(max(connections, 1))
        self.ring_t = np.zeros(ring)
        self.ring_c = np.zeros((ring, sg.COUNTERS))
        self.ring_h = np.zeros((ring, sg.BUCKETS), np.int64)
        self.backs = np.array(backs, np.int64)
        self.obs = np.zeros((len(backs), 6))
        self.next_seq = 0

    # ------------------------------------------------------------------ the compiled part

    def run(self, until: float) -> None:
        first = not _compile_s
        t0 = time.perf_counter()
        k.run_until(until, self.t_arr, self.work, self.lat, self.status, self.nxt, self.ri, self.rf, self.ready, self.gi, self.g,
                  self.cf, self.ci, self.ctr, self.hist, self.rng, self.conn_slot, self.conn_seq, self.conn_exp,
                  self.ring_t, self.ring_c, self.ring_h, self.backs, self.obs)  # fmt: skip
        if first:
            _compile_s.append(time.perf_counter() - t0)

    # ------------------------------------------------------------------ fleet changes (ticks only)

    def _slot(self) -> int:
        free = np.flatnonzero(self.ri[:, ST] == FREE)
        if len(free):
            return int(free[0])
        s = len(self.ri)
        self.ri = np.concatenate([self.ri, np.zeros_like(self.ri)])
        self.rf = np.concatenate([self.rf, np.zeros_like(self.rf)])
        self.ready = np.concatenate([self.ready, np.zeros_like(self.ready)])
        return s

    def add(self, ready_at: float, ready_now: bool = False) -> None:
        """A replica that holds a GPU from now and serves from ``ready_at``, or at once (the running system a
        replay starts from)."""
        s = self._slot()
        self.ri[s] = (STARTING, self.next_seq, -1, -1, 0, -1, 0)
        self.rf[s] = (ready_at, 0.0)
        self.next_seq += 1
        self.gi[k.HOLD] += 1
        self.gi[k.DIRTY] = 1
        if ready_now:
            self.ri[s, ST] = READY
            self.ready[self.gi[NREADY]] = s
            self.gi[NREADY] += 1

    def live(self) -> list[int]:
        """Slots of replicas not draining (starting or ready), in creation order."""
        idx = np.flatnonzero((self.ri[:, ST] == STARTING) | (self.ri[:, ST] == READY))
        return [int(s) for s in idx[np.argsort(self.ri[idx, SEQ], kind="stable")]]

    def remove(self, t: float, count: int) -> None:
        """Scale down by ``count``: replicas still starting first, then the ready ones with the shortest queue."""
        order = sorted(self.live(), key=lambda s: (self.ri[s, ST] == READY, int(self.ri[s, QL])))
        for s in order[:count]:
            if self.ri[s, ST] == STARTING:
                self._release(s)
                continue
            self.ri[s, ST] = DRAINING
            nr = int(self.gi[NREADY])
            pos = int(np.flatnonzero(self.ready[:nr] == s)[0])
            self.ready[pos : nr - 1] = self.ready[pos + 1 : nr].copy()
            self.gi[NREADY] = nr - 1
            if self.ri[s, QL] == 0 and self.ri[s, EX] == 0:
                self._release(s)

    def _release(self, s: int) -> None:
        self.ri[s, ST] = FREE
        self.gi[k.HOLD] -= 1
        self.gi[k.DIRTY] = 1

    # ------------------------------------------------------------------ readings

    @property
    def holding(self) -> int:
        return int(self.gi[k.HOLD])

    @property
    def n_live(self) -> int:
        """Replicas starting or ready, as of the last ``run``."""
        return int(self.gi[k.LIVE])

    @property
    def n_ready(self) -> int:
        return int(self.gi[NREADY])

    @property
    def drained(self) -> bool:
        return bool(self.gi[k.AI] >= len(self.t_arr) and self.gi[k.QUEUED] == 0 and self.gi[k.EXEC] == 0)

    @property
    def arrived(self) -> int:
        return int(self.gi[k.AI])

    @property
    def gpu_seconds(self) -> float:
        return float(self.g[k.GPU])

    @property
    def scrapes(self) -> int:
        return int(self.gi[k.NSCR])
