"""The synthetic 24-hour trace: envelope, construction from one-hour traces, cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from foresail.replay import day
from foresail.replay.traces import TraceError


@pytest.mark.parametrize(
    ("name", "hour", "share"),
    [("trough at 04:00", 4.0, 0.15), ("peak at 16:00", 16.0, 1.0), ("halfway at 10:00", 10.0, 0.575)],
)
def test_envelope(name: str, hour: float, share: float) -> None:
    assert float(day.envelope(np.array([hour * 3600.0]))[0]) == pytest.approx(share), name


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FORESAIL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FORESAIL_TRACES", raising=False)
    traces = tmp_path / "checkout" / "hack" / "traces"
    traces.mkdir(parents=True)
    rows = "\n".join(f"{t / 10:.1f},{10 + t % 7},{1 + t % 3}" for t in range(0, 36000, 7))  # a request every 0.7 s
    for name in day.FILES.values():
        (traces / name).write_text("timestamp,ContextTokens,GeneratedTokens\n" + rows + "\n")
    return traces


def test_a_day_follows_the_envelope_and_is_cached(folder: Path, tmp_path: Path) -> None:
    arr = day.synthetic_day(folder, conv_copies=4, code_copies=4, seed=1, hours=24)
    per_hour = np.bincount((arr.times // 3600).astype(np.int64), minlength=24)
    assert per_hour.argmax() in range(13, 20)
    assert per_hour.argmin() in range(1, 8)
    assert per_hour.max() > 3 * per_hour.min()
    assert list(arr.times) == sorted(arr.times)
    cached = list((tmp_path / "cache" / "traces").glob("day-conv4-code4-h24-seed1*.npz"))
    assert len(cached) == 1
    assert day.synthetic_day(folder, conv_copies=4, code_copies=4, seed=1, hours=24) == arr
    assert day.synthetic_day(folder, conv_copies=4, code_copies=4, seed=2, hours=24) != arr


def test_bad_inputs_name_the_problem(folder: Path) -> None:
    with pytest.raises(TraceError, match="at least one source"):
        day.synthetic_day(folder, conv_copies=0, code_copies=0)
    with pytest.raises(TraceError, match=r"hours 1\.\.24"):
        day.synthetic_day(folder, hours=25)


def test_the_traces_are_found_from_anywhere_in_the_checkout(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    below = folder.parent.parent / "operator" / "foresail"
    below.mkdir(parents=True)
    assert day.find_traces(below) == folder
    monkeypatch.setenv("FORESAIL_TRACES", "/elsewhere")
    assert day.find_traces(below) == Path("/elsewhere")
