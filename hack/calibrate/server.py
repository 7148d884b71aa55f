"""One tritonserver on loopback (free ports), serving one model, for calibration and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hack import tools
from hack.base.proc import free_port
from hack.base.wait import wait_for
from hack.testbed.triton import tritonserver_command

__all__ = ["LocalTriton", "start_triton"]


@dataclass
class LocalTriton:
    proc: subprocess.Popen[bytes]
    http: int
    grpc: int
    metrics: int
    log: Path

    def stop(self, timeout: float = 30.0) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=timeout)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def start_triton(repo: Path, model: str, env: dict[str, str]) -> LocalTriton:
    """Start tritonserver on ``repo`` with ``model`` loaded and wait (up to 60 s) until the model is ready."""
    tools.TOOLS_BY_NAME["triton"].ensure()
    http, grpc, metrics = free_port(), free_port(), free_port()
    logf = Path(tempfile.mkstemp(prefix="foresail-triton-", suffix=".log")[1])
    argv, triton_env = tritonserver_command([
        f"--model-repository={repo}", "--model-control-mode=explicit", f"--load-model={model}", f"--http-port={http}",
        f"--grpc-port={grpc}", f"--metrics-port={metrics}", "--http-address=127.0.0.1", "--grpc-address=127.0.0.1",
        "--metrics-address=127.0.0.1", "--allow-gpu-metrics=false", "--exit-timeout-secs=5",
    ])  # fmt: skip
    with logf.open("ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **env, **triton_env}
        )
    server = LocalTriton(proc, http, grpc, metrics, logf)

    def exited() -> str | None:
        return None if proc.poll() is None else f"tritonserver exited; log: {logf}"

    try:
        wait_for(f"model {model} ready (log: {logf})", lambda: _ready(f"http://127.0.0.1:{http}/v2/models/{model}/ready"),
                 timeout=60, interval=0.2, abort=exited)  # fmt: skip
    except (AssertionError, RuntimeError) as e:
        proc.kill()
        raise SystemExit(f"calibrate: {e}") from e
    return server
