"""Trace and profile parsing: named cases, deterministic for a seed."""

from __future__ import annotations

import numpy as np
import pytest

from foresail.replay import traces


@pytest.mark.parametrize(
    ("name", "text", "times", "work"),
    [
        ("seconds, unsorted", "timestamp\n2.5\n1.0\n1.5\n", (0.0, 0.5, 1.5), (1.0, 1.0, 1.0)),
        ("iso-8601 with zone", "timestamp\n2024-01-01T00:00:01Z\n2024-01-01T00:00:03.5Z\n", (0.0, 2.5), (1.0, 1.0)),
        (
            "azure format, 7 fraction digits, work from tokens",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,1000,10\n2023-11-16 18:17:04.0319600,0,40\n",
            (0.0, 0.052),
            (60 / 50, 40 / 50),
        ),
        ("work column normalised to mean 1", "timestamp,work\n0,1\n1,3\n", (0.0, 1.0), (0.5, 1.5)),
    ],
)
def test_parse_trace(name: str, text: str, times: tuple[float, ...], work: tuple[float, ...]) -> None:
    arr = traces.parse_trace(text)
    assert arr.times == pytest.approx(times, abs=1e-6), name
    assert arr.work == pytest.approx(work), name


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty", "", "trace is empty"),
        ("no timestamp column", "when\n1\n", "no timestamp column"),
        ("bad timestamp", "timestamp\nyesterday\n", "row 2: timestamp 'yesterday'"),
        ("negative work", "timestamp,work\n1,-1\n", "row 2: work must be"),
        ("header only", "timestamp\n", "no requests"),
    ],
)
def test_parse_trace_errors_name_the_problem(name: str, text: str, message: str) -> None:
    with pytest.raises(traces.TraceError, match=message):
        traces.parse_trace(text)


def test_reshape_cuts_compresses_and_scales_deterministically() -> None:
    arr = traces.Arrivals(tuple(float(i) for i in range(100)), tuple(1.0 for _ in range(100)))
    a = traces.reshape(arr, compress=2, rate_scale=2.5, start=10, duration=40, seed=7)
    b = traces.reshape(arr, compress=2, rate_scale=2.5, start=10, duration=40, seed=7)
    assert a == b
    assert 40 * 2 <= len(a) <= 40 * 3
    assert a.times[0] == 0.0
    assert max(a.times) < 20.1
    assert list(a.times) == sorted(a.times)
    with pytest.raises(traces.TraceError, match="compress"):
        traces.reshape(arr, compress=0)


@pytest.mark.parametrize(
    ("name", "spec", "error"),
    [
        ("unknown kind", "square:rate=1", "profile kind 'square' unknown"),
        ("unknown key", "constant:rate=1,foo=2", "unknown key 'foo'"),
        ("missing key", "step:from=1,to=2", r"missing \['at'\]"),
        ("not a number", "constant:rate=fast", "rate='fast' is not a number"),
        ("negative", "constant:rate=-1", "rate must be >= 0"),
    ],
)
def test_parse_profile_errors(name: str, spec: str, error: str) -> None:
    with pytest.raises(traces.TraceError, match=error):
        traces.parse_profile(spec)


@pytest.mark.parametrize(
    ("name", "spec", "t", "rate"),
    [
        ("constant", "constant:rate=7", 100.0, 7.0),
        ("step before", "step:from=5,to=50,at=30", 29.9, 5.0),
        ("step after", "step:from=5,to=50,at=30", 30.0, 50.0),
        ("ramp middle", "ramp:from=10,to=20,over=100", 50.0, 15.0),
        ("ramp delayed start", "ramp:from=10,to=20,over=100,at=10", 5.0, 10.0),
        ("sine peak", "sine:mean=10,amp=5,period=40", 10.0, 15.0),
    ],
)
def test_rate_at(name: str, spec: str, t: float, rate: float) -> None:
    kind, params = traces.parse_profile(spec)
    assert traces.rate_at(kind, params, t) == pytest.approx(rate), name


def test_profile_arrivals_follow_the_rate() -> None:
    kind, params = traces.parse_profile("step:from=10,to=100,at=50")
    arr = traces.profile_arrivals(kind, params, 100.0, seed=3)
    before = sum(1 for t in arr.times if t < 50)
    after = len(arr) - before
    assert 350 <= before <= 650
    assert 4500 <= after <= 5500
    assert arr == traces.profile_arrivals(kind, params, 100.0, seed=3)


@pytest.mark.parametrize(
    ("name", "k", "low", "high"),
    [("whole copies", 3.0, 300, 300), ("a thinned extra copy", 2.5, 230, 270), ("less than one copy", 0.5, 30, 70)],
)
def test_superpose_adds_time_shifted_copies(name: str, k: float, low: int, high: int) -> None:
    arr = traces.Arrivals([float(i) + 0.25 for i in range(100)], [float(i % 3) for i in range(100)])
    out = traces.superpose(arr, k, seed=4)
    assert low <= len(out) <= high, name
    assert list(out.times) == sorted(out.times)
    assert out.times.min() >= 0.0 and out.times.max() < 100.0  # wrapped around the trace's span
    assert out == traces.superpose(arr, k, seed=4)
    if k >= 1:
        assert set(arr.times) <= set(out.times)  # the first copy is the trace itself


def test_superposition_keeps_the_bursts_poisson_smooths_them() -> None:
    # one burst of 50 requests within 0.1 s every 10 s
    times = [b * 10.0 + i * 0.002 for b in range(10) for i in range(50)]
    arr = traces.Arrivals(times, [1.0] * len(times))
    sup = traces.reshape(arr, rate_scale=6, seed=1, method="superpose")
    poi = traces.reshape(arr, rate_scale=6, seed=1, method="poisson")
    assert len(sup) == 6 * len(arr)
    busiest = max(np.histogram(sup.times, bins=np.arange(0, 101, 0.1))[0])
    assert busiest >= 50  # a whole burst lands in one 100 ms window
    assert max(np.histogram(poi.times, bins=np.arange(0, 101, 0.1))[0]) < busiest
    with pytest.raises(traces.TraceError, match="method: 'copies' unknown"):
        traces.reshape(arr, rate_scale=6, method="copies")


def test_arrivals_are_immutable_arrays() -> None:
    arr = traces.Arrivals([0.0, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="read-only"):
        arr.times[0] = 5.0
    with pytest.raises(AttributeError):
        arr.times = np.zeros(2)
    with pytest.raises(traces.TraceError, match="same length"):
        traces.Arrivals([0.0], [1.0, 2.0])
