"""The replay simulator in plain Python: the same model as the compiled core, written for reading, not speed.

Tests run both on short traces and require identical latencies, statuses, GPU-seconds and replica counts.
Replicas are objects in creation order; queues are deques; the next event is found by scanning.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from foresail.replay import signals as sg
from foresail.replay.sim import PolicyView, SimConfig, SimResult
from foresail.replay.traces import Arrivals

__all__ = ["simulate_reference"]

MASK = 2**64 - 1


class _Rng:
    """splitmix64, as ``core._rand``."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


@dataclass
class _Replica:
    seq: int
    ready_at: float
    state: str = "starting"  # starting, ready, draining, released
    queue: deque[int] = field(default_factory=deque)
    batch: list[int] = field(default_factory=list)
    busy_until: float = 0.0


class _Sim:
    def __init__(self, arr: Arrivals, cfg: SimConfig, end: float) -> None:
        self.t_arr = [float(x) for x in arr.times]
        self.work = [float(x) for x in arr.work]
        self.cfg, self.end = cfg, end
        self.lat = [math.inf] * len(self.t_arr)
        self.status = [0] * len(self.t_arr)
        self.replicas: list[_Replica] = []
        self.gateway: deque[int] = deque()
        self.ctr = [0.0] * 5  # arrived, completed, rejected, started, wait seconds
        self.hist = np.zeros(sg.BUCKETS, np.int64)
        self.scrapes: list[tuple[float, list[float], np.ndarray]] = []  # type: ignore[type-arg]
        self.rr = 0
        self.rng = _Rng(cfg.seed)
        self.conns: list[tuple[_Replica | None, float]] = [(None, 0.0)] * cfg.serving.connections
        self.ai = 0
        self.gpu, self.last = 0.0, 0.0

    # ------------------------------------------------------------------ readings
    def ready(self) -> list[_Replica]:
        return [r for r in self.replicas if r.state == "ready"]

    def holding(self) -> int:
        return sum(1 for r in self.replicas if r.state != "released")

    def queued(self) -> int:
        return len(self.gateway) + sum(len(r.queue) for r in self.replicas)

    def executing(self) -> int:
        return sum(len(r.batch) for r in self.replicas)

    # ------------------------------------------------------------------ model
    def account(self, t: float) -> None:
        if t > self.last:
            lo, hi = max(self.last, self.cfg.score_from_s), min(t, self.end)
            if hi > lo:
                self.gpu += self.holding() * (hi - lo)
            self.last = t

    def start_batch(self, r: _Replica, t: float) -> None:
        timeout = self.cfg.serving.queue_timeout_ms / 1000.0
        wsum = 0.0
        while r.queue and len(r.batch) < self.cfg.model.max_batch:
            j = r.queue.popleft()
            if timeout > 0 and t - self.t_arr[j] > timeout:
                self.status[j] = 2
                self.ctr[2] += 1
                continue
            r.batch.append(j)
            wsum += self.work[j]
            self.ctr[3] += 1
            self.ctr[4] += t - self.t_arr[j]
        if r.batch:
            r.busy_until = t + (self.cfg.model.base_ms + self.cfg.model.per_item_ms * wsum) / 1000.0

    def pick(self, t: float, ready: list[_Replica]) -> _Replica:
        if self.cfg.serving.routing == "round-robin":
            self.rr += 1
            return ready[(self.rr - 1) % len(ready)]
        if self.cfg.serving.routing == "least-outstanding":
            start = self.rr % len(ready)
            self.rr += 1
            rotated = [ready[(start + j) % len(ready)] for j in range(len(ready))]
            return min(rotated, key=lambda r: len(r.queue) + len(r.batch))  # the first of the least loaded
        c = self.rng.next() % len(self.conns)
        rep, expires = self.conns[c]
        if rep is None or rep.state != "ready" or t >= expires:
            rep = ready[self.rng.next() % len(ready)]
            life = self.cfg.serving.connection_lifetime_s
            if life > 0:
                u = ((self.rng.next() >> 11) + 1.0) * (1.0 / 9007199254740992.0)
                self.conns[c] = (rep, t - life * math.log(u))
            else:
                self.conns[c] = (rep, math.inf)
        return rep

    def dispatch(self, j: int, t: float) -> None:
        ready = self.ready()
        if not ready:
            self.gateway.append(j)
            return
        r = self.pick(t, ready)
        if self.cfg.serving.queue_max > 0 and len(r.queue) >= self.cfg.serving.queue_max:
            self.status[j] = 2
            self.ctr[2] += 1
            return
        r.queue.append(j)
        if not r.batch:
            self.start_batch(r, t)

    def next_event(self) -> tuple[float, int, _Replica | None]:
        best: tuple[float, int, int, _Replica | None] = (math.inf, 2, 0, None)
        for r in self.replicas:
            if r.batch:
                cand = (r.busy_until, 0, r.seq, r)
            elif r.state == "starting":
                cand = (r.ready_at, 1, r.seq, r)
            else:
                continue
            if cand[:3] < best[:3]:
                best = cand
        return best[0], best[1], best[3]

    def run(self, until: float) -> None:
        while True:
            ta = self.t_arr[self.ai] if self.ai < len(self.t_arr) else math.inf
            ts = len(self.scrapes) * self.cfg.scrape_s
            te, kind, r = self.next_event()
            if ts <= ta and ts <= te:
                if ts > until:
                    break
                self.account(ts)
                gauges = [float(self.queued()), float(self.executing())]
                self.scrapes.append((ts, [*self.ctr, *gauges], self.hist.copy()))
            elif te <= ta:
                if te >= until:
                    break
                assert r is not None
                self.account(te)
                if kind == 1:
                    r.state = "ready"
                    while self.gateway:
                        self.dispatch(self.gateway.popleft(), te)
                else:
                    for j in r.batch:
                        self.lat[j] = (r.busy_until - self.t_arr[j]) * 1000.0
                        self.status[j] = 1
                        self.hist[sg.bucket_of(self.lat[j])] += 1
                    self.ctr[1] += len(r.batch)
                    r.batch = []
                    if r.queue:
                        self.start_batch(r, te)
                    if not r.batch and not r.queue and r.state == "draining":
                        r.state = "released"
            else:
                if ta >= until:
                    break
                self.account(ta)
                self.ai += 1
                self.ctr[0] += 1
                self.dispatch(self.ai - 1, ta)
        self.account(until)

    def scale(self, t: float, want: int) -> bool:
        live = [r for r in self.replicas if r.state in ("starting", "ready")]
        if want > len(live):
            for _ in range(want - len(live)):
                self.replicas.append(_Replica(len(self.replicas), t + self.cfg.cold_start_s))
            return True
        if want < len(live):
            for r in sorted(live, key=lambda r: (r.state == "ready", len(r.queue)))[: len(live) - want]:
                if r.state == "starting" or (not r.queue and not r.batch):
                    r.state = "released"
                else:
                    r.state = "draining"
            return True
        return False


