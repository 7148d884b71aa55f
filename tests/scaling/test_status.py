"""What the autoscaler writes into status (pure): conditions, recommendation, the grant; named cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from foresail.api.conditions import Condition, set_condition
from foresail.api.inferenceservice import QuotaStatus
from foresail.api.reasons import DecisionReason, Limit, Problem, Reason
from foresail.scaling.capacity import CapacitySource
from foresail.scaling.counters import ServiceSignals
from foresail.scaling.decide import Decision
from foresail.scaling.signals import MetricsSource
from foresail.scaling.status import autoscaler_status, observed_status, quota_condition, quota_status
from tests.fakes.counters import measured

NOW = 1_800_000_000.0
T = datetime.fromtimestamp(NOW, UTC)
OK = measured(30.0, 0.0, 50.0)
DOWN = ServiceSignals(None, ("Prometheus: query failed: ConnectError",))
DECIDED = Decision(3, DecisionReason.FORECAST_DEMAND, "forecast 30.0 rps x headroom 1.20 -> 3", True, forecast_rps=30.0,
                   headroom=1.2, capacity_rps=20.0, capacity_source=CapacitySource.CALIBRATION, hold_s=17.0)  # fmt: skip
HOLDING = Decision(2, DecisionReason.METRICS_UNAVAILABLE, "holding replicas", False)
NO_SERIES = ServiceSignals(None, ("no series for the 2 serving replicas",), serving=2, no_series=True)
PAUSED = Decision(5, DecisionReason.PAUSED, "paused by foresail.dev/paused-replicas: replicas set to 5", True)
AT_MAX = Decision(8, DecisionReason.FAST_PATH, "2 s arrivals ...; limited by MaxReplicas", True, limited_by=Limit.MAX_REPLICAS)
RATE = Decision(6, DecisionReason.FORECAST_DEMAND, "forecast", True, limited_by=Limit.MAX_SCALE_UP_RATE)
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
        ("serving replicas, no series: NoSeries", HOLDING, NO_SERIES, None, {"MetricsAvailable": "False/NoSeries", "ScalingActive": "False/Holding"}),
        ("paused", PAUSED, OK, None, {"Paused": "True/Paused", "ScalingActive": "False/Paused", "MetricsAvailable": "True/MetricsOK"}),
        ("paused wins over a policy problem", PAUSED, OK, Problem(Reason.POLICY_NOT_FOUND, "x"), {"Paused": "True/Paused", "ScalingActive": "False/Paused"}),
    ],
)
def test_conditions(name: str, d: Decision, signals: ServiceSignals, problem: Problem | None, want: dict[str, str]) -> None:
    update = autoscaler_status([], d, signals, problem, None, None, {}, 1, NOW)
    got = conds(update.patch)
    for k, v in want.items():
        assert got[k] == v, (name, got)
    assert "QuotaLimited" not in got, "no tenant: nothing to say"


def test_no_series_names_the_missing_label() -> None:
    update = autoscaler_status([], HOLDING, NO_SERIES, None, None, None, {}, 1, NOW)
    cond = next(c for c in update.patch["conditions"] if c["type"] == "MetricsAvailable")
    assert cond["message"].startswith("no series for the 2 serving replicas: Prometheus has no Triton series labelled foresail_dev_inferenceservice")
    assert update.announce == cond["message"]


def test_the_paused_condition_goes_when_the_pause_ends() -> None:
    paused = autoscaler_status([], PAUSED, OK, None, None, None, {}, 1, NOW).patch["conditions"]
    resumed = autoscaler_status([Condition.model_validate(c) for c in paused], DECIDED, OK, None, None, None, {}, 1, NOW).patch
    assert "Paused" not in conds(resumed) and conds(resumed)["ScalingActive"] == "True/Decided"


def test_the_recommendation_and_the_observed_signals() -> None:
    patch = autoscaler_status([], DECIDED, OK, None, None, None, {"hold": None}, 1, NOW).patch
    assert patch["desiredReplicas"] == 3
    assert patch["recommendation"] == {
        "replicas": 3, "reason": "ForecastDemand", "message": "forecast 30.0 rps x headroom 1.20 -> 3",
        "time": "2027-01-15T08:00:00Z", "forecastRps": 30.0, "headroom": 1.2, "capacityRps": 20.0,
        "capacitySource": "Calibration", "holdSeconds": 17.0,
    }  # fmt: skip
    window = {"arrivalRps": 30.0, "completionRps": 30.0, "rejectionRps": 0.0, "queueGrowthRps": 0.0, "meanQueueWaitMs": 2.0, "meanLatencyMs": 20.0, "p99Ms": 50.0}
    assert patch["observed"] == {
        "time": "2027-01-15T08:00:00Z", "source": "Prometheus", "note": None, "ageSeconds": 1.0, "sampleIntervalSeconds": 1.0,
        "arrivalRps": 30.0, "queueDepth": 0.0, "inFlight": 1.0, "p99Ms": 50.0, "servingReplicas": 2, "p99Replicas": 2,
        "windows": [{"seconds": w, **window} for w in (2.0, 10.0, 60.0)],
    }  # fmt: skip
    assert patch["scalingState"] == {"hold": None}
    assert patch["quota"] is None


@pytest.mark.parametrize(
    ("name", "before", "announce"),
    [
        ("metrics just went away: announce", [], "Prometheus: query failed: ConnectError"),
        ("they were already away: quiet", set_condition([], "MetricsAvailable", False, "MetricsUnavailable", "x", 1, T), None),
        ("they were fine: announce", set_condition([], "MetricsAvailable", True, "MetricsOK", "x", 1, T), "Prometheus: query failed: ConnectError"),
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


@pytest.mark.parametrize(
    ("name", "signals", "want"),
    [
        ("direct", measured(5.0, 1.0, 9.0, source=MetricsSource.DIRECT), {"source": "Direct", "arrivalRps": 5.0}),
        ("direct fell back", replace(measured(5.0, 1.0, 9.0), note="direct reads incomplete (a: timeout); Prometheus used"), {"source": "Prometheus", "note": "direct reads incomplete (a: timeout); Prometheus used"}),
        ("unavailable: how old the samples are, and the replicas, no figures", ServiceSignals(None, ("stale",), sample_age_s=30.0, serving=2), {"ageSeconds": 30.0, "servingReplicas": 2, "windows": []}),
    ],
)  # fmt: skip
def test_observed_says_where_the_signals_came_from(name: str, signals: ServiceSignals, want: dict[str, object]) -> None:
    got = observed_status(signals, NOW)
    for k, v in want.items():
        assert got.get(k) == v, (name, got)
    if signals.fleet is None:
        assert got["source"] is None and got["arrivalRps"] is None, name
    assert set(got) == set(observed_status(measured(1.0, 0.0, 1.0), NOW)), "every field, null when it does not hold"


@pytest.mark.parametrize(
    ("name", "signals", "p99"),
    [
        ("replicas warm for a minute: their p99", measured(30.0, 0.0, 50.0), 50.0),
        ("none warm for a minute yet: p99 absent, not 0", replace(measured(30.0, 0.0, None), p99_replicas=0), None),
        ("none completed anything: p99 absent, not 0", measured(0.0, 0.0, None), None),
    ],
)
def test_observed_p99_is_absent_without_a_measurement(name: str, signals: ServiceSignals, p99: float | None) -> None:
    got = observed_status(signals, NOW)
    assert got["p99Ms"] == p99, (name, got)  # null: the merge patch removes it
    for w in got["windows"]:
        assert w.get("p99Ms") == p99, (name, w)
        assert p99 is not None or "p99Ms" not in w, (name, "absent from each window, not null", w)
