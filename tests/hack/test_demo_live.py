"""The demo's display: live table on a terminal, today's plain lines elsewhere."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from hack.demo.live import (
    COLUMNS,
    HISTORY,
    REASON_MIN,
    Plain,
    Rich,
    display,
    display_mode,
    service_cells,
    service_table,
    visible_columns,
)
from hack.demo.timeline import HEADER, format_row


@pytest.mark.parametrize(
    ("isatty", "plain", "term", "expect"),
    [
        pytest.param(True, False, "xterm-256color", "live", id="terminal"),
        pytest.param(True, False, None, "live", id="terminal, TERM unset"),
        pytest.param(False, False, "xterm-256color", "plain", id="pipe or file (make demo > log, CI)"),
        pytest.param(True, True, "xterm", "plain", id="terminal with --plain"),
        pytest.param(True, False, "dumb", "plain", id="dumb terminal (cannot redraw)"),
        pytest.param(False, True, None, "plain", id="pipe with --plain"),
    ],
)
def test_display_mode(isatty: bool, plain: bool, term: str | None, expect: str) -> None:
    assert display_mode(isatty, plain, term) == expect


ROW: dict[str, Any] = {
    "t": 12.3, "replicas": 3, "warm": 2, "ready": 2, "desired": 3, "arrival_rps": 150.54, "forecast_rps": 170.0, "queue": 1,
    "p99_ms": 88.4, "fast": False, "capacity_rps": 100.0, "reason": "ForecastDemand",
}  # fmt: skip


@pytest.mark.parametrize(
    ("row", "expect"),
    [
        pytest.param(
            ROW,
            {"service": ("default/demo", "bold"), "t": ("12", ""), "rps": ("150.5", ""), "forecast": ("170.0", ""),
             "cap/rep": ("100.0", ""), "desired": ("3", ""), "replicas": ("3", ""), "ready": ("2", ""),
             "warm": ("2", ""), "queue": ("1", ""), "p99/SLO": ("88 / 150", "green"), "reason": ("ForecastDemand", "")},
            id="settled, p99 within the SLO",
        ),
        pytest.param(
            {**ROW, "p99_ms": 151.0, "desired": 5, "fast": True, "reason": "FastPath"},
            {"p99/SLO": ("151 / 150", "bold red"), "desired": ("5", "yellow"), "reason": ("FastPath", "bold")},
            id="over the SLO, scaling up on the fast path",
        ),
        pytest.param(
            {"t": 0.0, "replicas": 0, "warm": 0, "ready": 0, "desired": None, "arrival_rps": None, "forecast_rps": None,
             "queue": None, "p99_ms": None, "capacity_rps": None, "fast": False, "reason": "p99: no series"},
            {"rps": ("-", ""), "forecast": ("-", ""), "desired": ("-", ""), "queue": ("-", ""),
             "p99/SLO": ("- / 150", ""), "reason": ("p99: no series", "")},
            id="no metrics yet",
        ),
    ],
)  # fmt: skip
def test_service_cells(row: dict[str, Any], expect: dict[str, tuple[str, str]]) -> None:
    cells = dict(zip([title for title, _ in COLUMNS], service_cells("default/demo", row, 150.0), strict=True))
    assert {k: cells[k] for k in expect} == expect


def _text(renderable: Any) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(renderable)
    return out.getvalue()


@pytest.mark.parametrize(
    ("history", "shown"),
    [
        pytest.param(0, [], id="first sample: the service's row only"),
        pytest.param(3, [0, 1, 2], id="a few samples under it"),
        pytest.param(HISTORY + 4, list(range(4, HISTORY + 4)), id="only the last HISTORY samples"),
    ],
)
def test_service_table(history: int, shown: list[int]) -> None:
    rows = [{**ROW, "t": 1000.0 + i} for i in range(history)]
    text = _text(service_table({"default/demo": {**ROW, "t": 2000.0}}, rows, 150.0))
    assert "default/demo" in text and "2000" in text and "p99/SLO" in text
    assert [i for i in range(history) if f"{1000 + i}" in text] == shown


def test_plain_display_prints_todays_lines() -> None:
    out = io.StringIO()
    show = display("plain", out, 150.0, 150.0, "replay", 6.0)
    assert isinstance(show, Plain)
    show.start()
    show.tick(1.0)
    show.sample("default/demo", ROW)
    show.stop()
    assert out.getvalue() == f"{HEADER}\n{format_row(ROW)}\n"


def test_live_display_draws_the_bar_and_the_table() -> None:
    out = io.StringIO()
    show = display("live", out, 150.0, 150.0, "replay conv", 6.0, width=160)
    show.start()
    show.sample("default/demo", ROW)
    show.tick(75.0)
    show.stop()
    text = out.getvalue()
    assert "replay conv" in text and "75/150 s of load, 450 s of the trace" in text
    assert "default/demo" in text and "ForecastDemand" in text


ALL = tuple(title for title, _ in COLUMNS)


@pytest.mark.parametrize(
    ("width", "expect"),
    [
        pytest.param(200, ALL, id="wide terminal: every column"),
        pytest.param(130, ALL, id="130 columns: every column"),
        pytest.param(120, tuple(t for t in ALL if t != "cap/rep"), id="120 columns: the capacity goes first"),
        pytest.param(110, tuple(t for t in ALL if t not in ("cap/rep", "ready")), id="110 columns: then ready"),
        pytest.param(80, ("service", "t", "rps", "desired", "replicas", "p99/SLO", "reason"), id="80 columns: the essentials"),
        pytest.param(40, ("service", "rps", "desired", "replicas", "p99/SLO", "reason"), id="too narrow: never fewer"),
    ],
)
def test_visible_columns(width: int, expect: tuple[str, ...]) -> None:
    assert visible_columns(width, len("default/demo")) == expect


@pytest.mark.parametrize("width", [200, 130, 120, 110, 100, 90, 80])
def test_the_reason_is_never_cut_below_its_minimum(width: int) -> None:
    """What ``visible_columns`` estimates, rich's layout confirms: every figure whole, the reason at REASON_MIN+."""
    show = Rich(io.StringIO(), 150.0, 150.0, "replay conv trace", 6.0, width=width)
    show.sample("default/demo", {**ROW, "reason": "ForecastDemand", "p99_ms": 1234.5, "arrival_rps": 1234.5})
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(show._render())
    text = out.getvalue()
    assert "ForecastDemand" in text and "1234.5" in text and "1234 / 150" in text and "…" not in text
    assert len("ForecastDemand") <= REASON_MIN


