"""The demo's live table and report (pure parts)."""

from __future__ import annotations

import pytest

from hack.demo.report import demo_checks, p99_per_window, report_markdown
from hack.demo.timeline import HEADER, format_row, timeline_row
from hack.loadgen.records import Record

ISVC = {
    "status": {
        "warmReplicas": 2,
        "readyReplicas": 2,
        "desiredReplicas": 4,
        "observed": {"arrivalRps": 150.5, "queueDepth": 1, "p99Ms": 88.0},
        "recommendation": {
            "reason": "ForecastDemand",
            "capacityRps": 42.5,
            "capacitySource": "Calibration",
            "forecastRps": 170.0,
        },
        "conditions": [{"type": "MetricsAvailable", "status": "True", "message": "ok"}],
    }
}


def test_timeline_row_from_the_service_and_its_deployment() -> None:
    r = timeline_row(12.345, ISVC, {"spec": {"replicas": 3}}, unix=1700000000.0)
    assert r == {
        "t": 12.3, "replicas": 3, "warm": 2, "ready": 2, "desired": 4, "arrival_rps": 150.5, "forecast_rps": 170.0, "queue": 1,
        "p99_ms": 88.0, "fast": False, "capacity_rps": 42.5, "capacity_source": "Calibration", "unix": 1700000000.0,
        "reason": "ForecastDemand",
    }  # fmt: skip
    assert "ForecastDemand" in format_row(r)


def test_the_plain_line_is_todays() -> None:
    """Off a terminal the demo prints these lines; logs and scripts read them by their columns."""
    r = timeline_row(12.345, ISVC, {"spec": {"replicas": 3}})
    assert HEADER == "     t replicas  warm     rps  queue   p99ms  reason"
    assert format_row(r) == "  12.3        3     2   150.5      1    88.0  ForecastDemand"


def test_without_a_recommendation_the_reason_is_the_metrics_condition() -> None:
    isvc = {"status": {"conditions": [{"type": "MetricsAvailable", "status": "False", "message": "p99: no series"}]}}
    r = timeline_row(0.0, isvc, {"spec": {}})
    assert r["reason"] == "p99: no series" and r["replicas"] == 0 and r["arrival_rps"] is None
    assert r["desired"] is None and r["forecast_rps"] is None


def records() -> list[Record]:
    ok = [Record(s, s, float(s), "ok", "e:1") for s in range(25)]
    return [*ok, Record(3.0, 3.0, 0.0, "timeout", "e:1")]


def test_p99_per_window_by_send_time() -> None:
    assert p99_per_window(records()) == {0.0: 8.0, 10.0: 18.0, 20.0: 23.0}


def test_report_counts_errors_as_outside_the_slo() -> None:
    rows = [timeline_row(t, ISVC, {"spec": {"replicas": n}}) for t, n in ((0, 1), (2, 3))]
    summary = {"requests": 26, "errors": 1, "p50_ms": 12, "p95_ms": 22, "p99_ms": 24, "tenants": "NAME  GUARANTEED\ndemo  8\n"}
    md = report_markdown("trace.csv", rows, summary, records(), slo=20.0, sample_s=2.0)
    assert "within SLO: 80.77%" in md  # 21 of 26 requests: the timeout and 4 slow ones are not
    assert "peak replicas: 3, replica-seconds: 8 (2 s samples)" in md
    assert "demo  8" in md


def _rows(samples: list[tuple[float, int, float | None, float | None]]) -> list[dict[str, object]]:
    """(unix, replicas, p99 in status, capacity per replica)."""
    return [{"t": u - 1000.0, "replicas": n, "p99_ms": p, "capacity_rps": c, "unix": u} for u, n, p, c in samples]


def _load(rate: int, seconds: int, latency_ms: float, start: float = 0.0) -> list[Record]:
    return [
        Record(start + i / rate, start + i / rate, latency_ms, "ok", "e:1", sent_unix=1000.0 + start + i / rate)
        for i in range(rate * seconds)
    ]


@pytest.mark.parametrize(
    ("rows", "records", "expect"),
    [
        pytest.param(
            _rows([(1010.0, 2, 10.0, 100.0), (1020.0, 3, 10.0, 100.0)]),
            _load(250, 20, 10.0),
            {"peak_rps_10s": 250.0, "needed_replicas": 3, "peak_replicas": 3, "replicas_goal_met": True, "p99_goal_met": True},
            id="peak at need, p99 equal",
        ),
        pytest.param(
            _rows([(1010.0, 5, 10.0, 100.0), (1020.0, 5, 10.0, 100.0)]),
            _load(250, 20, 10.0),
            {"needed_replicas": 3, "peak_replicas": 5, "replicas_goal_met": False},
            id="two above need: over-provisioned",
        ),
        pytest.param(
            _rows([(1010.0, 4, 13.0, 100.0), (1020.0, 4, 13.0, 100.0)]),
            _load(250, 20, 10.0),
            {"replicas_goal_met": True, "p99_status_over_loadgen_median": 1.3, "p99_goal_met": False},
            id="status p99 30% above the load generator's",
        ),
        pytest.param(
            _rows([(1010.0, 1, 11.0, None), (1020.0, 1, None, None)]),
            _load(4, 20, 10.0),
            {"needed_replicas": None, "replicas_goal_met": False, "p99_samples": 0, "p99_goal_met": False},
            id="no capacity in status, too few requests for a p99",
        ),
    ],
)
def test_demo_checks(rows: list[dict[str, object]], records: list[Record], expect: dict[str, object]) -> None:
    got = demo_checks(rows, records)
    assert {k: got[k] for k in expect} == expect
