"""What the autoscaler writes into status (pure): conditions, recommendation, the grant; named cases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from foresail.api.conditions import Condition, set_condition
from foresail.api.inferenceservice import QuotaStatus
from foresail.api.reasons import DecisionReason, Limit, Problem, Reason
from foresail.scaling.decide import Decision
from foresail.scaling.observe import ServiceSignals
from foresail.scaling.status import autoscaler_status, quota_condition, quota_status

NOW = 1_800_000_000.0
T = datetime.fromtimestamp(NOW, UTC)
OK = ServiceSignals(arrival_rps=30.0, queue=0.0, p99_ms=50.0, sample_age_s=1.0)
DOWN = ServiceSignals(errors=["arrival: query failed: ConnectError"])
DECIDED = Decision(3, DecisionReason.STABLE_DEMAND, "stable demand 30.0 rps / 16.0 rps per replica", True, stable_rps=30.0, capacity_rps=20.0)
HOLDING = Decision(2, DecisionReason.METRICS_UNAVAILABLE, "holding replicas", False)
AT_MAX = Decision(8, DecisionReason.PANIC, "panic; limited by MaxReplicas", True, panic=True, limited_by=Limit.MAX_REPLICAS)
RATE = Decision(6, DecisionReason.STABLE_DEMAND, "stable demand", True, limited_by=Limit.MAX_SCALE_UP_RATE)
GRANT = QuotaStatus(tenant="a", requested_replicas=4, granted_replicas=2, gpus_per_replica=1, reason="tenant 'a' limit of 2 reached")
FULL = QuotaStatus(tenant="a", requested_replicas=2, granted_replicas=2, gpus_per_replica=1)


def conds(patch: dict[str, object]) -> dict[str, str]:
    return {c["type"]: f"{c['status']}/{c['reason']}" for c in patch["conditions"]}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "d", "signals", "problem", "want"),
    [
        ("decided", DECIDED, OK, None, {"MetricsAvailable": "True/MetricsOK", "ScalingActive": "True/Decided", "ScalingLimited": "False/WithinBounds"}),
        ("holding on bad metrics", HOLDING, DOWN, None, {"MetricsAvailable": "False/MetricsUnavailable", "ScalingActive": "False/Holding"}),
        ("at maxReplicas", AT_MAX, OK, None, {"ScalingLimited": "True/MaxReplicas"}),
        ("a rate limit is not a bound", RATE, OK, None, {"ScalingLimited": "False/MaxScaleUpRate"}),
        ("the policy is missing", DECIDED, OK, Problem(Reason.POLICY_NOT_FOUND, "ScalingPolicy 'x' not found"), {"ScalingActive": "False/PolicyNotFound"}),
    ],
)
def test_conditions(name: str, d: Decision, signals: ServiceSignals, problem: Problem | None, want: dict[str, str]) -> None:
    update = autoscaler_status([], d, signals, problem, None, None, {}, 1, NOW)
    got = conds(update.patch)
    for k, v in want.items():
        assert got[k] == v, (name, got)
    assert "QuotaLimited" not in got, "no tenant: nothing to say"


def test_the_recommendation_and_the_observed_signals() -> None:
    patch = autoscaler_status([], DECIDED, OK, None, None, None, {"panicUntil": None}, 1, NOW).patch
    assert patch["desiredReplicas"] == 3
    assert patch["recommendation"] == {
        "replicas": 3, "reason": "StableDemand", "message": "stable demand 30.0 rps / 16.0 rps per replica",
        "time": "2027-01-15T08:00:00Z", "panic": False, "stableRps": 30.0, "capacityRps": 20.0,
    }  # fmt: skip
    assert patch["observed"] == {"arrivalRps": 30.0, "queueDepth": 0.0, "p99Ms": 50.0, "ageSeconds": 1.0, "time": "2027-01-15T08:00:00Z"}
    assert patch["scalingState"] == {"panicUntil": None}
    assert patch["quota"] is None


@pytest.mark.parametrize(
    ("name", "before", "announce"),
    [
        ("metrics just went away: announce", [], "arrival: query failed: ConnectError"),
        ("they were already away: quiet", set_condition([], "MetricsAvailable", False, "MetricsUnavailable", "x", 1, T), None),
        ("they were fine: announce", set_condition([], "MetricsAvailable", True, "MetricsOK", "x", 1, T), "arrival: query failed: ConnectError"),
    ],
)
def test_metrics_unavailable_is_announced_once(name: str, before: list[Condition], announce: str | None) -> None:
    assert autoscaler_status(before, HOLDING, DOWN, None, None, None, {}, 1, NOW).announce == announce, name


@pytest.mark.parametrize(
    ("name", "quota", "missing", "want"),
    [
        ("no tenant: no condition", None, None, None),
        ("a grant below the request", GRANT, None, "True/QuotaExceeded"),
        ("all granted", FULL, None, "False/WithinQuota"),
        ("the tenant named does not exist", None, "ghost", "True/TenantNotFound"),
        ("no tenant owns the namespace", None, "", "True/TenantNotFound"),
    ],
)
def test_quota_condition(name: str, quota: QuotaStatus | None, missing: str | None, want: str | None) -> None:
    stale = set_condition([], "QuotaLimited", True, "QuotaExceeded", "old", 1, T)
    out = {c.type: f"{c.status}/{c.reason}" for c in quota_condition(stale, quota, missing, 1, T)}
    assert out.get("QuotaLimited") == want, name


def test_a_service_between_decisions_gets_its_grant_only() -> None:
    patch = quota_status([], GRANT, None, 1, NOW)
    assert set(patch) == {"quota", "conditions"}
    assert patch["quota"]["grantedReplicas"] == 2
    assert "grants 2 of 4 replicas (1 GPU each): tenant 'a' limit of 2 reached" in patch["conditions"][0]["message"]