def simulate_reference(
    arr: Arrivals, cfg: SimConfig, policy: Callable[[PolicyView], int], horizon: float | None = None
) -> SimResult:
    end = (horizon if horizon is not None else arr.duration) + 1.0
    sim = _Sim(arr, cfg, end)
    for i in range(max(cfg.initial_replicas, 0)):
        sim.replicas.append(_Replica(i, 0.0, state="ready"))
    res = SimResult(arrivals=arr.times, score_from_s=cfg.score_from_s, initial_replicas=max(cfg.initial_replicas, 0))
    k = 1
    while True:
        t = k * cfg.tick_s
        sim.run(t)
        drained = sim.ai >= len(sim.t_arr) and sim.queued() == 0 and sim.executing() == 0
        if (t > end and drained) or t > end + 3600:
            break
        live = sum(1 for r in sim.replicas if r.state in ("starting", "ready"))
        n_ready = len(sim.ready())
        view = sg.view_from_scrapes(
            t,
            [s[0] for s in sim.scrapes],
            np.array([s[1] for s in sim.scrapes]),
            np.array([s[2] for s in sim.scrapes]),
            len(sim.scrapes) - 1,
            cfg.scrape_s,
            cfg.rate_window_s,
            n_ready,
            live - n_ready,
            live,
        )
        want = min(max(int(policy(view)), cfg.min_replicas), cfg.max_replicas)
        if sim.scale(t, want) and t >= cfg.score_from_s:
            res.scale_actions += 1
        res.replicas_t.append((t, sim.holding(), len(sim.ready())))
        k += 1
    res.latencies_ms = np.array(sim.lat)
    res.status = np.array(sim.status, np.int8)
    res.gpu_seconds, res.duration_s = sim.gpu, t
    return res
