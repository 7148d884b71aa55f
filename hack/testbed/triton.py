"""How the pinned tritonserver runs on the host (the runtime's fast mode, calibration): its binary, backends
and libraries; in a private mount namespace where the checkout's virtualenv is the Python backend stub's local
site directory, as the Triton image's packages are (the stub's interpreter ignores PYTHONPATH)."""

from __future__ import annotations

import shlex

from hack import tools
from hack.base.paths import venv_site_packages

__all__ = ["STUB_SITE", "tritonserver_command"]

STUB_SITE = "/usr/local/lib/python3.11/dist-packages"  # Debian's python3.11 (the stub's libpython) looks here


def tritonserver_command(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The argv and environment additions for ``tritonserver ARGS`` (any ``--backend-directory`` is replaced)."""
    t = tools.TOOLS_BY_NAME["triton"].dir
    argv = [str(t / "bin/tritonserver"), f"--backend-directory={t / 'backends'}"]
    argv += [a for a in args if not a.startswith("--backend-directory")]
    (site,) = venv_site_packages()
    bind = f"mkdir -p {STUB_SITE} && mount --bind {shlex.quote(site)} {STUB_SITE} && exec \"$@\""
    return ["unshare", "--mount", "--propagation", "private", "bash", "-c", bind, "bash", *argv], tools.triton_env(t)
