"""What the decision reads of a fleet (pure data): windowed signals from Triton's counters.

Both the live autoscaler (from Prometheus or the replicas' own metrics endpoints) and the replay
simulator (from its scrapes) produce these, so the decision sees the same thing in both.

For each window (``WINDOWS``: 2 s, 10 s, 60 s) the rates come from the difference of two samples of
Triton's cumulative counters a window apart, exactly as ``increase()`` over a range would:

* completions (``nv_inference_request_success``), rejections (``nv_inference_request_failure``), growth
  of the work in flight (queued + executing), and arrivals = completions + rejections + in-flight growth:
  the requests that arrived, which completions alone under-report exactly when replicas saturate;
* the mean queue wait of the requests that started executing in the window
  (``nv_inference_queue_duration_us`` over the requests counted);
* the p99 latency of the requests completed in the window, request-weighted across the fleet (never a
  maximum of per-replica quantiles), from replicas that have been warm long enough that their warm-up
  requests are no longer in it (None when there is no such measurement: unknown, not 0 ms, and not a
  reason to hold); and their mean latency (``nv_inference_request_duration_us`` over the
  requests completed).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["WINDOWS", "FleetSignals", "MetricsSource", "WindowSignals"]

WINDOWS = (2.0, 10.0, 60.0)


class MetricsSource(StrEnum):
    """Where a tick's signals came from (shown in status)."""

    PROMETHEUS = "Prometheus"
    DIRECT = "Direct"  # the warm replicas' own metrics endpoints, read by the operator
    SIMULATOR = "Simulator"


@dataclass(frozen=True)
class WindowSignals:
    window_s: float
    arrival_rps: float  # completions + rejections + in-flight growth
    completion_rps: float
    rejection_rps: float
    queue_growth_rps: float  # growth of queued + executing requests
    mean_queue_wait_ms: float
    p99_ms: float | None  # request-weighted over the fleet; None (unknown, never 0) when no replica warm for a minute completed any
    mean_latency_ms: float = 0.0  # of the requests completed in the window (exact, from the duration counter)


@dataclass(frozen=True)
class FleetSignals:
    """One tick's view of a service's serving fleet."""

    windows: tuple[WindowSignals, ...]
    queued: float  # requests waiting in the replicas' queues now
    in_flight: float  # queued + executing now
    source: MetricsSource = MetricsSource.PROMETHEUS

    def window(self, seconds: float) -> WindowSignals:
        for w in self.windows:
            if w.window_s == seconds:
                return w
        raise KeyError(f"no {seconds:g} s window; have {[w.window_s for w in self.windows]}")
