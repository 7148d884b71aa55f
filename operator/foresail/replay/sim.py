"""What-if simulator (pure): replay arrivals through batching replicas under a scaling policy.

Each replica is a Triton-like dynamic-batching server with its own queue: when idle it takes up to
``max_batch`` queued requests and serves them in ``base_ms + per_item_ms x sum(work)``. Arrivals are
spread round robin over the *ready* replicas (as the load generator, a mesh or a gateway would). A
replica the policy adds holds a GPU from the moment it is created and serves only after its cold start;
a replica the policy removes stops taking requests, finishes its queue, then releases its GPU.

The policy sees what Prometheus would show it: every ``tick`` it gets the arrival rate over the rate
window, the queue depth and the p99 of the last window as of the last scrape, plus ready and starting
replicas. Requests that find no ready replica wait at the gateway and count from their arrival.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from foresail.replay.traces import Arrivals

__all__ = ["PolicyView", "ReplicaModel", "SimConfig", "SimResult", "p99_by_window", "recovery_s", "simulate"]


@dataclass(frozen=True)
class ReplicaModel:
    base_ms: float
    per_item_ms: float
    max_batch: int

    def batch_ms(self, work: float) -> float:
        return self.base_ms + self.per_item_ms * work

    def capacity_rps(self, slo_ms: float, seconds: float = 60.0) -> float:
        """Highest Poisson arrival rate one replica serves with p99 within the SLO (found by simulating
        the replica itself: bisection over the rate, deterministic)."""
        from foresail.replay.traces import profile_arrivals

        if self.batch_ms(1) > slo_ms:
            return 0.0
        lo, hi = 0.0, self.max_batch / self.batch_ms(self.max_batch) * 1000.0
        cfg = SimConfig(model=self, slo_ms=slo_ms, cold_start_s=0.0, tick_s=3600.0, initial_replicas=1)
        for _ in range(14):
            mid = (lo + hi) / 2
            arr = profile_arrivals("constant", {"rate": mid}, seconds, seed=7)
            res = simulate(arr, cfg, lambda v: 1)
            if _p99(res.latencies_ms) <= slo_ms:
                lo = mid
            else:
                hi = mid
        return lo

    @staticmethod
    def from_curve(points: list[dict[str, float]], max_batch: int = 32) -> ReplicaModel:
        """Fit base and per-item times from a calibration curve (c=1 latency and the best throughput)."""
        one = min(points, key=lambda p: p["concurrency"])
        best = max(points, key=lambda p: p["throughput_rps"])
        per = max(1e-3, (1000.0 / best["throughput_rps"] * max_batch - one["p50_ms"]) / max(max_batch - 1, 1))
        return ReplicaModel(base_ms=max(0.1, one["p50_ms"] - per), per_item_ms=per, max_batch=max_batch)


@dataclass(frozen=True)
class PolicyView:
    now: float
    arrival_rps: float
    queue: float
    p99_ms: float
    ready: int
    starting: int
    current: int


@dataclass(frozen=True)
class SimConfig:
    model: ReplicaModel
    slo_ms: float
    cold_start_s: float
    tick_s: float = 5.0
    scrape_s: float = 1.0
    rate_window_s: float = 30.0
    initial_replicas: int = 1
    min_replicas: int = 1
    max_replicas: int = 1000


@dataclass
class SimResult:
    latencies_ms: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    replicas_t: list[tuple[float, int, int]] = field(default_factory=list)  # (t, replicas holding GPUs, ready)
    gpu_seconds: float = 0.0
    scale_actions: int = 0
    duration_s: float = 0.0

    def within_slo(self, slo_ms: float) -> float:
        return sum(1 for x in self.latencies_ms if x <= slo_ms) / len(self.latencies_ms) if self.latencies_ms else 1.0

    def windows_within_slo(self, slo_ms: float, window_s: float = 60.0) -> float:
        by: dict[int, list[float]] = {}
        for t, lat in zip(self.arrivals, self.latencies_ms, strict=True):
            by.setdefault(int(t // window_s), []).append(lat)
        if not by:
            return 1.0
        ok = 0
        for lats in by.values():
            lats.sort()
            p99 = lats[min(len(lats) - 1, math.ceil(0.99 * len(lats)) - 1)]
            ok += p99 <= slo_ms
        return ok / len(by)


@dataclass
class _Replica:
    ready_at: float
    queue: deque[tuple[float, float, int]] = field(default_factory=deque)  # (arrival, work, request index)
    busy_until: float = 0.0
    draining: bool = False
    released_at: float | None = None


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    xs = sorted(values)
    return xs[min(len(xs) - 1, math.ceil(0.99 * len(xs)) - 1)]


def p99_by_window(
    times: Sequence[float], latencies_ms: Sequence[float], window_s: float = 1.0, horizon: float | None = None
) -> list[float | None]:
    """p99 (nearest rank) of the requests *arriving* in each window ``[k w, (k+1) w)`` from 0 to ``horizon``
    (default: the last arrival); ``None`` for a window without arrivals. Unserved requests (latency
    ``inf``) count as over any SLO. The same figure for simulated and for recorded requests."""
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    end = horizon if horizon is not None else max(times, default=0.0)
    by: list[list[float]] = [[] for _ in range(int(end // window_s) + 1)]
    for t, lat in zip(times, latencies_ms, strict=True):
        k = int(t // window_s)
        if t >= 0 and k < len(by):
            by[k].append(lat)
    return [_p99(lats) if lats else None for lats in by]


def recovery_s(
    p99s: Sequence[float | None], window_s: float, slo_ms: float, since: float, hold_s: float | None = None
) -> float | None:
    """Seconds from ``since`` (a step in the load) until the windowed p99 is within the SLO and stays there:
    to the last window (``hold_s`` None), or for at least ``hold_s`` (so that a later, unrelated blip does not
    count as the step's). 0.0 if it never left the SLO, ``None`` if it never recovers. Windows ending at or
    before ``since`` are ignored; windows without arrivals count as within."""
    first = next((k for k in range(len(p99s)) if (k + 1) * window_s > since), len(p99s))
    if first == len(p99s):
        return 0.0  # nothing after ``since``: it never left the SLO
    ok = [p is None or p <= slo_ms for p in p99s]
    span = len(p99s) if hold_s is None else max(1, math.ceil(hold_s / window_s - 1e-9))
    for j in range(first, len(p99s)):
        if all(ok[j : j + span]):
            return max(0.0, j * window_s - since)
    return None


def simulate(arr: Arrivals, cfg: SimConfig, policy: Callable[[PolicyView], int], horizon: float | None = None) -> SimResult:
    """Replay ``arr`` under ``policy``; deterministic for the same inputs."""
    res = SimResult(arrivals=list(arr.times), latencies_ms=[math.inf] * len(arr.times))
    end = (horizon if horizon is not None else arr.duration) + 1.0
    replicas = [_Replica(ready_at=0.0) for _ in range(max(cfg.initial_replicas, 0))]
    gateway: deque[tuple[float, float, int]] = deque()
    done: deque[tuple[float, float]] = deque()  # (finish time, latency ms)
    events: list[tuple[float, int, int]] = []  # (time, kind, replica) kind 0 = batch done, 1 = ready
    rr = 0
    seen: deque[float] = deque()
    view = PolicyView(0.0, 0.0, 0.0, 0.0, len(replicas), 0, len(replicas))
    last_t = 0.0

    def ready(t: float) -> list[int]:
        return [i for i, r in enumerate(replicas) if r.ready_at <= t and not r.draining]

    def start_batch(i: int, t: float) -> None:
        r = replicas[i]
        if r.busy_until > t or not r.queue:
            return
        batch = [r.queue.popleft() for _ in range(min(cfg.model.max_batch, len(r.queue)))]
        r.busy_until = t + cfg.model.batch_ms(sum(w for _, w, _ in batch)) / 1000.0
        for a, _w, idx in batch:
            lat = (r.busy_until - a) * 1000.0
            res.latencies_ms[idx] = lat
            done.append((r.busy_until, lat))
        heapq.heappush(events, (r.busy_until, 0, i))

    def dispatch(t: float, item: tuple[float, float, int]) -> bool:
        nonlocal rr
        rl = ready(t)
        if not rl:
            return False
        i = rl[rr % len(rl)]
        rr += 1
        replicas[i].queue.append(item)
        start_batch(i, t)
        return True

    ai, n = 0, len(arr.times)
    next_tick, next_scrape = cfg.tick_s, 0.0
    t = 0.0
    while True:
        t_arr = arr.times[ai] if ai < n else math.inf
        t_ev = events[0][0] if events else math.inf
        t = min(t_arr, t_ev, next_tick, next_scrape)
        if t > end and ai >= n and not events and not gateway:
            break
        if t > end + 3600:
            break
        holding = sum(1 for r in replicas if r.released_at is None)
        res.gpu_seconds += holding * (t - last_t)
        last_t = t
        if t == next_scrape:  # what Prometheus shows as of this scrape
            while seen and seen[0] <= t - cfg.rate_window_s:
                seen.popleft()
            while done and done[0][0] <= t - 30.0:
                done.popleft()
            rl = ready(t)
            live = sum(1 for r in replicas if not r.draining)
            rate = len(seen) / min(cfg.rate_window_s, max(t, cfg.scrape_s))
            queue = len(gateway) + sum(len(r.queue) for r in replicas)
            view = PolicyView(t, rate, float(queue), _p99([lat for ft, lat in done if ft <= t]), len(rl), live - len(rl), live)
            next_scrape = t + cfg.scrape_s
        elif t == next_tick:
            want = min(
                max(
                    policy(PolicyView(t, view.arrival_rps, view.queue, view.p99_ms, view.ready, view.starting, view.current)),
                    cfg.min_replicas,
                ),
                cfg.max_replicas,
            )
            live_idx = [i for i, r in enumerate(replicas) if not r.draining]
            if want > len(live_idx):
                for _ in range(want - len(live_idx)):
                    replicas.append(_Replica(ready_at=t + cfg.cold_start_s))
                    heapq.heappush(events, (t + cfg.cold_start_s, 1, len(replicas) - 1))
                res.scale_actions += 1
            elif want < len(live_idx):
                # replicas still starting go first, then the least loaded ready ones
                order = sorted(live_idx, key=lambda i: (replicas[i].ready_at <= t, len(replicas[i].queue)))
                for i in order[: len(live_idx) - want]:
                    r = replicas[i]
                    r.draining = True
                    if r.ready_at > t or (not r.queue and r.busy_until <= t):
                        r.released_at = t
                res.scale_actions += 1
            res.replicas_t.append((t, sum(1 for r in replicas if r.released_at is None), len(ready(t))))
            next_tick = t + cfg.tick_s
        elif t == t_ev:
            _, kind, i = heapq.heappop(events)
            r = replicas[i]
            if kind == 1:
                while gateway and not r.draining and dispatch(t, gateway[0]):
                    gateway.popleft()
            elif r.queue:
                start_batch(i, t)
            elif r.draining and r.released_at is None:
                r.released_at = t
        else:
            item = (arr.times[ai], arr.work[ai], ai)
            seen.append(item[0])
            ai += 1
            if not dispatch(t, item):
                gateway.append(item)
    res.duration_s = t
    return res
