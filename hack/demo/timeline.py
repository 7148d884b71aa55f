"""The live table's samples: one row per sample of the service (replicas, desired, ready, warm, arrival rate,
forecast, queue, p99, reason), and the plain line each row prints as off a terminal. Pure."""

from __future__ import annotations

from typing import Any

from foresail.api.objects import condition

__all__ = ["HEADER", "format_row", "timeline_row"]

HEADER = f"{'t':>6} {'replicas':>8} {'warm':>5} {'rps':>7} {'queue':>6} {'p99ms':>7}  reason"


def timeline_row(t: float, isvc: dict[str, Any], deployment: dict[str, Any], unix: float | None = None) -> dict[str, Any]:
    """``t``: seconds since the table started; ``unix``: the wall clock of the sample (lines the row up with the
    load generator's records), when known."""
    st = isvc.get("status", {})
    obs, rec = st.get("observed") or {}, st.get("recommendation") or {}
    return {
        "t": round(t, 1),
        "replicas": deployment["spec"].get("replicas", 0),
        "warm": st.get("warmReplicas", 0),
        "ready": st.get("readyReplicas", 0),
        "desired": st.get("desiredReplicas"),
        "arrival_rps": obs.get("arrivalRps"),
        "forecast_rps": rec.get("forecastRps"),
        "queue": obs.get("queueDepth"),
        "p99_ms": obs.get("p99Ms"),
        "capacity_rps": rec.get("capacityRps"),
        "capacity_source": rec.get("capacitySource"),
        "unix": unix,
        "fast": rec.get("reason") in ("FastPath", "BurstOnset"),
        "reason": (rec.get("reason") or (condition(isvc, "MetricsAvailable") or {}).get("message") or "")[:70],
    }


def format_row(r: dict[str, Any]) -> str:
    return f"{r['t']:>6} {r['replicas']:>8} {r['warm']:>5} {r['arrival_rps']!s:>7} {r['queue']!s:>6} {r['p99_ms']!s:>7}  {r['reason']}"
