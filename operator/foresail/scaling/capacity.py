"""Capacity per replica at the SLO (pure, numpy): from the calibrated batch-latency curve, by replica count.

A Triton replica with dynamic batching serves a batch of ``b`` requests in ``base_ms + per_item_ms x b``
(at most ``max_batch``); when it is free it takes everything queued, up to ``max_batch``. Under Poisson
arrivals at ``rate`` its batch sizes form a Markov chain (the queue at the start of a batch: the leftover
beyond ``max_batch`` plus the arrivals during the previous batch; an idle replica starts a batch of one
with the next arrival). ``replica_quantile_ms`` solves that chain for its stationary law and returns a
quantile of request latency: the rest of the batch running when a request arrives (arrivals are uniform
in time, so long batches catch more of them) plus its own batch, one more batch when it finds
``max_batch`` requests ahead of it. ``capacity_at_slo`` is the highest rate whose p99 meets the SLO
(bisection); within ~2% of what the replay simulator measures for the same replica.

Routing makes the capacity per replica depend on the replica count (``routing_factors``):

* ``round-robin`` and ``least-outstanding``: every replica gets an even share: the single-replica figure;
* ``per-connection``: ``connections`` client connections pinned to replicas at random (kube-proxy with
  keep-alive or gRPC): a replica holding ``K ~ Binomial(C, 1/n)`` of them gets ``K n / C`` times the even
  load; the fleet's late share is the replicas' tails weighted by the requests each gets (``imbalance``:
  by replica count and even load), and its capacity the load at which that reaches 1% (the same 1% a
  p99 SLO allows one replica), so the capacity per replica falls as replicas outnumber connections.

``CapacityTable`` holds the fleet's capacity for every replica count and answers ``replicas_for(rate)``
(vectorized); it ends where one more replica would add less than 5% of one replica's capacity (more
replicas than connections under per-connection routing), so demand beyond what the routing can spread is
planned at that count, not at the maximum. The only online correction is ``ratio``: saturated throughput measured over what the
calibration predicts (``SaturationLearner``), bounded around 1; nothing drifts with p99s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = [
    "Calibration",
    "CapacitySource",
    "CapacityTable",
    "Routing",
    "SaturationLearner",
    "capacity_at_slo",
    "capacity_table",
    "replica_late_share",
    "replica_quantile_ms",
    "routing_factors",
]

FloatArray = npt.NDArray[np.float64]
RATIO_BOUNDS = (0.5, 2.0)  # the learned saturated-throughput ratio stays within these
RATIO_STEP = 0.04  # and counts in these steps
LOADS = np.linspace(0.0, 2.0, 81)  # even loads (times one replica's capacity) the per-connection table covers
MAX_IMBALANCE_N = 1024  # replica counts it covers (beyond: the fleet serves no more than at this count)
PLAN_LATE = 0.01  # per-connection capacity: the even load at which this share of requests is late (a p99)
USEFUL = 0.05  # a replica adding less than this share of one replica's capacity to the fleet is not planned for


class Routing(StrEnum):
    ROUND_ROBIN = "round-robin"
    LEAST_OUTSTANDING = "least-outstanding"
    PER_CONNECTION = "per-connection"


class CapacitySource(StrEnum):
    """Where the capacity per replica comes from (shown in status)."""

    CALIBRATION = "Calibration"  # spec.scaling.calibration: the batch-latency curve
    CAPACITY_PER_REPLICA = "CapacityPerReplica"  # spec.scaling.capacityPerReplicaRps: one flat figure
    NONE = "None"


@dataclass(frozen=True)
class Calibration:
    """What a service's capacity is computed from: a batch-latency curve or one flat figure, and its routing."""

    base_ms: float | None = None
    per_item_ms: float | None = None
    max_batch: int | None = None
    capacity_rps: float | None = None  # the flat alternative (capacity per replica at the SLO, given)
    routing: Routing = Routing.ROUND_ROBIN
    connections: int = 64

    @property
    def source(self) -> CapacitySource:
        if self.base_ms is not None and self.per_item_ms is not None and self.max_batch is not None:
            return CapacitySource.CALIBRATION
        if self.capacity_rps is not None and self.capacity_rps > 0:
            return CapacitySource.CAPACITY_PER_REPLICA
        return CapacitySource.NONE

    def batch_ms(self, b: float, ratio: float = 1.0) -> float:
        assert self.base_ms is not None and self.per_item_ms is not None
        return (self.base_ms + self.per_item_ms * b) / ratio

    def saturated_rps(self, ratio: float = 1.0) -> float | None:
        """Requests/s one replica completes with a full queue (batches of max_batch)."""
        if self.source != CapacitySource.CALIBRATION:
            return None
        assert self.max_batch is not None
        return self.max_batch / self.batch_ms(self.max_batch, ratio) * 1000.0

    def describe(self) -> str:
        route = self.routing.value + (f" over {self.connections} connections" if self.routing == Routing.PER_CONNECTION else "")
        if self.source == CapacitySource.CALIBRATION:
            return f"calibration {self.base_ms:g} + {self.per_item_ms:g} ms x batch (max {self.max_batch}), {route}"
        if self.source == CapacitySource.CAPACITY_PER_REPLICA:
            return f"capacityPerReplicaRps {self.capacity_rps:g}, {route}"
        return "no capacity known"


