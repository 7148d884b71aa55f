from __future__ import annotations

import pytest

from foresail import __version__
from foresail.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert __version__ in capsys.readouterr().out
