"""Scaling policies for the what-if replay: Foresail (the operator's own ``decide``), baselines and oracles.

Each causal policy has one main knob (``KNOBS``), swept for the frontiers. Baselines follow the published
defaults of each system, driven by the per-replica arrival rate against a target share of the replica's
capacity at the SLO (the closest common signal to CPU utilization for HPA, an external metric for KEDA
and concurrency for Knative); the target (default 70%) is their knob:

* HPA-like: 15 s sync, the 30 s rate, 10% tolerance, 300 s scale-down stabilization, scale-up at most
  max(4 pods, 100%) per 15 s;
* KEDA-like: the same HPA behind a 30 s polling interval (the metric HPA sees is up to 30 s old);
* Knative-KPA-like: 2 s tick, 2 s rate samples averaged over a 60 s stable and a 6 s panic window, panic at
  200% of ready capacity (no scale-down while panicking), scale-down at most by half per tick;
* static: a fixed share (the knob, default 1.0) of the replicas the busiest 10 s need, all the time;
* Foresail: ``scaling.decide`` with the service's ScalingPolicy, fed the simulator's fleet signals and the
  replica model as its calibration (routing included); the knob is ``FORESAIL_KNOB`` of the resolved
  behavior: the error budget (% of requests allowed late);
* oracles (``replay.oracle``): perfect foresight.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from foresail.api.scalingpolicy import ResolvedBehavior
from foresail.replay.oracle import oracle_policy, required_replicas
from foresail.replay.sim import PolicyView
from foresail.replay.traces import Arrivals
from foresail.replay.windows import TimeWindow
from foresail.scaling.capacity import Calibration
from foresail.scaling.decide import DecisionState, Observation, ServiceSettings, decide
from foresail.scaling.signals import FleetSignals, MetricsSource

__all__ = [
    "BASELINE_TICKS",
    "CAUSAL",
    "FORESAIL_KNOB",
    "KNOBS",
    "Knob",
    "Policy",
    "foresail_policy",
    "hpa_policy",
    "initial_replicas",
    "keda_policy",
    "kpa_policy",
    "make",
    "observation",
    "oracle_policy",
    "static_policy",
    "static_replicas",
]

Policy = Callable[[PolicyView], int]
BASELINE_TICKS = {"hpa": 15.0, "keda": 15.0, "kpa": 2.0, "static": 60.0, "oracle": 1.0}
TARGET = 0.7  # the baselines' default target utilization, and the utilization a replayed system starts at
FORESAIL_KNOB = "error_budget_percent"
CAUSAL = ("foresail", "hpa", "keda", "kpa", "static")


@dataclass(frozen=True)
class Knob:
    """A policy's main setting: what it means, its default and the values a frontier sweeps."""

    meaning: str
    default: float | None  # None: the value the policy's own settings carry
    grid: tuple[float, ...] = field(default=())


_TARGETS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
KNOBS = {
    "foresail": Knob("error budget, % of requests", None, (0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.0, 5.0)),
    "hpa": Knob("target utilization", TARGET, _TARGETS),
    "keda": Knob("target utilization", TARGET, _TARGETS),
    "kpa": Knob("target utilization", TARGET, _TARGETS),
    "static": Knob("replicas as a share of the busiest 10 s' need", 1.0, (0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0)),
}


def initial_replicas(rate_rps: float, capacity_rps: float) -> int:
    """Replicas a running system has for ``rate_rps`` (at the baselines' default target utilization)."""
    return max(1, math.ceil(rate_rps / (capacity_rps * TARGET)))


def foresail_policy(
    behavior: ResolvedBehavior,
    calibration: Calibration,
    slo_ms: float,
    cold_start_s: float,
    min_r: int,
    max_r: int,
    knob: float | None = None,
) -> Policy:
    """The operator's own decision code; ``knob`` overrides ``FORESAIL_KNOB`` of the behavior."""
    if knob is not None:
        behavior = behavior.model_copy(update={FORESAIL_KNOB: knob})
    state = DecisionState()
    settings = ServiceSettings(behavior=behavior, min_replicas=min_r, max_replicas=max_r, slo_p99_ms=slo_ms)

    def policy(v: PolicyView) -> int:
        return decide(settings, observation(v, calibration, cold_start_s), state, v.now).replicas

    return policy