def _poisson(mu: FloatArray, kmax: int) -> FloatArray:
    """P(Poisson(mu) = k) for k = 0..kmax, one row per mean."""
    k = np.arange(kmax + 1, dtype=np.float64)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, kmax + 1, dtype=np.float64)))])
    mu = np.maximum(mu, 1e-300)[:, None]
    out: FloatArray = np.exp(-mu + k[None, :] * np.log(mu) - log_fact[None, :])
    return out


def _latency_law(rate: float, base_ms: float, per_item_ms: float, max_batch: int) -> tuple[FloatArray, FloatArray]:
    """Request latencies (s, sorted) of one dynamic-batching replica at Poisson ``rate`` and their cumulative share."""
    m = max(int(max_batch), 1)
    if rate <= 0:
        return np.array([(base_ms + per_item_ms) / 1000.0]), np.array([1.0])
    top = 4 * m  # queue sizes tracked (beyond: lumped into the last state)
    states = np.arange(top + 1)
    batch = np.where(states == 0, 1, np.minimum(states, m))
    left = np.where(states == 0, 0, states - batch)
    dur = (base_ms + per_item_ms * batch) / 1000.0  # seconds
    mean = rate * dur
    pa = _poisson(mean, top)
    trans = np.zeros((top + 1, top + 1))
    nxt = np.minimum(left[:, None] + np.arange(top + 1)[None, :], top)
    np.add.at(trans, (np.repeat(states, top + 1), nxt.ravel()), pa.ravel())
    trans[:, top] += np.maximum(0.0, 1.0 - pa.sum(axis=1))
    # stationary law: pi (T - I) = 0, sum(pi) = 1
    a = (trans - np.eye(top + 1)).T
    a[-1, :] = 1.0
    rhs = np.zeros(top + 1)
    rhs[-1] = 1.0
    pi = np.clip(np.linalg.solve(a, rhs), 0.0, None)
    pi /= pi.sum()
    # a tagged request arriving at u x dur of a batch in state s; A ~ Poisson(mean) others arrive in that batch
    kmax = int(mean.max() + 8.0 * math.sqrt(mean.max() + 1.0) + 5)
    us = (np.arange(16) + 0.5) / 16
    pk = _poisson(mean, kmax)  # (S, K)
    queue_next = left[:, None] + 1 + np.arange(kmax + 1)[None, :]  # (S, K): queue when the next batch starts
    own = np.minimum(queue_next, m)
    p_first = np.clip((m - left[:, None]) / (1.0 + np.arange(kmax + 1)[None, :]), 0.0, 1.0)  # it makes the next batch
    t_own = (base_ms + per_item_ms * own) / 1000.0
    t_late = (2 * base_ms + per_item_ms * (m + np.minimum(np.maximum(queue_next - m, 1), m))) / 1000.0
    rest = (1.0 - us)[None, :, None] * dur[:, None, None]
    weight = np.broadcast_to((pi * mean)[:, None, None] * pk[:, None, :] / len(us), rest.shape[:2] + pk.shape[1:])  # by (s, u, k)
    lat = np.concatenate([(rest + t_own[:, None, :]).ravel(), (rest + t_late[:, None, :]).ravel(), [dur[0]]])
    w = np.concatenate([(weight * p_first[:, None, :]).ravel(), (weight * (1 - p_first[:, None, :])).ravel(), [pi[0]]])
    order = np.argsort(lat, kind="stable")
    cum = np.cumsum(w[order])
    return lat[order], cum / cum[-1]


