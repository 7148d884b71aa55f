"""How the demo shows its samples while the trace replays.

On a terminal: a ``rich`` live display, redrawn in place, of a progress bar for the trace replay and a table
with one row per service (the latest sample: time, arrivals, forecast, capacity per replica, desired / replicas
/ ready / warm, queue, p99 against the SLO, the autoscaler's reason) above the last few samples. Elsewhere (CI,
a pipe, ``make demo > log``, ``--plain``): the plain lines of ``timeline`` (``HEADER``, then one ``format_row``
line per sample), unchanged, so that logs stay parseable.

``display_mode``, ``service_cells`` and ``service_table`` are pure; ``Plain`` and ``Rich`` draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, TextIO

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from hack.demo.timeline import HEADER, format_row

__all__ = ["COLUMNS", "Display", "Plain", "Rich", "display", "display_mode", "service_cells", "service_table", "visible_columns"]

Mode = Literal["live", "plain"]
HISTORY = 8  # samples shown under the services' rows

# (title, justify) of the table's columns, in the order of ``service_cells``
COLUMNS: tuple[tuple[str, Literal["left", "right"]], ...] = (
    ("service", "left"),
    ("t", "right"),
    ("rps", "right"),
    ("forecast", "right"),
    ("cap/rep", "right"),
    ("desired", "right"),
    ("replicas", "right"),
    ("ready", "right"),
    ("warm", "right"),
    ("queue", "right"),
    ("p99/SLO", "right"),
    ("reason", "left"),
)
# what each column needs (its title or its widest usual figure), and which go first on a narrow terminal: the
# reason keeps at least REASON_MIN columns, so that it is read, not cut
WIDTHS = {
    "t": 4,
    "rps": 6,
    "forecast": 8,
    "cap/rep": 7,
    "desired": 7,
    "replicas": 8,
    "ready": 5,
    "warm": 4,
    "queue": 5,
    "p99/SLO": 9,
}
DROP_FIRST = ("cap/rep", "ready", "queue", "forecast", "warm", "t")
REASON_MIN = 16
CAPTION = "t: s since the load began; rps (arrivals), forecast, cap/rep (capacity per replica): requests/s; p99, SLO: ms"


def display_mode(isatty: bool, plain: bool = False, term: str | None = None) -> Mode:
    """``live`` on a terminal that can redraw (not ``TERM=dumb``) unless ``--plain`` asks otherwise. Pure."""
    return "live" if isatty and not plain and term != "dumb" else "plain"


def visible_columns(width: int, service_width: int) -> tuple[str, ...]:
    """The columns that fit ``width`` terminal columns with the reason at ``REASON_MIN`` or more, dropping
    those of ``DROP_FIRST`` in its order (the service, replicas, desired, p99 and reason always stay). Pure."""
    shown = [title for title, _ in COLUMNS]

    def need() -> int:  # each column's cells, 3 columns between two (padding, the box's divider, padding)
        return service_width + sum(WIDTHS.get(t, 0) for t in shown) + REASON_MIN + 3 * (len(shown) - 1)

    for title in DROP_FIRST:
        if need() <= width:
            break
        shown.remove(title)
    return tuple(shown)


def _num(v: Any, digits: int = 1) -> str:
    return "-" if v is None else f"{float(v):.{digits}f}"


def _int(v: Any) -> str:
    return "-" if v is None else str(int(v))


def service_cells(name: str, row: Mapping[str, Any], slo_ms: float) -> list[tuple[str, str]]:
    """A sample as the table's cells, ``(text, style)`` in the order of ``COLUMNS``. Pure.

    The p99 is red over the SLO, green within it; the desired replicas are yellow while the Deployment has not
    caught up with them; a fast-path reason (``FastPath``, ``BurstOnset``) is bold."""
    p99, desired, replicas = row.get("p99_ms"), row.get("desired"), row.get("replicas")
    p99_style = "" if p99 is None else ("bold red" if float(p99) > slo_ms else "green")
    return [
        (name, "bold"),
        (f"{float(row['t']):.0f}", ""),
        (_num(row.get("arrival_rps")), ""),
        (_num(row.get("forecast_rps")), ""),
        (_num(row.get("capacity_rps")), ""),
        (_int(desired), "yellow" if desired is not None and desired != replicas else ""),
        (_int(replicas), ""),
        (_int(row.get("ready")), ""),
        (_int(row.get("warm")), ""),
        (_num(row.get("queue"), 0), ""),
        (f"{_num(p99, 0)} / {slo_ms:.0f}", p99_style),
        (str(row.get("reason") or ""), "bold" if row.get("fast") else ""),
    ]


def service_table(
    latest: Mapping[str, Mapping[str, Any]], history: Sequence[Mapping[str, Any]], slo_ms: float, width: int = 200
) -> Table:
    """One row per service (its latest sample), then the last samples (oldest first, dimmed), in the columns
    that fit ``width``. Pure."""
    shown = visible_columns(width, max((len(name) for name in latest), default=7))
    keep = [i for i, (title, _) in enumerate(COLUMNS) if title in shown]
    table = Table(
        title="the service as the autoscaler sees it (its status, every 2 s)",
        title_justify="left",
        caption=CAPTION,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for title, justify in (COLUMNS[i] for i in keep):
        if title == "reason":  # the longest cell: it folds onto a second line before the figures are cut
            table.add_column(title, justify=justify, min_width=REASON_MIN, overflow="fold")
        else:
            table.add_column(title, justify=justify, no_wrap=True)
    for name, row in latest.items():
        cells = service_cells(name, row, slo_ms)
        table.add_row(*(Text(cells[i][0], style=cells[i][1]) for i in keep))
    if history:
        table.add_section()
        for row in history[-HISTORY:]:
            cells = service_cells("", row, slo_ms)
            table.add_row(*(Text(cells[i][0], style=f"dim {cells[i][1]}".strip()) for i in keep))
    return table


class Display(Protocol):
    def start(self) -> None: ...
    def sample(self, name: str, row: dict[str, Any]) -> None: ...
    def tick(self, elapsed_s: float) -> None: ...
    def stop(self) -> None: ...


class Plain:
    """Today's lines: the header, then one line per sample."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def start(self) -> None:
        print(HEADER, file=self.stream, flush=True)

    def sample(self, name: str, row: dict[str, Any]) -> None:
        print(format_row(row), file=self.stream, flush=True)

    def tick(self, elapsed_s: float) -> None:
        pass

    def stop(self) -> None:
        pass


