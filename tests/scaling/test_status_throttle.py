"""scaling.status_throttle: which autoscaler status patches are written at once, which wait (table)."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.scaling.status_throttle import Throttle, worth_writing

T = Throttle(refresh_s=30.0)


def cond(type_: str, status: str = "True", reason: str = "Decided", message: str = "m", gen: int = 1) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": gen, "lastTransitionTime": "t"}


OLD: dict[str, Any] = {
    "desiredReplicas": 3,
    "quota": {"tenant": "a", "grantedReplicas": 4, "requestedReplicas": 3},
    "conditions": [cond("Ready", reason="Ready"), cond("ScalingActive", message="base 10.0 rps")],
    "recommendation": {"replicas": 3, "reason": "Forecast", "message": "base 10.0 rps", "time": "t0", "baseRps": 10.0},
    "observed": {"time": "t0", "source": "prometheus", "servingReplicas": 3, "p99Replicas": 3, "arrivalRps": 100.0, "p99Ms": 120.0, "queueDepth": 0.0},
    "scalingState": {"forecast": [{"s1": 10.0}], "hold": {"steps": []}},
}


def patch(**changes: Any) -> dict[str, Any]:
    """OLD as the next decision writes it: its times and decision state moved, plus ``changes``."""
    out: dict[str, Any] = {**OLD, "scalingState": {"forecast": [{"s1": 10.4}], "hold": {"steps": [[5, 3]]}}}
    out["recommendation"] = {**OLD["recommendation"], "time": "t1", "baseRps": 10.4, "message": "base 10.4 rps"}
    out["observed"] = {**OLD["observed"], "time": "t1"}
    for k, v in changes.items():
        out[k] = {**out[k], **v} if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


CASES: list[tuple[str, dict[str, Any], float | None, float, Throttle, str | None]] = [
    # name, patch, last write, now, throttle, expected reason (None: held)
    ("first decision of this process", patch(), None, 100.0, T, "first decision"),
    ("only times and decision state moved: held", patch(), 100.0, 110.0, T, None),
    ("refresh interval reached", patch(), 100.0, 130.0, T, "refresh"),
    ("refresh 0: every decision", patch(), 100.0, 101.0, Throttle(refresh_s=0), "every decision"),
    ("desiredReplicas moved", patch(desiredReplicas=4, recommendation={"replicas": 4}), 100.0, 101.0, T, "desiredReplicas"),
    ("quota moved", patch(quota={"grantedReplicas": 2}), 100.0, 101.0, T, "quota"),
    ("rollout (unknown field) changed", patch(rollout={"phase": "Progressing"}), 100.0, 101.0, T, "rollout"),
    ("condition status flipped", patch(conditions=[cond("Ready", reason="Ready"), cond("ScalingActive", "False", "Holding")]), 100.0, 101.0, T, "conditions"),
    ("condition added", patch(conditions=[*OLD["conditions"], cond("ScalingLimited", "True", "MaxReplicas")]), 100.0, 101.0, T, "conditions"),
    ("condition message only: held", patch(conditions=[cond("Ready", reason="Ready"), cond("ScalingActive", message="base 10.4 rps")]), 100.0, 101.0, T, None),
    ("condition observedGeneration (spec changed)", patch(conditions=[cond("Ready", reason="Ready"), cond("ScalingActive", gen=2)]), 100.0, 101.0, T, "conditions"),
    ("recommendation reason changed", patch(recommendation={"reason": "FastPath"}), 100.0, 101.0, T, "recommendation"),
    ("source changed", patch(observed={"source": "direct"}), 100.0, 101.0, T, "observed.source"),
    ("note appeared", patch(observed={"note": "2 of 3 replicas reported"}), 100.0, 101.0, T, "observed.note"),
    ("serving replicas moved", patch(observed={"servingReplicas": 4}), 100.0, 101.0, T, "observed.servingReplicas"),
    ("arrival rate within tolerance: held", patch(observed={"arrivalRps": 115.0}), 100.0, 101.0, T, None),
    ("arrival rate beyond tolerance", patch(observed={"arrivalRps": 140.0}), 100.0, 101.0, T, "observed.arrivalRps"),
    ("p99 beyond tolerance", patch(observed={"p99Ms": 260.0}), 100.0, 101.0, T, "observed.p99Ms"),
    ("p99 appeared", patch(observed={"p99Ms": None}), 100.0, 101.0, T, "observed.p99Ms"),
    ("queue built up", patch(observed={"queueDepth": 8.0}), 100.0, 101.0, T, "observed.queueDepth"),
]


@pytest.mark.parametrize(("p", "last", "now", "t", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_worth_writing(p: dict[str, Any], last: float | None, now: float, t: Throttle, want: str | None) -> None:
    assert worth_writing(OLD, p, last, now, t) == want


def test_low_rate_floor_is_absolute() -> None:
    old = {**OLD, "observed": {**OLD["observed"], "arrivalRps": 0.4}}
    assert worth_writing(old, patch(observed={"arrivalRps": 0.9}), 100.0, 101.0, T) is None
    assert worth_writing(old, patch(observed={"arrivalRps": 3.0}), 100.0, 101.0, T) == "observed.arrivalRps"


def test_empty_old_status_writes() -> None:
    assert worth_writing({}, patch(), 100.0, 101.0, T) == "desiredReplicas"
