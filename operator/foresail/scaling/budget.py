"""Headroom from an error budget (pure, numpy): replay the service's own recent history through the decision.

``History`` keeps, per tick, the requests/s that arrived since the previous tick, the 2 s arrivals at a
burst onset, the rate the fast path otherwise sized for and the rate it re-anchored the forecasters on
(bounded: ``history_s`` and ``KEEP`` samples).

``headroom`` chooses what the decision does with its forecast and its bursts: the forecaster's time
constant, the multiplier ``m`` over the forecast, the idle hold (the rent-or-buy rule's, or 2 or 4 times
it) and the rate a burst onset is sized for (the policy's quantile of past burst peaks, or a higher
one), as the combination that, had the decision used it over that history, would have left at most the
error budget of the requests late for the fewest replica-seconds. Bursty services thus buy the capacity that covers their bursts and keep it
through their gaps only when the budget needs it; smooth ones buy a multiplier.

The replay is a fluid model of the decision itself: each tick wants the replicas that serve ``m x`` its
forecast (through the capacity table), or what the fast path wanted (at an onset: the burst level); the
scale-down rule holds the most wanted for the hold; replicas added are ready a cold start later, replicas
removed are gone at once; in each interval the share of requests late at that load comes from the
capacity table: below saturation the replica model's stationary latency tail at the load averaged over
the last ten SLOs (the tail takes some twenty batches to build after a change of load: without that
average a 2 s spike would count as if it lasted; checked against the simulator, where it gives 0.33%
late for a measured 0.29% on the conversation trace and 0.01% for 0.02% on the code trace, instead of
1.3% and 0.5%); beyond saturation the queue grows and requests arriving once its wait passes the SLO are
late. The forecast it uses for each interval is the one made
``lead`` seconds before it, so the headroom is measured at the horizon the decision plans for
(conformal, horizon-specific), not extrapolated from one-step errors. Headroom is bought up to twice the
forecast (``GRID``: 1-2x, 4% steps); lateness that the most of everything leaves (a burst from quiet
beyond any capacity held, a step, before any replica can start) is the ``floor``, and the budget is spent
on top of it.

``BudgetLoop`` is the outer loop. The signals cannot count late requests (Triton reports latency
quantiles, not a histogram), but they show when the SLO was missed: a window whose p99 is over it or that
rejected requests. The model says when it should have been: load beyond the capacity at the SLO of the
replicas that were actually ready, averaged as the replay averages it (by definition of that capacity,
where the p99 passes the SLO). The loop
compares the two, weighted by requests and exponentially forgotten over ``memory_s``: where the signals
show misses more often than the model, the model is optimistic for this service (uneven routing, a replica
slower than its calibration, arrivals burstier than the windows show), so the late share the replay
predicts is too, and the budget the headroom is sized with shrinks by that ratio; where less often, it
grows. The factor is that ratio (within [1/4, 4]); differences smaller than an eighth of the budget are
not told apart from noise.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from foresail.scaling.capacity import CapacityTable
from foresail.scaling.forecast import forecasts

__all__ = ["GRID", "LOAD_CAP", "BudgetLoop", "Choice", "Headroom", "History", "Replay", "headroom", "replay"]

KEEP = 1024
GRID = np.geomspace(1.0, 2.0, 18)  # multipliers tried (4% steps)
MIN_SAMPLES = 12
LOOP_BOUNDS = (0.25, 4.0)
SETTLE_SLOS = 10.0  # the latency tail builds up over about ten SLOs (some twenty batches) after a change of load
LOAD_CAP = 50.0  # load of an interval with no replica ready (every request late)
PREFER = 0.02  # a later choice (a longer time constant, hold or burst level) must be this much cheaper to win
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def _floats() -> array[float]:
    return array("d")


@dataclass
class History:
    """Columns of C doubles, not lists of Python floats: ``KEEP`` samples of five columns are 40 KB per
    service instead of 160 KB (at 2,000 services, 80 MB instead of 330 MB of the operator's memory)."""

    t: array[float] = field(default_factory=_floats)
    rate: array[float] = field(default_factory=_floats)  # arrivals since the previous sample, rps
    onset: array[float] = field(default_factory=_floats)  # 2 s arrivals at a burst onset (0: none)
    fast: array[float] = field(default_factory=_floats)  # rps the fast path sized for otherwise (0: none)
    shift: array[float] = field(default_factory=_floats)  # rate the fast path re-anchored the forecasters on (0: none)

    def add(self, t: float, rate: float, onset: float, fast: float, shift: float, keep_s: float) -> None:
        if self.t and t <= self.t[-1]:  # a clock step back: the history no longer lines up
            self.t, self.rate, self.onset, self.fast, self.shift = _floats(), _floats(), _floats(), _floats(), _floats()
        self.t.append(t)
        self.rate.append(rate)
        self.onset.append(onset)
        self.fast.append(fast)
        self.shift.append(shift)
        cut = next((i for i, x in enumerate(self.t) if x > t - keep_s), len(self.t))
        cut = max(cut, len(self.t) - KEEP)
        if cut:
            del self.t[:cut], self.rate[:cut], self.onset[:cut], self.fast[:cut], self.shift[:cut]

    def prepend(self, points: list[tuple[float, float]], keep_s: float) -> None:
        """Older arrival rates (a history fetched after live samples began) before the first sample, within
        ``keep_s`` of the last one and ``KEEP`` samples in all."""
        first = self.t[0] if self.t else math.inf
        newest = self.t[-1] if self.t else max((t for t, _ in points), default=0.0)
        older = sorted({t: r for t, r in points if newest - keep_s < t < first and math.isfinite(r) and r >= 0}.items())
        older = older[max(0, len(older) - (KEEP - len(self.t))) :]
        self.t[:0] = array("d", [t for t, _ in older])
        self.rate[:0] = array("d", [r for _, r in older])
        for column in (self.onset, self.fast, self.shift):
            column[:0] = array("d", [0.0]) * len(older)

    def __len__(self) -> int:
        return len(self.t)

    @property
    def span_s(self) -> float:
        return self.t[-1] - self.t[0] if len(self.t) > 1 else 0.0


@dataclass(frozen=True)
class Choice:
    """What the decision replayed with: a forecaster, a hold and a burst level (rps; 0: onsets sized for their
    2 s arrivals)."""

    tau_s: float
    hold_s: float
    burst_rps: float


@dataclass(frozen=True)
class Headroom:
    multiplier: float
    tau_s: float  # the forecaster chosen with it
    hold_s: float  # the idle hold chosen with it (at least the rule's)
    burst_rps: float  # the rate a burst onset is sized for (0: its own 2 s arrivals)
    late_share: float  # the replay's late share with them
    floor: float  # the replay's late share with the most of everything: what they cannot prevent
    samples: int
    span_s: float


@dataclass(frozen=True)
class Replay:
    """The replay of one choice over every multiplier: late share and replica-seconds held, per multiplier."""

    late: Floats
    cost: Floats


def _sliding_max(x: Ints, width: int) -> Ints:
    """``out[..., i] = max(x[..., i - width + 1 : i + 1])`` (fewer at the start), by doubling spans."""
    out = x.copy()
    span = 1
    while span < width:
        k = min(span, width - span)
        out[..., k:] = np.maximum(out[..., k:], out[..., :-k])
        span += k
    return out


def replay(
    h: History, table: CapacityTable, multipliers: Floats, fc: Floats, lead_s: float, cold_s: float, choice: Choice, slo_s: float
) -> Replay | None:
    """The decision replayed over the history with forecasts ``fc`` (made at each sample for a lead later), each
    multiplier and ``choice``; None while the history is too short."""
    t = np.asarray(h.t)
    if len(t) < MIN_SAMPLES or t[-1] - t[0] <= lead_s:
        return None
    rate, onset, fast = (np.asarray(x) for x in (h.rate, h.onset, h.fast))
    step = float(np.median(np.diff(t)))
    if step <= 0:
        return None
    burst = np.where(onset > 0, np.maximum(onset, choice.burst_rps), 0.0)
    extra = table.replicas_for(np.maximum(fast, burst))
    want = np.maximum(table.replicas_for(multipliers[:, None] * fc[None, :]), extra[None, :])
    decided = _sliding_max(want, round(choice.hold_s / step) + 1)
    cold_back = min(max(round(cold_s / step), 0), len(t))
    before = np.concatenate([np.zeros((len(multipliers), cold_back), np.int64), decided[:, : len(t) - cold_back]], axis=1)
    ready = np.minimum(decided, before)  # additions wait a cold start, removals do not
    # interval i (t[i-1], t[i]] is served by the replicas ready at t[i-1]; it is scored once a decision
    # for it could have been made a lead earlier
    first = max(int(np.searchsorted(t, t[0] + lead_s, side="left")), 1)
    dt = np.diff(t)[first - 1 :]
    cost = (decided[:, first - 1 : -1] * dt).sum(axis=1).astype(np.float64)
    arrived = rate[first:] * dt
    total = float(arrived.sum())
    if total <= 0:
        return Replay(np.zeros(len(multipliers)), cost)
    serving = ready[:, first - 1 : -1]
    cap = table.fleet_rps(serving)
    load = np.where(cap > 0, rate[first:] / np.maximum(cap, 1e-9), LOAD_CAP)
    frac = table.late_share(load, _settled(load, step, SETTLE_SLOS * slo_s), np.broadcast_to(dt, load.shape), slo_s, serving)
    return Replay((frac * arrived).sum(axis=1) / total, cost)


def _settled(load: Floats, step: float, tau: float) -> Floats:
    """The load averaged exponentially over ``tau`` seconds before each interval (a truncated kernel of
    five time constants on the median tick)."""
    a = math.exp(-step / max(tau, 1e-9))
    n = max(1, min(int(5 * tau / step) + 1, load.shape[-1]))
    weights = (1 - a) * a ** np.arange(n)
    weights /= weights.sum()
    out: Floats = load * weights[0]
    for k in range(1, n):
        out[..., k:] += load[..., :-k] * weights[k]
        out[..., :k] += load[..., :1] * weights[k]  # before the history: its first load
    return out


def headroom(
    h: History, table: CapacityTable, budget: float, lead_s: float, cold_s: float, choices: Sequence[Choice], slo_s: float,
    trend: bool = True,
) -> Headroom | None:
    """The cheapest (multiplier of ``GRID``, choice) whose replay leaves at most ``budget`` (a share) of requests
    late beyond the floor (the least late share of any choice at the largest multiplier); ``choices`` come
    in order of preference (the most responsive first): a later one wins only if ``PREFER`` cheaper. None
    while the history is too short to say."""
    if len(h) < MIN_SAMPLES:
        return None
    fcs = {tau: forecasts(h.t, h.rate, h.shift, tau, lead_s, trend) for tau in {c.tau_s for c in choices}}
    done = [(c, r) for c in choices if (r := replay(h, table, GRID, fcs[c.tau_s], lead_s, cold_s, c, slo_s)) is not None]
    if not done:
        return None
    floor = min(float(r.late[-1]) for _, r in done)
    best: tuple[float, Choice, int, float] | None = None  # cost, choice, multiplier index, late
    for c, r in done:
        ok = np.flatnonzero(r.late <= floor + budget)
        if len(ok):
            k = int(ok[0])
            if best is None or r.cost[k] < best[0] * (1.0 - PREFER):
                best = (float(r.cost[k]), c, k, float(r.late[k]))
    assert best is not None  # the choice that set the floor meets it
    _, c, k, late = best
    return Headroom(float(GRID[k]), c.tau_s, c.hold_s, c.burst_rps, late, floor, len(h), h.span_s)


@dataclass
class BudgetLoop:
    """The budget the replay uses, as a factor of the policy's, nudged by how often the signals show the SLO
    missed against how often the model says it should have been, for the replicas that were ready."""

    factor: float = 1.0
    late: float = 0.0  # requests in windows the signals show missing the SLO, forgotten over ``memory_s``
    predicted: float = 0.0  # requests in intervals the model says miss it
    arrived: float = 0.0
    settled: float = 0.0  # the load on the ready replicas, averaged as the replay does
    last_t: float | None = None

    def observe(
        self, now: float, arrived: float, missed: bool | None, load: float, slo_s: float, budget: float, memory_s: float
    ) -> None:
        """One interval: requests that ``arrived``, whether the signals show the SLO ``missed``, and the ``load``
        on the replicas that were ready (times their capacity at the SLO). ``missed`` None: unknown (no p99
        measured yet), the interval's requests count neither as late nor as on time (the memory still decays)."""
        if missed is None:
            arrived, missed = 0.0, False
        dt = 0.0 if self.last_t is None else max(now - self.last_t, 0.0)
        self.last_t = now
        self.settled += (1.0 - math.exp(-dt / (SETTLE_SLOS * slo_s))) * (min(load, LOAD_CAP) - self.settled) if dt > 0 else 0.0
        keep = math.exp(-dt / max(memory_s, 1.0))
        self.late = self.late * keep + arrived * missed
        self.predicted = self.predicted * keep + arrived * (self.settled > 1.0)
        self.arrived = self.arrived * keep + arrived
        noise = budget / 8.0 * self.arrived
        if self.arrived > 0:
            ratio = (self.predicted + noise) / (self.late + noise)
            self.factor = min(max(ratio, LOOP_BOUNDS[0]), LOOP_BOUNDS[1])

    @property
    def measured(self) -> float | None:
        """Share of requests in windows that missed the SLO."""
        return self.late / self.arrived if self.arrived > 0 else None

    def to_dict(self) -> dict[str, float | None]:
        return {"factor": round(self.factor, 4), "late": round(self.late, 2), "predicted": round(self.predicted, 2),
                "arrived": round(self.arrived, 1), "settled": round(self.settled, 4), "time": self.last_t}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> BudgetLoop:
        def num(key: str, default: float) -> float:
            v = data.get(key)
            return float(v) if isinstance(v, int | float) and math.isfinite(v) and v >= 0 else default

        t = data.get("time")
        factor = min(max(num("factor", 1.0), LOOP_BOUNDS[0]), LOOP_BOUNDS[1])
        return cls(factor, num("late", 0.0), num("predicted", 0.0), num("arrived", 0.0), num("settled", 0.0),
                   float(t) if isinstance(t, int | float) else None)  # fmt: skip