class _Kube:
    def __init__(self, fail_first: int) -> None:
        self.calls, self.fail_first = 0, fail_first

    def api(self, method: str, path: str) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise ConnectionError("apiserver not there yet")
        if "/deployments/" in path:
            return {"spec": {"replicas": 2}}
        return {"status": {"desiredReplicas": 2, "observed": {"arrivalRps": 10.0}, "recommendation": {"reason": "BaseDemand"}}}


class _Gen:
    """A load generator that runs for ``polls`` polls."""

    def __init__(self, polls: int) -> None:
        self.polls = polls

    def poll(self) -> int | None:
        self.polls -= 1
        return None if self.polls > 0 else 0


@pytest.mark.parametrize("mode", ["plain", "live"])
def test_the_sampling_loop_shows_every_sample_it_returns(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from hack.demo import __main__ as run

    monkeypatch.setattr(run, "SAMPLE_S", 0.01)
    cluster = type("C", (), {"kube": _Kube(fail_first=1)})()
    out = io.StringIO()
    show = display("live" if mode == "live" else "plain", out, 1.0, 150.0, "replay conv trace", 6.0, width=160)
    rows = run.live_table(cluster, _Gen(polls=40), 1.0, show)  # type: ignore[arg-type]
    assert rows and all(r["replicas"] == 2 and r["desired"] == 2 and r["reason"] == "BaseDemand" for r in rows)
    if mode == "plain":
        assert out.getvalue().splitlines() == [HEADER, *(format_row(r) for r in rows)]
    else:
        assert "default/demo" in out.getvalue() and "BaseDemand" in out.getvalue()
