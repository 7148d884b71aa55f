"""What a rollout's replica plan costs on replayed replicas (pure): named cases on small step functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foresail.api.rollout import RolloutStep
from foresail.cli import main
from foresail.replay.rollout import parse_steps, rollout_cost

STEPS = [RolloutStep(percent=10, min_seconds=100), RolloutStep(percent=50, min_seconds=100)]

# name, replicas over time, cold start -> per row: (step, baseline, stable, canary, starting)
CASES: list[tuple[str, list[tuple[float, int]], float, list[tuple[str, float, float, float, float]]]] = [
    ("10 replicas, no cold start: the split costs nothing", [(0, 10)], 0.0,
     [("1", 1000, 900, 100, 0), ("2", 1000, 500, 500, 0), ("promote", 0, 0, 0, 0)]),
    ("10 replicas, 10 s cold start: each canary replica added holds one stable replica 10 s longer", [(0, 10)], 10.0,
     [("1", 1000, 900, 100, 10), ("2", 1000, 500, 500, 40), ("promote", 100, 50, 100, 0)]),
    ("1 replica: the surge replica all along", [(0, 1)], 0.0, [("1", 100, 100, 100, 0), ("2", 100, 100, 100, 0), ("promote", 0, 0, 0, 0)]),
    ("the total grows mid-step: the split follows it", [(0, 2), (150, 4)], 0.0,
     [("1", 200, 100, 100, 0), ("2", 300, 150, 150, 0), ("promote", 0, 0, 0, 0)]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "replicas", "cold", "want"), CASES, ids=[c[0] for c in CASES])
def test_rollout_cost(
    name: str, replicas: list[tuple[float, int]], cold: float, want: list[tuple[str, float, float, float, float]]
) -> None:
    rows = rollout_cost(replicas, 0.0, STEPS, cold)
    got = [(r.step, r.baseline_replica_s, r.stable_replica_s, r.canary_replica_s, r.starting_replica_s) for r in rows]
    assert got == [pytest.approx(w) for w in want], name
    for r in rows:
        assert r.extra_replica_s == pytest.approx(r.stable_replica_s + r.canary_replica_s + r.starting_replica_s - r.baseline_replica_s)


def test_rows_follow_the_steps_in_time() -> None:
    rows = rollout_cost([(0, 3)], 50.0, STEPS, 5.0)
    assert [(r.step, r.percent, r.start_s, r.end_s) for r in rows] == [("1", 10, 50, 150), ("2", 50, 150, 250), ("promote", 100, 250, 255)]


PARSE = [
    ("two steps", "10:60,50:120", [(10, 60), (50, 120)]),
    ("seconds default to 60", "20", [(20, 60)]),
]


@pytest.mark.parametrize(("name", "text", "want"), PARSE, ids=[p[0] for p in PARSE])
def test_parse_steps(name: str, text: str, want: list[tuple[int, int]]) -> None:
    assert [(s.percent, s.min_seconds) for s in parse_steps(text)] == want, name


@pytest.mark.parametrize(
    ("text", "message"),
    [("ten:60", "'ten:60' is not PERCENT:SECONDS"), ("50:60,10:60", "percent must increase"), ("0:60", "greater than or equal to 1")],
    ids=["not a number", "not increasing", "zero percent"],
)
def test_parse_steps_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_steps(text)


def test_replay_with_a_rollout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("timestamp\n" + "\n".join(f"{i / 30:.4f}" for i in range(30 * 40)) + "\n")
    out = tmp_path / "out"
    rc = main(["replay", "--trace", str(trace), "--policies", "static", "--cold-start", "2", "--rollout", "10:10,50:10",
               "--rollout-at", "5", "--name", "r", "--out", str(out), "--no-png"])  # fmt: skip
    assert rc == 0
    ro = json.loads((out / "r.json").read_text())["rollout"]
    assert ro["policy"] == "static"
    assert [(s["step"], s["percent"], s["start_s"], s["end_s"]) for s in ro["steps"]] == [
        ("1", 10, 5.0, 15.0), ("2", 50, 15.0, 25.0), ("promote", 100, 25.0, 27.0)
    ]  # fmt: skip
    assert ro["rollout_replica_s"] >= ro["baseline_replica_s"] > 0
    assert "### Rollout on static's replicas" in (out / "r.md").read_text()
    assert "| promote | 100 |" in capsys.readouterr().out


def test_replay_refuses_a_bad_rollout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("timestamp\n0\n1\n")
    assert main(["replay", "--trace", str(trace), "--rollout", "50,10", "--out", str(tmp_path), "--no-png"]) == 2
    assert "percent must increase" in capsys.readouterr().err
