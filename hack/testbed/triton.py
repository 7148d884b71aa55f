"""How the pinned tritonserver runs here: its binary, backends, libraries and the virtualenv's packages
(the Python backend's stub imports numpy and the models' helpers from there)."""

from __future__ import annotations

from hack import tools
from hack.base.paths import venv_site_packages

__all__ = ["tritonserver_command"]


def tritonserver_command(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The argv and environment additions for ``tritonserver ARGS`` (any ``--backend-directory`` is replaced)."""
    t = tools.TOOLS_BY_NAME["triton"].dir
    argv = [str(t / "bin/tritonserver"), f"--backend-directory={t / 'backends'}"]
    argv += [a for a in args if not a.startswith("--backend-directory")]
    return argv, {**tools.triton_env(t), "PYTHONPATH": ":".join(venv_site_packages())}