def observation(v: PolicyView, calibration: Calibration, cold_start_s: float) -> Observation:
    """What the decision sees of the simulated fleet at a tick."""
    sig = FleetSignals(v.windows, queued=v.queue, in_flight=v.in_flight, source=MetricsSource.SIMULATOR)
    return Observation(sig, v.ready, v.starting, v.current, cold_start_s, calibration)


@dataclass
class _Hpa:
    capacity_rps: float
    target: float
    window: TimeWindow = field(default_factory=lambda: TimeWindow(300))

    def step(self, v: PolicyView, rate: float) -> int:
        current = max(v.current, 1)
        per = rate / max(v.ready, 1)
        ratio = per / (self.capacity_rps * self.target)
        want = current if abs(ratio - 1) <= 0.1 else math.ceil(current * ratio)
        want = min(want, max(current + 4, 2 * current))
        self.window.add(v.now, float(want))
        if want < current:
            want = min(current, int(self.window.maximum(v.now) or want))
        return max(want, 1)


def hpa_policy(capacity_rps: float, target: float = TARGET) -> Policy:
    hpa = _Hpa(capacity_rps, target)
    return lambda v: hpa.step(v, v.arrival_rps)


def keda_policy(capacity_rps: float, target: float = TARGET, poll_s: float = 30.0) -> Policy:
    hpa = _Hpa(capacity_rps, target)
    polled: list[float] = [0.0, -math.inf]  # value, time

    def policy(v: PolicyView) -> int:
        if v.now - polled[1] >= poll_s:
            polled[0], polled[1] = v.arrival_rps, v.now
        return hpa.step(v, polled[0])

    return policy


def kpa_policy(capacity_rps: float, target: float = TARGET) -> Policy:
    stable, panic = TimeWindow(60), TimeWindow(6)
    panic_until = [-math.inf]
    per = capacity_rps * target

    def policy(v: PolicyView) -> int:
        rate = v.window(2.0).arrival_rps if v.windows else v.arrival_rps
        stable.add(v.now, rate)
        panic.add(v.now, rate)
        s = math.ceil((stable.average(v.now) or 0.0) / per)
        p = math.ceil((panic.average(v.now) or 0.0) / per)
        if p >= 2.0 * max(v.ready, 1):
            panic_until[0] = v.now + 60
        if v.now < panic_until[0]:
            return max(s, p, v.current)
        want = max(s, 1)
        return max(want, math.floor(v.current / 2))  # max scale-down rate 2

    return policy


def static_replicas(arr: Arrivals, capacity_rps: float, share: float = 1.0) -> int:
    """``share`` of the replicas the busiest 10 s of ``arr`` need (at least 1)."""
    peak = int(required_replicas(arr, capacity_rps, 10.0).max(initial=1))
    return max(1, math.ceil(share * peak - 1e-9))


def static_policy(arr: Arrivals, capacity_rps: float, share: float = 1.0) -> Policy:
    n = static_replicas(arr, capacity_rps, share)
    return lambda v: n


def make(
    name: str,
    *,
    arrivals: Arrivals,
    capacity_rps: float,
    calibration: Calibration,
    slo_ms: float,
    cold_start_s: float,
    behavior: ResolvedBehavior,
    min_replicas: int,
    max_replicas: int,
    knob: float | None = None,
) -> tuple[Policy, float]:
    """A policy by name with its knob (``None``: its default), and its tick in seconds."""
    k = KNOBS[name].default if name in KNOBS and knob is None else knob
    if name == "foresail":
        return foresail_policy(
            behavior, calibration, slo_ms, cold_start_s, min_replicas, max_replicas, k
        ), behavior.tick_seconds
    if name in ("hpa", "keda", "kpa"):
        assert k is not None
        factory = {"hpa": hpa_policy, "keda": keda_policy, "kpa": kpa_policy}[name]
        return factory(capacity_rps, k), BASELINE_TICKS[name]
    if name == "static":
        return static_policy(arrivals, capacity_rps, k if k is not None else 1.0), BASELINE_TICKS["static"]
    if name == "oracle":
        return oracle_policy(arrivals, capacity_rps, cold_start_s), BASELINE_TICKS["oracle"]
    raise ValueError(f"unknown policy {name!r}; known: {[*CAUSAL, 'oracle']}")
