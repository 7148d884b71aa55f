"""The replay's progress: plain lines off a terminal (CI logs), live rich bars on one."""

from __future__ import annotations

import io
import sys

import pytest

from foresail.replay.progress import Bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(bar: Bar, names: list[str]) -> None:
    for name in names:
        report = bar.sim(name)
        for i in range(1, 5):
            report(i / 4, 1000 * i)


def test_off_a_terminal_one_line_per_finished_simulation() -> None:
    out = io.StringIO()
    _run(Bar("steps", 2, stream=out), ["foresail", "kpa"])
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("[replay steps] 1/2 foresail") and " done " in lines[0] and lines[0].endswith("M req/s")
    assert lines[1].startswith("[replay steps] 2/2 kpa")
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_on_a_terminal_live_bars_that_end_with_the_last_simulation() -> None:
    out = _Tty()
    bar = Bar("steps", 2, stream=out)
    _run(bar, ["foresail", "kpa"])
    assert bar._live is None, "the display stops after the last simulation"
    text = out.getvalue()
    assert "replay steps" in text and "2/2 kpa" in text and "100%" in text
    bar.close()  # idempotent


def test_disabled_prints_nothing_and_close_without_start() -> None:
    out = _Tty()
    bar = Bar("steps", 1, stream=out, enabled=False)
    _run(bar, ["foresail"])
    bar.close()
    assert out.getvalue() == ""


def test_on_a_terminal_without_rich_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich.progress", None)  # import rich.progress raises ImportError
    out = _Tty()
    _run(Bar("steps", 1, stream=out), ["foresail"])
    assert out.getvalue().startswith("[replay steps] 1/1 foresail") and "\x1b" not in out.getvalue()
