"""The operator process's settings: every environment variable ``foresail run`` reads, parsed once at start.

Each setting names its variable, default, allowed values and meaning; a bad value stops the process
at start with an error that names the variable and what it allows, e.g.
``FORESAIL_LOOP_SECONDS=0.1: must be a number in [1, 300]``. The Helm chart sets these variables
from its values (``charts/foresail/values.yaml``; a unit test keeps the two consistent).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["SETTINGS", "OperatorSettings", "Setting", "SettingsError"]


class SettingsError(ValueError):
    """An environment variable holds a value the operator cannot use."""


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    allowed: str  # in words, for errors and docs
    doc: str
    parse: Callable[[str], Any]  # raises ValueError when the value is not allowed
    minimum: float | None = None
    maximum: float | None = None

    def read(self, env: Mapping[str, str]) -> Any:
        raw = env.get(self.env, "")
        value = raw if raw.strip() else self.default
        try:
            return self.parse(value.strip())
        except ValueError:
            raise SettingsError(f"{self.env}={raw}: must be {self.allowed}") from None


def _number(lo: float, hi: float) -> Callable[[str], float]:
    def parse(s: str) -> float:
        x = float(s)
        if not lo <= x <= hi:  # also refuses NaN
            raise ValueError(s)
        return x

    return parse


def _matching(pattern: str) -> Callable[[str], str]:
    def parse(s: str) -> str:
        if not re.fullmatch(pattern, s):
            raise ValueError(s)
        return s

    return parse


def _duration(lo_s: int, hi_s: int) -> Callable[[str], str]:
    def parse(s: str) -> str:
        m = re.fullmatch(r"([0-9]+)(s|m)", s)
        if not m or not lo_s <= int(m[1]) * (60 if m[2] == "m" else 1) <= hi_s:
            raise ValueError(s)
        return s

    return parse


def _one_of(*allowed: str) -> Callable[[str], str]:
    def parse(s: str) -> str:
        if s not in allowed:
            raise ValueError(s)
        return s

    return parse


def _level(s: str) -> str:
    if s.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(s)
    return s.upper()


SETTINGS: dict[str, Setting] = {
    "prometheus_url": Setting(
        "FORESAIL_PROMETHEUS_URL",
        "",
        "empty or an http:// or https:// URL",
        "Prometheus the autoscaler queries for Triton's metrics (and eval workers yield by); empty: "
        "services hold their replicas, tenant quotas still apply.",
        _matching(r"(https?://\S+)?"),
    ),
    "rate_window": Setting(
        "FORESAIL_RATE_WINDOW",
        "30s",
        "a duration in s or m from 2s to 10m (e.g. 30s)",
        "PromQL rate window of the arrival-rate history that warms the forecaster after a restart (at least "
        "two scrape intervals).",
        _duration(2, 600),
    ),
    "metrics_source": Setting(
        "FORESAIL_METRICS_SOURCE",
        "prometheus",
        "prometheus or direct",
        "Where the autoscaler reads Triton's counters: prometheus (raw samples, one query per pass), or "
        "direct (each serving replica's :8002/metrics every second, falling back to Prometheus per service; "
        "for a Prometheus that scrapes too seldom for a 2 s window). Status says which was used.",
        _one_of("prometheus", "direct"),
    ),
    "metrics_stale_seconds": Setting(
        "FORESAIL_METRICS_STALE_SECONDS",
        "10",
        "a number in [2, 600]",
        "A serving replica without a sample this recent makes its service's signals partial (or stale): "
        "MetricsAvailable=False and the replicas hold. At least a few scrape intervals.",
        _number(2, 600),
        2,
        600,
    ),
    "loop_seconds": Setting(
        "FORESAIL_LOOP_SECONDS",
        "5",
        "a number in [1, 300]",
        "Period of the autoscaler loop, seconds: each pass lists, queries Prometheus once for all "
        "services, and decides for the services whose policy tickSeconds has passed.",
        _number(1, 300),
        1,
        300,
    ),
    "batch_min_runtime_seconds": Setting(
        "FORESAIL_BATCH_MIN_RUNTIME_SECONDS",
        "300",
        "a number in [0, 86400]",
        "Batch work keeps GPUs it started on for at least this long against other tenants' borrowing.",
        _number(0, 86_400),
        0,
        86_400,
    ),
    "worker_image": Setting(
        "FORESAIL_IMAGE",
        "ghcr.io/foresail/foresail:0.1.0",
        "an image reference without spaces",
        "Image of EvalJob workers unless a job names its own (the operator's image).",
        _matching(r"\S+"),
    ),
    "log_level": Setting("FORESAIL_LOG_LEVEL", "INFO", "one of DEBUG, INFO, WARNING, ERROR", "Log level.", _level),
    "namespace": Setting(
        "POD_NAMESPACE",
        "foresail-system",
        "a DNS label",
        "Namespace of the leader Lease (the operator's own; set from the pod by the chart).",
        _matching(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"),
    ),
    "pod_name": Setting(
        "POD_NAME", "", "any name", "Identity in the leader Lease (set from the pod); empty: hostname and a random suffix.", str
    ),
}


@dataclass(frozen=True)
class OperatorSettings:
    prometheus_url: str = ""
    rate_window: str = "30s"
    metrics_source: str = "prometheus"
    metrics_stale_seconds: float = 10.0
    loop_seconds: float = 5.0
    batch_min_runtime_seconds: float = 300.0
    worker_image: str = "ghcr.io/foresail/foresail:0.1.0"
    log_level: str = "INFO"
    namespace: str = "foresail-system"
    pod_name: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OperatorSettings:
        """Every setting from ``env``; raises ``SettingsError`` naming the first bad variable."""
        return cls(**{f.name: SETTINGS[f.name].read(env) for f in fields(cls)})
