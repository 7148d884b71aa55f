"""What a container runs here: Triton images run the pinned tritonserver, the Foresail image ``python -m
foresail`` from the checkout's virtualenv; and the environment the container gets."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hack.base.paths import VENV
from hack.testbed.triton import tritonserver_command

__all__ = ["UnsupportedCommand", "container_command", "container_env"]


class UnsupportedCommand(Exception):
    """A command the image cannot run locally (a Triton image running something other than tritonserver)."""


def container_command(kind: str | None, spec: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """argv and environment additions for container ``spec`` of image ``kind`` (``triton`` or ``foresail``)."""
    argv = list(spec.get("command") or []) + list(spec.get("args") or [])
    if kind == "triton":
        if argv and not argv[0].startswith("-"):
            if Path(argv[0]).name != "tritonserver":
                raise UnsupportedCommand(f"Triton image command {argv[0]!r}: only tritonserver runs locally")
            argv = argv[1:]
        return tritonserver_command(argv)
    python = str(VENV / "bin/python")
    if argv and Path(argv[0]).name == "foresail":
        return [python, "-m", "foresail", *argv[1:]], {}
    if argv and Path(argv[0]).name.startswith("python"):
        return [python, *argv[1:]], {}
    return [python, "-m", "foresail", *argv], {}


def container_env(
    pod: dict[str, Any],
    spec: dict[str, Any],
    apiserver: tuple[str, int],
    value_from: Callable[[dict[str, Any]], str | None],
) -> dict[str, str]:
    """The kubelet's environment: the basics, ``KUBERNETES_SERVICE_HOST/PORT`` (the apiserver itself: there
    is no Service proxy) and the container's ``env`` (``valueFrom`` resolved by ``value_from``)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "HOSTNAME": pod["metadata"]["name"],
        "KUBERNETES_SERVICE_HOST": apiserver[0],
        "KUBERNETES_SERVICE_PORT": str(apiserver[1]),
    }
    for e in spec.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e:
            v = value_from(e["valueFrom"])
            if v is not None:
                env[e["name"]] = v
    return env
