"""``foresail calibrate`` against a fake Triton HTTP server; the curve helpers as tables."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from foresail.cli import main
from foresail.scaling.calibration import capacity_from_curve, curve_point
from tests.fakes.triton import FakeTriton


@pytest.fixture
def triton() -> Iterator[FakeTriton]:
    t = FakeTriton(base_ms=2.0, per_item_ms=0.5, max_batch=8)
    try:
        yield t
    finally:
        t.close()


def test_sweeps_concurrency_levels_and_writes_the_curve(triton: FakeTriton, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "curve.json"
    argv = ["calibrate", "--url", triton.address, "--protocol", "http", "--model", "m", "--concurrency", "1,4",
            "--seconds", "0.4", "--warmup-seconds", "0.1", "--batch", "2", "--slo-ms", "60000", "--max-batch", "8", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    curve = json.loads(out.read_text())
    assert (curve["model"], curve["protocol"], curve["batch"]) == ("m", "http", 2)
    assert [p["concurrency"] for p in curve["points"]] == [1, 4]
    one, four = curve["points"]
    assert set(one) == {"concurrency", "throughput_rps", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "avg_ms"}
    assert 0 < one["p50_ms"] <= one["p99_ms"]
    assert four["throughput_rps"] > 0 and triton.requests > 0
    assert curve["capacityPerReplicaRps"] == max(p["throughput_rps"] for p in curve["points"])  # all within a minute
    err = capsys.readouterr().err
    assert "| concurrency | throughput rps |" in err and "capacityPerReplicaRps within p99 60000 ms" in err
    assert set(curve["calibration"]) == {"baseMs", "perItemMs", "maxBatch"} and curve["calibration"]["maxBatch"] == 8
    assert "spec.scaling.calibration: " in err


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("unknown model", ["--model", "nope"], "foresail calibrate: "),
        ("bad levels", ["--model", "m", "--concurrency", "0,x"], "--concurrency '0,x'"),
    ],
)
def test_errors_are_one_line(triton: FakeTriton, capsys: pytest.CaptureFixture[str], name: str, args: list[str], message: str) -> None:
    assert main(["calibrate", "--url", triton.address, "--protocol", "http", "--seconds", "0.1", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, name


CURVE = [
    {"concurrency": 1, "throughput_rps": 40.0, "p99_ms": 30.0},
    {"concurrency": 4, "throughput_rps": 100.0, "p99_ms": 70.0},
    {"concurrency": 16, "throughput_rps": 300.0, "p99_ms": 150.0},
]


@pytest.mark.parametrize(
    ("name", "slo", "want"),
    [("between points", 60.0, 85.0), ("all meet", 500.0, 300.0), ("exactly a point", 70.0, 100.0), ("none meets", 10.0, None)],
)
def test_capacity_from_curve(name: str, slo: float, want: float | None) -> None:
    got = capacity_from_curve(CURVE, slo)
    assert got == (pytest.approx(want) if want is not None else None), name


@pytest.mark.parametrize(
    ("name", "latencies", "seconds", "items", "throughput", "p50"),
    [
        ("one item per request", [10.0] * 50, 0.5, 1, 100.0, 10.0),
        ("batches count items", [10.0] * 50, 0.5, 4, 400.0, 10.0),
        ("median of uneven latencies", [1.0, 2.0, 3.0, 100.0], 1.0, 1, 4.0, 2.5),
    ],
)
def test_curve_point(name: str, latencies: list[float], seconds: float, items: int, throughput: float, p50: float) -> None:
    p = curve_point(8, latencies, seconds, items)
    assert (p["concurrency"], p["throughput_rps"], p["p50_ms"]) == (8, throughput, p50), name
    assert p["p50_ms"] <= p["p90_ms"] <= p["p95_ms"] <= p["p99_ms"]


def test_a_level_without_answers_is_an_error() -> None:
    with pytest.raises(ValueError, match="concurrency 2: no request completed"):
        curve_point(2, [], 1.0)
