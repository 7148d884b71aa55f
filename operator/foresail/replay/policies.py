"""Scaling policies for the what-if replay: Foresail (the operator's own ``decide``), baselines and the oracle.

Baselines follow the published defaults of each system, driven by the per-replica arrival rate against
a target of 70% of the replica's capacity at the SLO (the closest common signal to CPU utilization for
HPA, an external metric for KEDA and concurrency for Knative):

* HPA-like: 15 s sync, 10% tolerance, 300 s scale-down stabilization, scale-up at most max(4 pods, 100%)
  per 15 s;
* KEDA-like: the same HPA behind a 30 s polling interval (the metric HPA sees is up to 30 s old);
* Knative-KPA-like: 2 s tick, 60 s stable and 6 s panic windows, panic at 200% of ready capacity (no
  scale-down while panicking), target 70%;
* static: the replicas the peak needs, all the time;
* oracle: perfect foresight, the fewest replicas that meet the SLO given the same cold start (the lower
  bound on cost).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from foresail.api.scalingpolicy import ResolvedBehavior
from foresail.replay.sim import PolicyView
from foresail.replay.traces import Arrivals
from foresail.scaling.decide import DecisionState, Observation, ServiceSettings, decide
from foresail.scaling.windows import TimeWindow

__all__ = ["BASELINE_TICKS", "foresail_policy", "hpa_policy", "initial_replicas", "keda_policy", "kpa_policy", "oracle_policy", "static_policy"]

Policy = Callable[[PolicyView], int]
BASELINE_TICKS = {"hpa": 15.0, "keda": 15.0, "kpa": 2.0, "static": 60.0, "oracle": 1.0}
TARGET = 0.7  # the baselines' target utilization, and the utilization a replayed system starts at


def initial_replicas(rate_rps: float, capacity_rps: float) -> int:
    """Replicas a running system has for ``rate_rps`` at the start of a replay (at the baselines' target utilization)."""
    return max(1, math.ceil(rate_rps / (capacity_rps * TARGET)))


def foresail_policy(
    behavior: ResolvedBehavior, capacity_rps: float, slo_ms: float, cold_start_s: float, min_r: int, max_r: int
) -> Policy:
    state = DecisionState()
    state.capacity.estimate = state.capacity.prior = capacity_rps
    settings = ServiceSettings(behavior=behavior, min_replicas=min_r, max_replicas=max_r, slo_p99_ms=slo_ms)

    def policy(v: PolicyView) -> int:
        obs = Observation(
            arrival_rps=v.arrival_rps,
            queue=v.queue,
            p99_ms=v.p99_ms,
            ready=v.ready,
            starting=v.starting,
            current=v.current,
            cold_start_s=cold_start_s,
        )
        return decide(settings, obs, state, v.now).replicas

    return policy


@dataclass
class _Hpa:
    capacity_rps: float
    window: TimeWindow = field(default_factory=lambda: TimeWindow(300))

    def step(self, v: PolicyView, rate: float) -> int:
        current = max(v.current, 1)
        per = rate / max(v.ready, 1)
        ratio = per / (self.capacity_rps * TARGET)
        want = current if abs(ratio - 1) <= 0.1 else math.ceil(current * ratio)
        want = min(want, max(current + 4, 2 * current))
        self.window.add(v.now, float(want))
        if want < current:
            want = min(current, int(self.window.maximum(v.now) or want))
        return max(want, 1)


def hpa_policy(capacity_rps: float) -> Policy:
    hpa = _Hpa(capacity_rps)
    return lambda v: hpa.step(v, v.arrival_rps)


def keda_policy(capacity_rps: float, poll_s: float = 30.0) -> Policy:
    hpa = _Hpa(capacity_rps)
    polled: list[float] = [0.0, -math.inf]  # value, time

    def policy(v: PolicyView) -> int:
        if v.now - polled[1] >= poll_s:
            polled[0], polled[1] = v.arrival_rps, v.now
        return hpa.step(v, polled[0])

    return policy


def kpa_policy(capacity_rps: float) -> Policy:
    stable, panic = TimeWindow(60), TimeWindow(6)
    panic_until = [-math.inf]
    per = capacity_rps * TARGET

    def policy(v: PolicyView) -> int:
        stable.add(v.now, v.arrival_rps)
        panic.add(v.now, v.arrival_rps)
        s = math.ceil((stable.average(v.now) or 0.0) / per)
        p = math.ceil((panic.average(v.now) or 0.0) / per)
        if p >= 2.0 * max(v.ready, 1):
            panic_until[0] = v.now + 60
        if v.now < panic_until[0]:
            return max(s, p, v.current)
        want = max(s, 1)
        return max(want, math.floor(v.current / 2))  # max scale-down rate 2

    return policy


def _required(arr: Arrivals, capacity_rps: float, bucket: float) -> list[int]:
    """Replicas each bucket needs to keep every replica within its capacity at the SLO."""
    n = int(arr.duration // bucket) + 2
    load = [0.0] * n
    for t, w in zip(arr.times, arr.work, strict=True):
        load[int(t // bucket)] += w
    return [math.ceil(x / bucket / capacity_rps - 1e-9) for x in load]


def static_policy(arr: Arrivals, capacity_rps: float) -> Policy:
    peak = max(_required(arr, capacity_rps, 10.0), default=1)
    return lambda v: max(peak, 1)


def oracle_policy(arr: Arrivals, capacity_rps: float, cold_start_s: float) -> Policy:
    """Knows the future: has exactly the replicas each second needs ready, started a cold start ahead."""
    need = _required(arr, capacity_rps, 1.0)
    lead = math.ceil(cold_start_s) + 1

    def policy(v: PolicyView) -> int:
        i = int(v.now)
        return max([1, *need[i : i + lead + 2]])

    return policy
