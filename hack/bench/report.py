"""Where a benchmark's figures go: ``<stem>.json`` and ``<stem>.md`` in the output directory; the table printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["write_report"]


def write_report(out: Path, stem: str, result: dict[str, Any], markdown: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (out / f"{stem}.md").write_text(markdown)
    print(markdown, flush=True)
