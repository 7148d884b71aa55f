"""Pausing a service's autoscaling for maintenance (pure): the annotations, as KEDA's.

* ``foresail.dev/paused-replicas: "N"`` - replicas set to N and held there (still capped by the tenant's grant);
* ``foresail.dev/paused: "true"`` - replicas held at their current count.

``paused-replicas`` wins when both are set. While paused the autoscaler decides nothing (its signals are
still read, ``MetricsAvailable`` still reported) and the service shows ``Paused=True``; the reconciler
no longer pulls replicas into [minReplicas, maxReplicas]. A value that is not understood pauses too
(at the current count: a maintenance intent was stated), and the condition's message names the annotation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from foresail.api.reasons import DecisionReason
from foresail.scaling.decide import Decision

__all__ = ["PAUSED", "PAUSED_REPLICAS", "Pause", "pause_of", "paused_decision"]

PAUSED = "foresail.dev/paused"
PAUSED_REPLICAS = "foresail.dev/paused-replicas"
MAX_PAUSED_REPLICAS = 10_000


@dataclass(frozen=True)
class Pause:
    replicas: int | None  # None: held at the current count
    problem: str = ""  # the annotation's value was not understood


def pause_of(annotations: Mapping[str, str] | None) -> Pause | None:
    """The pause the annotations ask for, or None."""
    a = annotations or {}
    if PAUSED_REPLICAS in a:
        raw = str(a[PAUSED_REPLICAS]).strip()
        if raw.isdigit() and int(raw) <= MAX_PAUSED_REPLICAS:
            return Pause(int(raw))
        return Pause(None, f"{PAUSED_REPLICAS}: {raw!r} is not a count from 0 to {MAX_PAUSED_REPLICAS}")
    if PAUSED in a:
        raw = str(a[PAUSED]).strip().lower()
        if raw == "false":
            return None
        if raw == "true":
            return Pause(None)
        return Pause(None, f"{PAUSED}: {raw!r} is neither \"true\" nor \"false\"")
    return None


def paused_decision(pause: Pause, current: int, signals_ok: bool) -> Decision:
    """The decision of a paused service: its paused count, or the current one."""
    replicas = current if pause.replicas is None else pause.replicas
    if pause.replicas is None:
        msg = f"paused by {PAUSED}: replicas held at {current}"
    else:
        msg = f"paused by {PAUSED_REPLICAS}: replicas set to {pause.replicas}"
    if pause.problem:
        msg = f"{msg} ({pause.problem})"
    return Decision(replicas, DecisionReason.PAUSED, msg, signals_ok)
