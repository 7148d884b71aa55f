"""Progress of replays on stderr: which simulation of how many, how far, simulated requests per second.

On a terminal, with ``rich`` installed (the ``replay`` extra), live bars (``rich.progress``): one for the
scenario's simulations, one for the simulation running. Elsewhere (CI logs, a pipe), or without ``rich``, one
plain line per finished simulation, so that logs stay readable."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["Bar"]


def _live(stream: TextIO) -> Any:
    """A started ``rich.progress.Progress`` drawing on ``stream``, or None without rich."""
    try:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
    except ImportError:
        return None
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[speed]}"),
        TimeElapsedColumn(),
        console=Console(file=stream, force_terminal=True),
        refresh_per_second=5,
    )
    progress.start()
    return progress


class Bar:
    """``bar.sim(name)`` gives the callback ``simulate`` reports to (``fraction`` done, ``requests`` so far);
    ``close()`` ends the live display (also done when the last simulation finishes)."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label, self.total, self.done = label, max(total, 1), 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self._live: Any = None  # rich.progress.Progress while drawing
        self._overall: Any = None
        self._current: Any = None

    def _start(self) -> bool:
        if self._live is None and self.tty:
            self._live = _live(self.stream)
            if self._live is not None:
                self._overall = self._live.add_task(f"replay {self.label}", total=self.total, speed="")
        return self._live is not None

    def sim(self, name: str) -> Callable[[float, int], None]:
        t0 = time.perf_counter()
        self.done += 1
        live = self.enabled and self._start()
        if live:
            if self._current is not None:
                self._live.remove_task(self._current)
            self._current = self._live.add_task(f"  {self.done}/{self.total} {name}", total=1.0, speed="")

        def report(fraction: float, requests: int) -> None:
            if not self.enabled:
                return
            speed = f"{requests / max(time.perf_counter() - t0, 1e-9) / 1e6:.2f} M req/s"
            if live:
                self._live.update(self._current, completed=fraction, speed=speed)
                if fraction >= 1.0:
                    self._live.update(self._overall, completed=self.done)
                    if self.done >= self.total:
                        self.close()
                return
            if fraction < 1.0:
                return
            self.stream.write(f"[replay {self.label}] {self.done}/{self.total} {name:<12} done {speed}\n")
            self.stream.flush()

        return report

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