class Rich:
    """The live display: the trace replay's bar over the services' table, redrawn in place."""

    def __init__(
        self, stream: TextIO, seconds: float, slo_ms: float, label: str, compress: float, width: int | None = None
    ) -> None:
        self.seconds, self.slo_ms, self.compress = seconds, slo_ms, compress
        self.latest: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[where]}"),
            TimeElapsedColumn(),
        )
        self.task = self.progress.add_task(label, total=seconds, where="")
        self.console = Console(file=stream, width=width)
        self.live = Live(self._render(), console=self.console, refresh_per_second=4)

    def _render(self) -> Group:
        return Group(self.progress, service_table(self.latest, self.history[:-1], self.slo_ms, self.console.width))

    def start(self) -> None:
        self.live.start()

    def sample(self, name: str, row: dict[str, Any]) -> None:
        self.latest[name] = row
        self.history.append(row)
        self.live.update(self._render())

    def tick(self, elapsed_s: float) -> None:
        done = min(elapsed_s, self.seconds)
        where = f"{done:.0f}/{self.seconds:.0f} s of load, {done * self.compress:.0f} s of the trace"
        self.progress.update(self.task, completed=done, where=where)

    def stop(self) -> None:
        self.live.stop()  # the last frame stays on the screen


def display(
    mode: Mode, stream: TextIO, seconds: float, slo_ms: float, label: str, compress: float, width: int | None = None
) -> Display:
    """``width``: the terminal's columns (None: as the terminal says)."""
    return Rich(stream, seconds, slo_ms, label, compress, width) if mode == "live" else Plain(stream)
