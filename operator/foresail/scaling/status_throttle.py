"""Whether an autoscaler status patch is worth a write now (pure; the clock is an argument; issue 14).

Every decision used to PATCH the service's status: ``observed.time``, the recommendation's figures and
``scalingState`` (the forecasters, the hold window) move on every decision, so every due service wrote
every pass, and each write is an event to every watcher. A patch is now written at once only when
something a user or a tool reads changes meaningfully:

- the first decision of this process for the service (after a start or a failover);
- ``desiredReplicas``, ``quota``, ``rollout`` or any other field this module does not know (equality);
- a condition's type, status, reason or observedGeneration (not its message: it carries the figures);
- the recommendation's replicas or reason;
- the observed signals' source, note, serving or p99 replicas; their arrival rate, p99 latency or queue
  depth by more than ``rel_tolerance`` (relative) and more than the absolute floor (noise at low rates);

and otherwise at most every ``refresh_s`` seconds (``FORESAIL_STATUS_REFRESH_SECONDS``), which carries
the slowly moving figures and the decision state. ``refresh_s`` 0 writes every decision (as before).

What staleness costs. ``status.scalingState`` is the only thing read back (once, when a process first
sees a service: a restart or a new leader). It is at most ``refresh_s`` (plus a pass) older than the old
leader's last decision. A scale (``desiredReplicas`` moved) and a MetricsAvailable change are written at
once, so the state at those moments is exact; between them a new leader starts from forecasters and a
hold window up to ``refresh_s`` old: the smoothing resumes over a longer gap (and the arrival history is
refilled from Prometheus anyway), and the hold window's "last wanted" time of its peak can be up to
``refresh_s`` early, so a scale-down after a failover can come up to ``refresh_s`` sooner than the old
leader would have made it. A scale-up is never lost: it changes ``desiredReplicas``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SOFT", "Throttle", "worth_writing"]

# the fields whose every change is not worth a write by itself: compared field by field below
SOFT = frozenset({"recommendation", "observed", "scalingState", "conditions"})


@dataclass(frozen=True)
class Throttle:
    refresh_s: float = 30.0  # at most this long between writes of the slowly moving fields (0: every decision)
    rel_tolerance: float = 0.25  # an observed figure's relative change worth a write
    rps_floor: float = 1.0  # ... and its absolute change: requests/s
    ms_floor: float = 25.0  # milliseconds
    queue_floor: float = 2.0  # requests queued


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) else None


def _moved(old: Any, new: Any, rel: float, floor: float) -> bool:
    a, b = _num(old), _num(new)
    if a is None or b is None:
        return (a is None) != (b is None)
    diff = abs(a - b)
    return diff > floor and diff > rel * max(abs(a), abs(b))


def _conditions(v: Any) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for c in v or []:
        if isinstance(c, Mapping):
            out[str(c.get("type"))] = (c.get("status"), c.get("reason"), c.get("observedGeneration"))
    return out


def _observed(old: Mapping[str, Any], new: Mapping[str, Any], t: Throttle) -> str | None:
    for k in ("source", "note", "servingReplicas", "p99Replicas"):
        if old.get(k) != new.get(k):
            return f"observed.{k}"
    for k, floor in (("arrivalRps", t.rps_floor), ("p99Ms", t.ms_floor), ("queueDepth", t.queue_floor)):
        if _moved(old.get(k), new.get(k), t.rel_tolerance, floor):
            return f"observed.{k}"
    return None


def worth_writing(old: Mapping[str, Any], patch: Mapping[str, Any], last_write: float | None, now: float, t: Throttle) -> str | None:
    """Why ``patch`` should be written over the status ``old`` at ``now`` (a short reason), or None: hold it
    until a later decision. ``last_write``: when this process last wrote the service's status (None: never)."""
    if last_write is None:
        return "first decision"
    if t.refresh_s <= 0:
        return "every decision"
    for k, v in patch.items():
        if k not in SOFT and old.get(k) != v:
            return k
    if "conditions" in patch and _conditions(old.get("conditions")) != _conditions(patch["conditions"]):
        return "conditions"
    rec_old, rec_new = old.get("recommendation") or {}, patch.get("recommendation") or {}
    if "recommendation" in patch and any(rec_old.get(k) != rec_new.get(k) for k in ("replicas", "reason")):
        return "recommendation"
    if "observed" in patch and (why := _observed(old.get("observed") or {}, patch.get("observed") or {}, t)) is not None:
        return why
    if now - last_write >= t.refresh_s:
        return "refresh"
    return None
