"""One log line format for every program in hack/: ``[name HH:MM:SS] message``, flushed at once."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

__all__ = ["Log", "logger"]

Log = Callable[[str], None]


def logger(name: str, stderr: bool = False) -> Log:
    """A ``log(message)`` function for the program ``name`` (to stdout, or stderr where stdout carries results)."""

    def log(msg: str) -> None:
        print(f"[{name} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr if stderr else sys.stdout, flush=True)

    return log
