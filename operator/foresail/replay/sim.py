"""What-if simulator (pure): replay arrivals through batching replicas under a scaling policy.

Each replica is a Triton-like dynamic-batching server with its own queue: when idle it takes up to
``max_batch`` queued requests and serves them in ``base_ms + per_item_ms x sum(work)``. Requests reach the
*ready* replicas by one of three routing models (``SimConfig.routing``):

* ``round-robin``: per request, over the ready replicas in creation order (the load generator, a mesh);
* ``per-connection``: what kube-proxy does with keep-alive HTTP or gRPC: the clients hold ``connections``
  connections, each request goes out on a random one, and each connection stays pinned to the ready replica
  it was opened to (chosen at random) until that replica goes away or the connection is recycled
  (exponentially distributed lifetime, mean ``connection_lifetime_s``; 0 = never): new replicas get traffic
  only as connections are re-opened;
* ``least-outstanding``: to the ready replica with the fewest queued plus executing requests (an Envoy-like
  gateway, the Gateway API inference extension), ties broken round robin.

Triton's bounded queue (``dynamic_batching.default_queue_policy``) is a scenario setting: a request that
finds ``queue_max`` requests waiting at its replica is rejected at once; one that waited longer than
``queue_timeout_ms`` is rejected when its replica next forms a batch. Rejected requests count as misses.

A replica the policy adds holds a GPU from the moment it is created and serves only after its cold start;
a replica the policy removes stops taking requests, finishes its queue, then releases its GPU. Requests that
find no ready replica wait at the gateway and count from their arrival.

The policy sees what Prometheus would show it (``signals``): every ``tick`` it gets windowed rates,
queue, in-flight work, queue wait and p99 from the scrapes, plus ready and starting replicas. A replay can
start with a prior that is not scored (``score_from_s``): requests arriving before it and GPU-seconds before
it do not count. The event loop is compiled (``core``); it returns to Python only at ticks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from foresail.replay import signals
from foresail.replay.core import Core
from foresail.replay.kernel import ROUTINGS
from foresail.replay.signals import PolicyView
from foresail.replay.traces import Arrivals
from foresail.scaling.calibration import batch_model

__all__ = [
    "ROUTINGS",
    "PolicyView",
    "ReplicaModel",
    "Serving",
    "SimConfig",
    "SimResult",
    "p99_by_window",
    "recovery_s",
    "simulate",
]

Progress = Callable[[float, int], None]


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
        """Fit base and per-item times from a calibration curve (``scaling.calibration.batch_model``)."""
        base, per = batch_model(points, max_batch)
        return ReplicaModel(base_ms=base, per_item_ms=per, max_batch=max_batch)


@dataclass(frozen=True)
class Serving:
    """How requests reach the replicas (``routing``; client connections for ``per-connection``) and Triton's
    bounded queue (``queue_max``: max_queue_size, 0 = unbounded; ``queue_timeout_ms``: 0 = none)."""

    routing: str = "round-robin"
    connections: int = 64
    connection_lifetime_s: float = 60.0
    queue_max: int = 0
    queue_timeout_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.routing not in ROUTINGS:
            raise ValueError(f"routing: {self.routing!r} unknown; expected one of {list(ROUTINGS)}")
        if self.queue_max < 0 or self.connections < 1:
            raise ValueError(f"queue_max must be >= 0 and connections >= 1 (got {self.queue_max}, {self.connections})")
        for name in ("connection_lifetime_s", "queue_timeout_ms"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


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
    serving: Serving = field(default_factory=Serving)
    score_from_s: float = 0.0  # the prior before it is not scored
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("tick_s", "scrape_s", "rate_window_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("cold_start_s", "score_from_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.model.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.model.max_batch}")


@dataclass
class SimResult:
    latencies_ms: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))  # inf: never served
    arrivals: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    status: npt.NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, np.int8))  # 1 served, 2 rejected
    replicas_t: list[tuple[float, int, int]] = field(default_factory=list)  # (t, replicas holding GPUs, ready)
    initial_replicas: int = 0  # from t = 0 until the first entry of replicas_t
    gpu_seconds: float = 0.0  # from score_from_s to the end of the trace
    scale_actions: int = 0  # ticks that changed the replicas, from score_from_s
    duration_s: float = 0.0
    score_from_s: float = 0.0
    wall_s: float = 0.0

    def scored(self) -> npt.NDArray[np.bool_]:
        return self.arrivals >= self.score_from_s

    def requests(self) -> int:
        return int(self.scored().sum())

    def within_slo(self, slo_ms: float) -> float:
        """Share of the scored requests served within the SLO (rejected and unserved ones miss)."""
        m = self.scored()
        n = int(m.sum())
        return float((self.latencies_ms[m] <= slo_ms).sum()) / n if n else 1.0

    def rejected(self) -> int:
        return int((self.status[self.scored()] == 2).sum())

    def windows_within_slo(self, slo_ms: float, window_s: float = 60.0) -> float:
        """Share of the scored windows (from ``score_from_s``) whose arrivals' p99 is within the SLO."""
        m = self.scored()
        if not m.any():
            return 1.0
        k = ((self.arrivals[m] - self.score_from_s) // window_s).astype(np.int64)
        counts = np.bincount(k)
        within = np.bincount(k, weights=self.latencies_ms[m] <= slo_ms, minlength=len(counts))
        has = counts > 0
        # the nearest-rank p99 is within the SLO iff at least ceil(0.99 n) of the n requests are
        return float((within[has] >= np.ceil(0.99 * counts[has]) - 1e-9).mean())

    def peak_replicas(self, initial: int) -> int:
        return max((n for t, n, _ in self.replicas_t if t >= self.score_from_s), default=initial)


def _p99(values: Sequence[float] | npt.NDArray[np.float64]) -> float:
    if len(values) == 0:
        return 0.0
    xs = np.sort(np.asarray(values, dtype=float))
    return float(xs[min(len(xs) - 1, math.ceil(0.99 * len(xs)) - 1)])


def p99_by_window(
    times: Sequence[float] | npt.NDArray[np.float64], latencies_ms: Sequence[float] | npt.NDArray[np.float64], window_s: float = 1.0, horizon: float | None = None
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




def simulate(
    arr: Arrivals,
    cfg: SimConfig,
    policy: Callable[[PolicyView], int],
    horizon: float | None = None,
    progress: Progress | None = None,
) -> SimResult:
    """Replay ``arr`` under ``policy``; deterministic for the same inputs (``cfg.seed`` drives the routing)."""
    t_start = time.perf_counter()
    end = (horizon if horizon is not None else arr.duration) + 1.0
    ring = round(max(*signals.WINDOWS, cfg.rate_window_s) / cfg.scrape_s) + 2
    core = Core(
        arr.times,
        arr.work,
        base_ms=cfg.model.base_ms,
        per_item_ms=cfg.model.per_item_ms,
        max_batch=cfg.model.max_batch,
        routing=cfg.serving.routing,
        queue_max=cfg.serving.queue_max,
        queue_timeout_s=cfg.serving.queue_timeout_ms / 1000.0,
        connections=cfg.serving.connections,
        connection_lifetime_s=cfg.serving.connection_lifetime_s,
        scrape_s=cfg.scrape_s,
        ring=ring,
        backs=[round(w / cfg.scrape_s) for w in (*signals.WINDOWS, cfg.rate_window_s)],
        score_from=cfg.score_from_s,
        end=end,
        seed=cfg.seed,
    )
    for _ in range(max(cfg.initial_replicas, 0)):
        core.add(0.0, ready_now=True)
    res = SimResult(arrivals=arr.times, score_from_s=cfg.score_from_s, initial_replicas=max(cfg.initial_replicas, 0))
    k, shown = 1, 0.0
    while True:
        t = k * cfg.tick_s
        core.run(t)
        if (t > end and core.drained) or t > end + 3600:
            break
        live, ready = core.n_live, core.n_ready
        newest = core.ring_c[(core.scrapes - 1) % ring]
        view = signals.view_from_obs(t, core.obs, float(newest[signals.G_QUEUED]), float(newest[signals.G_EXECUTING]),
                                     ready, live - ready, live)  # fmt: skip
        want = min(max(int(policy(view)), cfg.min_replicas), cfg.max_replicas)
        if want != live:
            if want > live:
                for _ in range(want - live):
                    core.add(t + cfg.cold_start_s)
            else:
                core.remove(t, live - want)
            res.scale_actions += t >= cfg.score_from_s
        res.replicas_t.append((t, core.holding, core.n_ready))
        if progress is not None and time.perf_counter() - shown > 0.2:
            shown = time.perf_counter()
            progress(min(t / end, 1.0), core.arrived)
        k += 1
    res.latencies_ms, res.status = core.lat, core.status
    res.gpu_seconds, res.duration_s = core.gpu_seconds, t
    res.wall_s = time.perf_counter() - t_start
    if progress is not None:
        progress(1.0, core.arrived)
    return res
