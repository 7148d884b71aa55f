"""The AIMD limiter, production pressure and the token bucket, with the clock passed in."""

from __future__ import annotations

import math

import pytest

from foresail.evaluation.limiter import AIMDLimiter, TokenBucket, production_pressure


def test_additive_increase_is_about_one_per_limit_successes() -> None:
    lim = AIMDLimiter(min_limit=1, max_limit=100, initial=4)
    for _ in range(4):
        lim.on_success(5.0, now=0.0)
    assert lim.limit == 5
    for _ in range(5):
        lim.on_success(5.0, now=0.0)
    assert lim.limit == 6
    for _ in range(10_000):
        lim.on_success(5.0, now=0.0)
    assert lim.limit == 100  # capped at max_limit


def test_defaults_start_at_min_limit() -> None:
    assert AIMDLimiter(min_limit=2, max_limit=8).limit == 2


def test_errors_decrease_multiplicatively_at_most_once_per_cooldown() -> None:
    lim = AIMDLimiter(min_limit=1, max_limit=100, initial=40, backoff=0.5, cooldown=1.0)
    for _ in range(20):  # a burst of errors from one overload
        lim.on_error(now=10.0)
    assert lim.limit == 20
    lim.on_error(now=10.9)
    assert lim.limit == 20  # still cooling down
    lim.on_error(now=11.0)
    assert lim.limit == 10
    for t in range(12, 30):
        lim.on_error(now=float(t))
    assert lim.limit == 1  # never below min_limit


@pytest.mark.parametrize(
    ("name", "target", "latency", "want"),
    [
        ("no target: grows", None, 10_000.0, 11),
        ("under target: grows", 100.0, 50.0, 11),
        ("at target: grows", 100.0, 100.0, 11),
        ("over target: decreases once", 100.0, 150.0, 7),
        ("NaN latency counts as over", 100.0, math.nan, 7),
    ],
)
def test_latency_target(name: str, target: float | None, latency: float, want: int) -> None:
    lim = AIMDLimiter(min_limit=1, max_limit=100, initial=10, latency_target_ms=target, backoff=0.7)
    for _ in range(10):
        lim.on_success(latency, now=5.0)
    assert lim.limit == want, name


@pytest.mark.parametrize(
    ("name", "factor", "want"),
    [
        ("none", 0.0, 20),
        ("a quarter", 0.25, 15),
        ("half", 0.5, 10),
        ("almost full", 0.99, 2),  # floor(0.2) = 0 -> min_limit
        ("full: back off to the minimum", 1.0, 2),
        ("above 1 is clamped", 3.0, 2),
        ("below 0 is clamped", -1.0, 20),
        ("NaN is the safe side", math.nan, 2),
    ],
)
def test_pressure_scales_the_effective_limit(name: str, factor: float, want: int) -> None:
    lim = AIMDLimiter(min_limit=2, max_limit=100, initial=20)
    lim.set_pressure(factor, now=0.0)
    assert lim.limit == want, name
    assert lim.base_limit == 20


def test_pressure_is_remembered_and_freezes_growth() -> None:
    lim = AIMDLimiter(min_limit=1, max_limit=100, initial=10)
    lim.set_pressure(0.5, now=0.0)
    for _ in range(100):
        lim.on_success(1.0, now=1.0)
    assert (lim.base_limit, lim.limit) == (10, 5)
    lim.on_error(now=2.0)  # congestion still counts under pressure
    assert lim.base_limit == 7
    lim.set_pressure(0.0, now=3.0)
    assert lim.limit == 7


def test_throttled_seconds_accumulate_only_under_pressure() -> None:
    lim = AIMDLimiter(min_limit=1, max_limit=10)
    assert lim.throttled_seconds(now=100.0) == 0.0
    lim.set_pressure(0.3, now=10.0)
    lim.set_pressure(0.8, now=12.0)  # still throttled: the interval continues
    assert lim.throttled_seconds(now=13.0) == pytest.approx(3.0)
    lim.set_pressure(0.0, now=15.0)
    assert lim.throttled_seconds(now=50.0) == pytest.approx(5.0)
    lim.set_pressure(1.0, now=60.0)
    assert lim.throttled_seconds(now=61.5) == pytest.approx(6.5)