def replica_quantile_ms(rate: float, base_ms: float, per_item_ms: float, max_batch: int, q: float = 0.99) -> float:
    """The ``q`` quantile of request latency (ms) of one dynamic-batching replica at Poisson ``rate`` (rps)."""
    lat, cum = _latency_law(rate, base_ms, per_item_ms, max_batch)
    return float(lat[min(int(np.searchsorted(cum, q)), len(lat) - 1)] * 1000.0)


def replica_late_share(rate: float, base_ms: float, per_item_ms: float, max_batch: int, slo_ms: float) -> float:
    """Share of one replica's requests over ``slo_ms`` at Poisson ``rate`` (below saturation)."""
    lat, cum = _latency_law(rate, base_ms, per_item_ms, max_batch)
    k = int(np.searchsorted(lat, slo_ms / 1000.0, side="right"))
    return float(1.0 - cum[k - 1]) if k > 0 else 1.0


@lru_cache(maxsize=256)
def capacity_at_slo(base_ms: float, per_item_ms: float, max_batch: int, slo_ms: float) -> float:
    """Highest Poisson rate (rps) at which one replica's p99 meets ``slo_ms``; 0.0 when even one request misses."""
    if base_ms + per_item_ms > slo_ms:
        return 0.0
    lo, hi = 0.0, max_batch / (base_ms + per_item_ms * max_batch) * 1000.0
    for _ in range(18):
        mid = (lo + hi) / 2
        if replica_quantile_ms(mid, base_ms, per_item_ms, max_batch) <= slo_ms:
            lo = mid
        else:
            hi = mid
    return lo


def _binomial(n_trials: int, p: float) -> FloatArray:
    k = np.arange(n_trials + 1, dtype=np.float64)
    log_c = np.array([math.lgamma(n_trials + 1) - math.lgamma(i + 1) - math.lgamma(n_trials - i + 1) for i in range(n_trials + 1)])
    if p >= 1.0:
        out = np.zeros(n_trials + 1)
        out[-1] = 1.0
        return out
    pmf: FloatArray = np.exp(log_c + k * math.log(p) + (n_trials - k) * math.log1p(-p))
    return pmf


def _tail(y: FloatArray, tail_x: FloatArray, tail_y: FloatArray) -> FloatArray:
    """One replica's late share at load ``y`` (times its capacity): the model's tail, all late past saturation."""
    out: FloatArray = np.where(y > tail_x[-1], 1.0, np.interp(y, tail_x, tail_y, left=0.0, right=float(tail_y[-1])))
    return out


@lru_cache(maxsize=32)
def _imbalance(connections: int, n_max: int, tail_x: tuple[float, ...], tail_y: tuple[float, ...]) -> FloatArray:
    """Late share of a fleet of n = 1..n_max replicas at even load ``LOADS`` (rate / (n x one replica's
    capacity)) when ``connections`` connections are pinned to replicas at random: a replica holding k of them
    (Binomial(C, 1/n)) gets k n / C times the even load."""
    c = max(connections, 1)
    tx, ty = np.array(tail_x), np.array(tail_y)
    out = np.zeros((n_max, len(LOADS)))
    for n in range(1, n_max + 1):
        pmf = _binomial(c, 1.0 / n)
        k = np.flatnonzero(pmf > 1e-12)
        share = pmf[k] * k * n / c  # requests on replicas with k connections
        out[n - 1] = (share[None, :] * _tail(LOADS[:, None] * k[None, :] * n / c, tx, ty)).sum(axis=1)
    return out


def _imbalance_table(connections: int, n_max: int, tail_x: FloatArray | None, tail_y: FloatArray | None) -> FloatArray:
    tx = (1.0,) if tail_x is None else tuple(float(x) for x in tail_x)
    ty = (0.0,) if tail_y is None else tuple(float(y) for y in tail_y)
    return _imbalance(connections, min(max(n_max, 1), MAX_IMBALANCE_N), tx, ty)


