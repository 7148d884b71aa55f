"""A progress bar on stderr for replays: which simulation of how many, how far, simulated requests per second."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Bar"]


class Bar:
    """``bar.sim(name)`` gives the callback ``simulate`` reports to; on a terminal it redraws in place at most
    every 0.2 s, elsewhere (logs) it prints one line per finished simulation."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label, self.total, self.done = label, max(total, 1), 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()

    def sim(self, name: str) -> Callable[[float, int], None]:
        t0 = time.perf_counter()
        self.done += 1

        def report(fraction: float, requests: int) -> None:
            if not self.enabled or (not self.tty and fraction < 1.0):
                return
            speed = requests / max(time.perf_counter() - t0, 1e-9) / 1e6
            bar = "#" * round(30 * fraction) + "." * (30 - round(30 * fraction))
            line = f"[replay {self.label}] {self.done}/{self.total} {name:<12} [{bar}] {100 * fraction:3.0f}% {speed:.2f} M req/s"
            if self.tty:
                self.stream.write("\r" + line + ("\n" if fraction >= 1.0 and self.done >= self.total else ""))
            else:
                self.stream.write(line + "\n")
            self.stream.flush()

        return report
