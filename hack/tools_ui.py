"""The tool builder's progress (``hack/tools.py ensure``): plain log lines, or, on a terminal where ``rich`` can be
imported (run from the virtualenv), the same lines above live rows: which tool of how many, the step running (the
command), its elapsed time and the bytes it has downloaded so far (the Go module cache's growth).

Standard library only but for the one guarded import of ``rich`` inside ``RichUI`` (import-linter's
``stdlib-only`` contract lets this module alone import it): it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

from hack.base.log import logger

__all__ = ["PlainUI", "RichUI", "UiMode", "human_bytes", "step_label", "tree_bytes", "ui_mode", "watched_downloads"]

_plain_log = logger("tools")
UiMode = Literal["rich", "plain"]


def ui_mode(isatty: bool, rich_importable: bool, term: str | None = None) -> UiMode:
    """``rich`` live progress on a terminal that can redraw when rich can be imported, else plain lines. Pure."""
    return "rich" if isatty and rich_importable and term != "dumb" else "plain"


def tree_bytes(path: Path) -> int:
    """The bytes of the regular files under ``path`` (0 when it does not exist; files vanishing meanwhile skipped)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def human_bytes(n: int) -> str:
    """``512 B``, ``1.5 MB`` (decimal units, as download tools print them). Pure."""
    if n < 1000:
        return f"{n} B"
    size = float(n)
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def step_label(cmd: list[str], limit: int = 56) -> str:
    """A command as the live step's one-line description: the program, its leading words (the verb) and its
    last argument (what it names; a file by its name), ``...`` for what lies between; at most ``limit``
    characters. Pure."""
    if not cmd:
        return ""
    prog, args = os.path.basename(cmd[0]), cmd[1:]
    if args[:2] == ["-m", "pip"]:
        prog, args = "pip", args[2:]
    verbs = []
    for a in args:
        if a.startswith("-"):
            break
        verbs.append(a)
    rest = args[len(verbs) :]
    last = [os.path.basename(rest[-1]) if rest[-1].startswith("/") else rest[-1]] if rest and not rest[-1].startswith("-") else []
    label = " ".join([prog, *verbs, *(["...", *last] if last else [])])
    return label if len(label) <= limit else label[: limit - 1] + "…"


class PlainUI:
    """The log lines alone: ``[tools HH:MM:SS] message``."""

    def log(self, msg: str) -> None:
        _plain_log(msg)

    def tool(self, k: int, n: int, name: str) -> None:
        pass

    def run(self, cmd: list[str], cwd: Path | None, env: dict[str, str], watch: list[Path]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True, check=False)

    def done(self) -> None:
        pass

    def close(self) -> None:
        pass


class RichUI:
    """The same log lines, above two live rows: the tools (k of n) and the step running (its elapsed time and
    bytes downloaded)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=Console(file=sys.stdout),
            refresh_per_second=4,
        )
        self.total = total
        self.tools = self.progress.add_task(f"tools 0/{total}", total=total, note="")
        self.step: Any = None
        self.steps = 0
        self.name = ""
        self.progress.start()

    def log(self, msg: str) -> None:
        self.progress.console.print(f"[tools {time.strftime('%H:%M:%S')}] {msg}", markup=False, highlight=False)

    def tool(self, k: int, n: int, name: str) -> None:
        self.progress.update(self.tools, completed=k - 1, description=f"tool {k}/{n}: {name}", note=f"{k - 1} built")
        self.name, self.steps = name, 0

    def run(self, cmd: list[str], cwd: Path | None, env: dict[str, str], watch: list[Path]) -> subprocess.CompletedProcess[str]:
        watch = watch or watched_downloads(cmd, env)
        self.steps += 1
        label = f"{self.name}: step {self.steps}: {step_label(cmd)}" if self.name else step_label(cmd)
        if self.step is not None:
            self.progress.remove_task(self.step)
        self.step = self.progress.add_task(label, total=None, note="")
        base = sum(tree_bytes(w) for w in watch)
        got = 0  # the most the watched directories grew by: a file moved from one to another counts once

        def downloaded() -> str:
            nonlocal got
            got = max(got, sum(tree_bytes(w) for w in watch) - base)
            return f"{human_bytes(got)} downloaded" if watch else ""

        proc = subprocess.Popen(cmd, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t0 = time.monotonic()
        while True:
            try:
                out, err = proc.communicate(timeout=0.5)  # retrying loses no output (subprocess's documentation)
                break
            except subprocess.TimeoutExpired:
                self.progress.update(self.step, note=downloaded())
        seconds = time.monotonic() - t0
        # finished: its elapsed time stops, its spinner turns to a tick; the row stays until the next step
        self.progress.update(self.step, total=1, completed=1, note=downloaded())
        self.progress.refresh()  # drawn now: a step shorter than a refresh would otherwise never show its bytes
        if seconds >= 5:
            self.log(f"  {seconds:.0f}s" + (f", {downloaded()}" if watch else ""))
        return subprocess.CompletedProcess(cmd, proc.returncode if proc.returncode is not None else 1, out, err)

    def done(self) -> None:
        self.progress.update(self.tools, completed=self.total, description=f"tools {self.total}/{self.total}", note="all built")

    def close(self) -> None:
        if self.step is not None:
            self.progress.remove_task(self.step)
            self.step = None
        self.progress.stop()


def watched_downloads(cmd: list[str], env: dict[str, str]) -> list[Path]:
    """Where a ``go`` command's downloads land, to count their bytes: the module cache's ``cache/download``."""
    if cmd and os.path.basename(cmd[0]) == "go":
        proc = subprocess.run(["go", "env", "GOMODCACHE"], env=env, capture_output=True, text=True, check=False)
        return [Path(proc.stdout.strip()) / "cache" / "download"] if proc.returncode == 0 and proc.stdout.strip() else []
    return []
