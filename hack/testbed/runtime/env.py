"""A container's environment as Kubernetes defines it: ``envFrom`` (configMaps, secrets, with their prefix),
``HOSTNAME``, ``KUBERNETES_SERVICE_HOST/PORT`` (the apiserver itself: there is no Service proxy) and ``env``
(``valueFrom`` resolved), later entries overriding earlier ones. What the image or the host adds comes first."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["container_env"]

ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def container_env(
    pod: dict[str, Any],
    spec: dict[str, Any],
    apiserver: tuple[str, int],
    value_from: Callable[[dict[str, Any]], str | None],
    source: Callable[[dict[str, Any]], dict[str, str]],
) -> dict[str, str]:
    """``value_from(valueFrom)`` resolves one variable (None: unset); ``source(envFrom entry)`` gives the keys
    of a configMap or secret (keys that are not variable names are skipped, as the kubelet does)."""
    env: dict[str, str] = {}
    for entry in spec.get("envFrom") or []:
        prefix = entry.get("prefix", "")
        env.update({prefix + k: v for k, v in source(entry).items() if ENV_NAME.match(prefix + k)})
    env.update(
        {
            "HOSTNAME": pod["metadata"]["name"],
            "KUBERNETES_SERVICE_HOST": apiserver[0],
            "KUBERNETES_SERVICE_PORT": str(apiserver[1]),
        }
    )
    for e in spec.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e:
            v = value_from(e["valueFrom"])
            if v is not None:
                env[e["name"]] = v
    return env