@pytest.mark.parametrize(
    ("name", "kw", "message"),
    [
        ("min below 1", {"min_limit": 0, "max_limit": 4}, r"min_limit = 0, must be >= 1"),
        ("max below min", {"min_limit": 4, "max_limit": 2}, r"max_limit = 2, must be >= min_limit \(4\)"),
        ("initial out of range", {"min_limit": 1, "max_limit": 4, "initial": 9}, r"initial = 9, must be in \[1; 4\] range"),
        ("backoff of 1", {"min_limit": 1, "max_limit": 4, "backoff": 1.0}, r"backoff = 1.0, must be in \(0; 1\) range"),
        (
            "zero latency target",
            {"min_limit": 1, "max_limit": 4, "latency_target_ms": 0.0},
            r"latency_target_ms = 0.0, must be > 0",
        ),
        ("negative cooldown", {"min_limit": 1, "max_limit": 4, "cooldown": -1.0}, r"cooldown = -1.0, must be >= 0"),
    ],
)
def test_limiter_settings_are_validated(name: str, kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AIMDLimiter(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "queue", "p99", "slo", "want"),
    [
        ("idle", 0.0, 10.0, 100.0, 0.0),
        ("just below the start", 0.9, 59.0, 100.0, 0.0),
        ("latency at the start", 0.0, 60.0, 100.0, 0.0),
        ("latency half way", 0.0, 75.0, 100.0, 0.5),
        ("latency at full", 0.0, 90.0, 100.0, 1.0),
        ("latency over the SLO", 0.0, 250.0, 100.0, 1.0),
        ("queue half way", 2.5, 10.0, 100.0, 0.5),
        ("queue full", 4.0, 10.0, 100.0, 1.0),
        ("the larger signal wins", 2.5, 80.0, 100.0, 2 / 3),
        ("missing queue", None, 10.0, 100.0, 1.0),
        ("NaN p99", 0.0, math.nan, 100.0, 1.0),
        ("missing SLO", 0.0, 10.0, None, 1.0),
        ("zero SLO", 0.0, 10.0, 0.0, 1.0),
        ("infinite p99", 0.0, math.inf, 100.0, 1.0),
    ],
)
def test_production_pressure(name: str, queue: float | None, p99: float | None, slo: float | None, want: float) -> None:
    assert production_pressure(queue, p99, slo) == pytest.approx(want), name


@pytest.mark.parametrize(
    ("name", "kw", "message"),
    [
        ("start after full", {"start_fraction": 0.9, "full_fraction": 0.6}, "need 0 <= start < full"),
        ("queue start equals full", {"queue_start": 2.0, "queue_full": 2.0}, "need 0 <= start < full"),
    ],
)
def test_production_pressure_settings_are_validated(name: str, kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        production_pressure(0.0, 10.0, 100.0, **kw)


@pytest.mark.parametrize(
    ("name", "rate", "burst", "calls", "delays"),
    [
        ("paced from the start", 10.0, 1.0, [0.0, 0.0, 0.0], [0.0, 0.1, 0.2]),
        ("a burst, then paced", 10.0, 3.0, [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.1, 0.2]),
        ("idle time is not banked beyond the burst", 10.0, 1.0, [0.0, 5.0, 5.0], [0.0, 0.0, 0.1]),
        ("callers arriving late wait less", 4.0, 1.0, [0.0, 0.1, 0.2], [0.0, 0.15, 0.3]),
    ],
)
def test_token_bucket(name: str, rate: float, burst: float, calls: list[float], delays: list[float]) -> None:
    bucket = TokenBucket(rate, burst)
    assert [bucket.reserve(t) for t in calls] == pytest.approx(delays), name


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (math.inf, 1.0), (5.0, 0.5)])
def test_token_bucket_settings_are_validated(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate, burst)
