"""Pure parts of the calibration and the benchmarks: perf_analyzer rows, Triton's metrics, sustained rates."""

from __future__ import annotations

from typing import Any

import pytest

from hack.bench.evaljob.signals import parse_signals
from hack.bench.runtime import sustained
from hack.calibrate.perf import point_from_row

ROW = {
    "Concurrency": "4",
    "Inferences/Second": "196.5",
    "Client Send": "100",
    "Network+Server Send/Recv": "200",
    "Server Queue": "300",
    "Server Compute Input": "10",
    "Server Compute Infer": "20000",
    "Server Compute Output": "10",
    "Client Recv": "80",
    "p50 latency": "20500",
    "p90 latency": "30000",
    "p95 latency": "35000",
    "p99 latency": "41000",
}


def test_perf_analyzer_row_as_a_curve_point() -> None:
    assert point_from_row(ROW, 4) == {
        "concurrency": 4,
        "throughput_rps": 196.5,
        "p50_ms": 20.5,
        "p90_ms": 30.0,
        "p95_ms": 35.0,
        "p99_ms": 41.0,
        "avg_ms": 20.7,  # the sum of the average components
    }


METRICS = """# HELP nv_inference_pending_request_count Instantaneous number of pending requests
nv_inference_pending_request_count{model="emulated",version="1"} 3
nv_inference_pending_request_count{model="other",version="1"} 9
nv_inference_request_summary_us{model="emulated",version="1",quantile="0.5"} 20000
nv_inference_request_summary_us{model="emulated",version="1",quantile="0.99"} 45000
"""


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("queue and p99 of the model", METRICS, (3.0, 45.0)),
        ("another model only", METRICS.replace('"emulated"', '"x"'), (None, None)),
        (
            "NaN p99: nothing served lately",
            'nv_inference_request_summary_us{model="emulated",quantile="0.99"} NaN\n',
            (None, 0.0),
        ),
        ("empty", "", (None, None)),
    ],
)
def test_production_signals(name: str, text: str, expected: tuple[float | None, float | None]) -> None:
    assert parse_signals(text, "emulated") == expected, name


def run(achieved: float, lag: float = 10.0, errors: int = 0) -> dict[str, Any]:
    return {"offered_rps": 1000.0, "achieved_rps": achieved, "max_send_lag_ms": lag, "errors": errors}


@pytest.mark.parametrize(
    ("name", "r", "ok"),
    [
        ("all achieved", run(1000.0), True),
        ("95% achieved", run(950.0), True),
        ("94% achieved", run(940.0), False),
        ("sends 101 ms late", run(1000.0, lag=101.0), False),
        ("one error", run(1000.0, errors=1), False),
    ],
)
def test_sustained_rate(name: str, r: dict[str, Any], ok: bool) -> None:
    assert sustained(r) == ok, name
