"""``foresail replay``: options, outputs and the message when the replay extra is missing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from foresail.cli import main
from foresail.replay.policies import KNOBS


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    # 40 s at ~30 rps with a 3 s burst of ~200 rps at 25 s
    times = [i / 30 for i in range(30 * 40)] + [25 + i / 200 for i in range(600)]
    path = tmp_path / "trace.csv"
    path.write_text("timestamp\n" + "\n".join(f"{t:.4f}" for t in sorted(times)) + "\n")
    return path


def test_replay_with_prior_routing_bounded_queue_and_seeds(trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main([
        "replay", "--trace", str(trace), "--start", "15", "--prior-seconds", "15", "--rate-scale", "2",
        "--routing", "least-outstanding", "--queue-max", "8", "--queue-timeout-ms", "200", "--seeds", "2",
        "--policies", "hpa,static,oracle", "--cold-start", "2", "--name", "t", "--out", str(out), "--no-png",
    ])  # fmt: skip
    assert rc == 0
    summary = json.loads((out / "t.json").read_text())
    assert summary["routing"] == "least-outstanding"
    assert summary["prior_s"] == 15.0
    assert summary["seeds"] == [1, 2]
    assert summary["queue"] == {"max": 8, "timeout_ms": 200.0}
    assert set(summary["policies"]) == {"hpa", "static", "oracle"}
    assert set(summary["policies"]["hpa"]["within_slo"]) == {"mean", "min", "max"}
    assert len(summary["per_seed"]) == 2
    md = (out / "t.md").read_text()
    assert "routing **least-outstanding**" in md and "over seeds [1, 2]" in md
    assert "| hpa |" in capsys.readouterr().out


def test_replay_frontier_writes_the_frontier_figure(trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc = main(["replay", "--trace", str(trace), "--start", "10", "--prior-seconds", "10", "--policies", "static,oracle",
               "--frontier", "--cold-start", "2", "--name", "f", "--out", str(out)])  # fmt: skip
    assert rc == 0
    summary = json.loads((out / "f.json").read_text())
    assert [p["knob"] for p in summary["frontier"]["static"]] == list(KNOBS["static"].grid)
    assert summary["policies"]["oracle"]["gpu_vs_oracle"] == 1.0
    assert (out / "f.png").is_file() and (out / "f-frontier.png").is_file()


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("unknown policy", ["--policies", "magic"], "unknown policy 'magic'"),
        ("bad seeds", ["--seeds", "0"], "--seeds must be >= 1"),
        ("missing trace", ["--trace", "/nonexistent.csv"], "No such file"),
    ],
)
def test_bad_replay_options_name_the_problem(
    name: str, args: list[str], message: str, trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["replay", "--trace", str(trace), "--out", str(tmp_path), "--no-png"]
    assert main(base + args) == 2, name
    assert message in capsys.readouterr().err


def test_without_the_replay_extra_it_says_how_to_install_it(
    trace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numba" else real(name, *a))
    assert main(["replay", "--trace", str(trace)]) == 2
    assert "pip install 'foresail[replay]'" in capsys.readouterr().err
