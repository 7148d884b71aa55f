"""The load generator's records, summary and per-request CSV."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hack.loadgen.records import Record, read_csv, summarise, write_csv


def rec(t: float, lat: float, status: str = "ok", lag: float = 0.0) -> Record:
    return Record(t, t + lag, lat, status, "10.0.0.1:8000", 1_700_000_000.0 + t)


def test_summary_of_successes_and_errors() -> None:
    records = [rec(i / 10, float(i + 1)) for i in range(100)]
    records += [rec(10.0, 0.0, "timeout"), rec(10.1, 0.0, "error:InferenceServerException:boom"), rec(10.2, 0.0, "error:X:y")]
    s = summarise(records, duration=10.0, cpu=2.5)
    assert (s.requests, s.ok, s.errors) == (103, 100, 3)
    assert s.offered_rps == 10.3 and s.achieved_rps == 10.0
    assert s.errors_by_kind == {"timeout": 1, "error": 2}
    assert [e.split(" ", 3)[3] for e in s.error_samples] == ["timeout", "error:InferenceServerException:boom", "error:X:y"]
    assert s.p50_ms == pytest.approx(50.5) and s.max_ms == 100.0
    assert s.cpu_percent == 25.0 and not s.stopped_early


def test_summary_without_any_success_has_no_latency() -> None:
    s = summarise([rec(0.0, 0.0, "no-ready-endpoint")], duration=1.0, cpu=0.0, stopped_early=True)
    assert s.ok == 0 and math.isnan(s.p99_ms) and s.stopped_early


def test_send_lag_is_the_worst_late_send() -> None:
    s = summarise([rec(0.0, 5.0, lag=0.002), rec(1.0, 5.0, lag=0.120)], duration=2.0, cpu=0.0)
    assert s.max_send_lag_ms == 120.0


def test_csv_round_trip(tmp_path: Path) -> None:
    records = [rec(0.5, 12.345), rec(1.0, 0.0, "timeout")]
    write_csv(tmp_path / "r.csv", records)
    back = read_csv(tmp_path / "r.csv")
    assert [(r.scheduled, r.latency_ms, r.status, r.ok) for r in back] == [
        (0.5, 12.345, "ok", True),
        (1.0, 0.0, "timeout", False),
    ]
    assert back[0].sent_unix == pytest.approx(records[0].sent_unix)
