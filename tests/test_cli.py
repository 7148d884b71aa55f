from __future__ import annotations

from pathlib import Path

import pytest

from foresail import __version__
from foresail.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_replay_from_prometheus_names_a_missing_credential_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = f"{tmp_path}/no-token"
    argv = ["replay", "--from-prometheus", "https://prom.example:9090", "--service", "a/b", "--no-png",
            "--prometheus-bearer-token-file", missing]  # fmt: skip
    assert main(argv) == 2
    assert missing in capsys.readouterr().err


def test_operator_refuses_to_start_without_its_prometheus_credentials(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = f"{tmp_path}/no-ca"
    monkeypatch.setenv("FORESAIL_PROMETHEUS_CA_FILE", missing)
    assert main(["run", "--no-leader-election"]) == 2
    err = capsys.readouterr().err
    assert "Prometheus credentials" in err and missing in err