def routing_factors(
    routing: Routing, connections: int, n_max: int, tail_x: FloatArray | None = None, tail_y: FloatArray | None = None
) -> FloatArray:
    """Capacity per replica at n = 1..n_max replicas as a share of one replica's, under ``routing``: for
    per-connection routing the even load at which 1% of the fleet's requests are late (the same 1% a p99
    SLO allows one replica), with the replica's tail (``tail_x``, ``tail_y``; a hard limit at 1 without)."""
    n_max = max(n_max, 1)
    if routing != Routing.PER_CONNECTION:
        return np.ones(n_max)
    late = _imbalance_table(connections, n_max, tail_x, tail_y)
    out = np.empty(len(late))
    for i, row in enumerate(late):
        j = int(np.searchsorted(row, PLAN_LATE))  # the row grows with the load
        out[i] = LOADS[-1] if j >= len(LOADS) else LOADS[0] if j == 0 else float(np.interp(PLAN_LATE, row[j - 1 : j + 1], LOADS[j - 1 : j + 1]))
    if n_max > len(out):  # beyond the table the fleet serves what it did at its last count
        out = np.concatenate([out, out[-1] * len(out) / np.arange(len(out) + 1, n_max + 1)])
    return np.minimum(out, 1.0)


@lru_cache(maxsize=64)
def _late_curve(base_ms: float, per_item_ms: float, max_batch: int, slo_ms: float, single: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    sat = max_batch / (base_ms + per_item_ms * max_batch) * 1000.0
    xs = np.linspace(0.5, sat / single, 16)
    return tuple(xs.tolist()), tuple(replica_late_share(x * single, base_ms, per_item_ms, max_batch, slo_ms) for x in xs)


@dataclass(frozen=True)
class CapacityTable:
    """Capacity (rps at the SLO) by replica count: ``per_replica[n - 1]`` and ``fleet[n - 1]`` for n replicas,
    and how many requests run late when the load is ``x`` times the capacity (``late_share``)."""

    per_replica: FloatArray
    fleet: FloatArray  # non-decreasing: more replicas never serve less
    late_x: FloatArray = field(default_factory=lambda: np.array([1.0]))  # load / capacity at the SLO
    late_y: FloatArray = field(default_factory=lambda: np.array([0.0]))  # share late at that load (below saturation)
    imbalance: FloatArray | None = None  # per-connection routing: late share by replica count and even load

    @property
    def single(self) -> float:
        return float(self.per_replica[0])

    @property
    def saturation(self) -> float:
        """Load (times the capacity at the SLO) beyond which the queue grows."""
        return float(self.late_x[-1])

    def at(self, n: int) -> float:
        """Capacity per replica with ``n`` replicas (n >= 1)."""
        return float(self.per_replica[min(max(n, 1), len(self.per_replica)) - 1])

    def fleet_rps(self, n: npt.NDArray[np.int64] | int) -> FloatArray:
        """What ``n`` replicas serve within the SLO (0 for none), vectorized."""
        idx = np.clip(np.asarray(n, dtype=np.int64), 0, len(self.fleet))
        padded = np.concatenate([[0.0], self.fleet])
        out: FloatArray = padded[idx]
        return out

    def replicas_for(self, rate: FloatArray | float) -> npt.NDArray[np.int64]:
        """Fewest replicas that serve ``rate`` within the SLO (0 for no load; capped at the table's size)."""
        r = np.asarray(rate, dtype=np.float64)
        n = np.searchsorted(self.fleet, r * (1 - 1e-9), side="left") + 1
        out: npt.NDArray[np.int64] = np.where(r > 0, np.minimum(n, len(self.fleet)), 0).astype(np.int64)
        return out

    def late_share(
        self, load: FloatArray, settled: FloatArray, seconds: FloatArray, slo_s: float, replicas: npt.NDArray[np.int64] | None = None
    ) -> FloatArray:
        """Share of requests late in an interval of ``seconds`` at ``load`` times the fleet's capacity at the SLO
        (with ``replicas`` ready): the replica model's stationary tail at the ``settled`` load (the load averaged
        over the time the tail takes to build, see ``scaling.budget``), spread over the replicas as the routing
        spreads it; beyond saturation the queue grows and every request arriving once its wait passes the SLO
        is late."""
        x = np.asarray(load, dtype=np.float64)
        if self.imbalance is not None and replicas is not None:
            n = np.clip(np.asarray(replicas, dtype=np.int64), 1, len(self.imbalance))
            even = np.asarray(settled, dtype=np.float64) * self.per_replica[np.minimum(n, len(self.per_replica)) - 1] / self.single
            pos = np.clip(even / LOADS[1], 0.0, len(LOADS) - 1.0)
            lo = np.minimum(pos.astype(np.int64), len(LOADS) - 2)
            rows = self.imbalance[n - 1]
            frac = pos - lo
            tail = np.take_along_axis(rows, lo[..., None], -1)[..., 0] * (1 - frac) + np.take_along_axis(rows, lo[..., None] + 1, -1)[..., 0] * frac
        else:
            tail = np.interp(np.asarray(settled, dtype=np.float64), self.late_x, self.late_y, left=0.0, right=float(self.late_y[-1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            queued = np.clip(1.0 - slo_s / ((x / self.saturation - 1.0) * seconds), 0.0, 1.0)
        out: FloatArray = np.where(x > self.saturation, np.maximum(tail, queued), tail)
        return out


def capacity_table(cal: Calibration, slo_ms: float, n_max: int, ratio: float = 1.0) -> CapacityTable | None:
    """The table for ``cal`` at the SLO, up to ``n_max`` replicas; None when no capacity is known. With only a
    flat capacity, load beyond it is late as queued work (no tail model). The ratio counts in steps of
    ``RATIO_STEP`` (tables are cached by it)."""
    return _table(cal, float(slo_ms), int(n_max), round(round(ratio / RATIO_STEP) * RATIO_STEP, 4))


@lru_cache(maxsize=64)
def _table(cal: Calibration, slo_ms: float, n_max: int, r: float) -> CapacityTable | None:
    xs: tuple[float, ...] = (1.0,)
    ys: tuple[float, ...] = (0.0,)
    if cal.source == CapacitySource.CALIBRATION:
        assert cal.base_ms is not None and cal.per_item_ms is not None and cal.max_batch is not None
        base, per = round(cal.base_ms / r, 4), round(cal.per_item_ms / r, 4)
        single = capacity_at_slo(base, per, cal.max_batch, slo_ms)
        if single > 0:
            xs, ys = _late_curve(base, per, cal.max_batch, slo_ms, single)
    elif cal.source == CapacitySource.CAPACITY_PER_REPLICA:
        assert cal.capacity_rps is not None
        single = cal.capacity_rps
    else:
        return None
    if single <= 0:
        return None
    tail_x, tail_y = np.array(xs), np.array(ys)
    per_replica = single * routing_factors(cal.routing, cal.connections, n_max, tail_x, tail_y)
    fleet = np.maximum.accumulate(per_replica * np.arange(1, len(per_replica) + 1))
    # a replica that adds less than USEFUL of one replica's capacity is not worth its GPU: the table ends there
    gain = np.diff(fleet, prepend=0.0)
    useless = np.flatnonzero(gain < USEFUL * single)
    if len(useless):
        per_replica, fleet = per_replica[: max(int(useless[0]), 1)], fleet[: max(int(useless[0]), 1)]
    imbalance = _imbalance_table(cal.connections, n_max, tail_x, tail_y) if cal.routing == Routing.PER_CONNECTION else None
    return CapacityTable(per_replica, fleet, tail_x, tail_y, imbalance)


@dataclass
class SaturationLearner:
    """Saturated throughput measured over what the calibration predicts, learned only while saturated.

    Saturated: over the whole 2 s window the same replicas were ready, the work in flight grew, and it was
    at least two full batches per ready replica at the window's start and at its end (a backlog left on
    a few replicas while new ones idle drains, so it does not count). Then completions per ready replica
    over the window, over the calibrated throughput with full batches, is a measurement of the ratio; it
    moves the estimate both ways (exponential average, weight ``learn`` per measurement), within
    ``RATIO_BOUNDS``."""

    ratio: float = 1.0
    learn: float = 0.2
    samples: int = 0

    def observe(self, cal: Calibration, ready: int, ready_before: int | None, in_flight: float, w2_growth_rps: float,
                w2_completion_rps: float) -> bool:  # fmt: skip
        sat = cal.saturated_rps()
        if sat is None or ready <= 0 or ready != ready_before or cal.max_batch is None:
            return False
        full = 2.0 * cal.max_batch * ready
        if w2_growth_rps <= 0 or in_flight - 2.0 * w2_growth_rps < full or w2_completion_rps <= 0:
            return False
        measured = w2_completion_rps / ready / sat
        self.ratio = min(max(self.ratio + self.learn * (measured - self.ratio), RATIO_BOUNDS[0]), RATIO_BOUNDS[1])
        self.samples += 1
        return True
