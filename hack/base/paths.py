"""Where things are: the checkout, its virtualenv, run directories, outputs and the shared traces.

Everything is derived from this file's location, so a checkout works at any path.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["E2E_MODELS", "HACK", "OUT", "REPO", "TRACES", "VENV", "run_root", "venv_site_packages"]

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack"
VENV = REPO / ".venv"
OUT = REPO / "out"
E2E_MODELS = REPO / "e2e" / "models"
# the recorded traces the demo and the benchmarks replay (hack/traces/README.md): FORESAIL_TRACES overrides
TRACES = Path(os.environ.get("FORESAIL_TRACES", HACK / "traces"))


def run_root() -> Path:
    """Where clusters keep their run directories: ``FORESAIL_RUN_DIR``, else ``.run/`` in the checkout."""
    return Path(os.environ.get("FORESAIL_RUN_DIR", REPO / ".run"))


def venv_site_packages(venv: Path = VENV) -> list[str]:
    """The virtualenv's site-packages: Triton's Python backend stub imports the models' packages from there."""
    return [str(p) for p in sorted((venv / "lib").glob("python3*/site-packages"))]
