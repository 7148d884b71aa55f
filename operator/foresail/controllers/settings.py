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

from foresail.render.httproute import GatewayRef

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


_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"


def _names(s: str) -> tuple[str, ...]:
    names = tuple(sorted({n.strip() for n in s.split(",") if n.strip()}))
    if not all(re.fullmatch(_DNS_LABEL, n) for n in names):
        raise ValueError(s)
    return names


def _file(s: str) -> str:
    if s and not s.startswith("/"):
        raise ValueError(s)
    return s


def _gateway(s: str) -> str:
    GatewayRef.parse(s)  # raises ValueError when malformed
    return s


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
    "status_refresh_seconds": Setting(
        "FORESAIL_STATUS_REFRESH_SECONDS",
        "30",
        "a number in [0, 600]",
        "A decision's status is written at once when desiredReplicas, quota, a condition's status or reason, "
        "the recommendation's reason or an observed signal beyond its tolerance changes; the slowly moving "
        "figures and the decision state at most this often (0: every decision). A new leader resumes from "
        "a decision state at most this old.",
        _number(0, 600),
        0,
        600,
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
    "liveness_stall_periods": Setting(
        "FORESAIL_LIVENESS_STALL_PERIODS",
        "12",
        "a number in [1, 100]",
        "The health check (/healthz) fails when no autoscaler pass has completed for this many loop periods "
        "(and FORESAIL_LIVENESS_STALL_MIN_SECONDS), or a status write has not come back on the InferenceService "
        "watch for as long (and FORESAIL_LIVENESS_WATCH_STALL_MIN_SECONDS).",
        _number(1, 100),
        1,
        100,
    ),
    "liveness_stall_min_seconds": Setting(
        "FORESAIL_LIVENESS_STALL_MIN_SECONDS",
        "60",
        "a number in [5, 3600]",
        "A pass counts as stalled no sooner than this, seconds: a slow pass (a large fleet, a slow list) is not a stall.",
        _number(5, 3600),
        5,
        3600,
    ),
    "liveness_watch_stall_min_seconds": Setting(
        "FORESAIL_LIVENESS_WATCH_STALL_MIN_SECONDS",
        "150",
        "a number in [5, 3600]",
        "The InferenceService watch counts as stalled no sooner than this after a status write it has not shown, "
        "seconds (kopf reconnects a watch silent for 70 s: the default leaves time for a reconnect).",
        _number(5, 3600),
        5,
        3600,
    ),
    "lease_duration_seconds": Setting(
        "FORESAIL_LEASE_DURATION_SECONDS",
        "15",
        "a number in [2, 3600]",
        "Leader Lease: a standby takes the lease after seeing it unchanged this long (leaseDurationSeconds).",
        _number(2, 3600),
        2,
        3600,
    ),
    "lease_renew_deadline_seconds": Setting(
        "FORESAIL_LEASE_RENEW_DEADLINE_SECONDS",
        "10",
        "a number in [1, 3600]",
        "Leader Lease: the leader stops acting and exits when no renewal succeeded for this long; less than "
        "FORESAIL_LEASE_DURATION_SECONDS.",
        _number(1, 3600),
        1,
        3600,
    ),
    "lease_retry_seconds": Setting(
        "FORESAIL_LEASE_RETRY_SECONDS",
        "2",
        "a number in [0.5, 600]",
        "Leader Lease: a renewal (or a standby's attempt) every this many seconds; less than "
        "FORESAIL_LEASE_RENEW_DEADLINE_SECONDS.",
        _number(0.5, 600),
        0.5,
        600,
    ),
    "warmup_memory_mb": Setting(
        "FORESAIL_WARMUP_MEMORY_MB",
        "128",
        "a number in [8, 65536]",
        "Memory, MB (10^6 bytes), that all warm-ups in flight may hold for generated inputs at once; a request holds "
        "twice its inputs (their encoding, and the body while it is sent) and waits for its share, first come "
        "first served. At least twice FORESAIL_WARMUP_REQUEST_MB.",
        _number(8, 65_536),
        8,
        65_536,
    ),
    "warmup_request_mb": Setting(
        "FORESAIL_WARMUP_REQUEST_MB",
        "32",
        "a number in [1, 4096]",
        "Largest generated inputs of one warm-up request, MB: larger batch sizes are lowered to fit (recorded in "
        "the pod's warm condition); a model whose one item is larger is warmed at batch 1 if the memory allows.",
        _number(1, 4096),
        1,
        4096,
    ),
    "worker_image": Setting(
        "FORESAIL_IMAGE",
        "ghcr.io/foresail/foresail:0.1.0",
        "an image reference without spaces",
        "Image of EvalJob workers unless a job names its own (the operator's image).",
        _matching(r"\S+"),
    ),
    "log_level": Setting("FORESAIL_LOG_LEVEL", "INFO", "one of DEBUG, INFO, WARNING, ERROR", "Log level.", _level),
    "log_format": Setting(
        "FORESAIL_LOG_FORMAT",
        "text",
        "text or json",
        "text: one line per record; json: one JSON object per line with the object's namespace and name.",
        _matching(r"text|json"),
    ),
    "tenancy_mode": Setting(
        "FORESAIL_TENANCY_MODE",
        "strict",
        "strict or open",
        "strict: Foresail objects and foresail-* pods only in namespaces a Tenant owns (the admission policies "
        "refuse the rest); open: the default tenant owns every namespace no other Tenant owns.",
        _matching(r"strict|open"),
    ),
    "default_tenant": Setting(
        "FORESAIL_DEFAULT_TENANT",
        "default",
        "a DNS label",
        "Tenancy mode open: the Tenant (created by the chart) that owns every namespace no other Tenant owns.",
        _matching(_DNS_LABEL),
    ),
    "watch_namespaces": Setting(
        "FORESAIL_WATCH_NAMESPACES",
        "",
        "empty or comma-separated DNS labels",
        "Namespaces the operator manages (its write permissions are Roles there); empty: every namespace.",
        _names,
    ),
    "prometheus_bearer_token_file": Setting(
        "FORESAIL_PROMETHEUS_BEARER_TOKEN_FILE",
        "",
        "empty or an absolute path",
        "File holding the bearer token sent to Prometheus (a mounted Secret; re-read when it changes).",
        _file,
    ),
    "prometheus_basic_auth_username_file": Setting(
        "FORESAIL_PROMETHEUS_BASIC_AUTH_USERNAME_FILE",
        "",
        "empty or an absolute path",
        "File holding the basic-auth user name for Prometheus (a mounted Secret).",
        _file,
    ),
    "prometheus_basic_auth_password_file": Setting(
        "FORESAIL_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE",
        "",
        "empty or an absolute path",
        "File holding the basic-auth password for Prometheus (a mounted Secret).",
        _file,
    ),
    "prometheus_ca_file": Setting(
        "FORESAIL_PROMETHEUS_CA_FILE",
        "",
        "empty or an absolute path",
        "PEM bundle of the CAs that sign Prometheus' serving certificate (empty: the system's CAs).",
        _file,
    ),
    "prometheus_cert_file": Setting(
        "FORESAIL_PROMETHEUS_CERT_FILE",
        "",
        "empty or an absolute path",
        "Client certificate (PEM) presented to Prometheus; with FORESAIL_PROMETHEUS_KEY_FILE.",
        _file,
    ),
    "prometheus_key_file": Setting(
        "FORESAIL_PROMETHEUS_KEY_FILE",
        "",
        "empty or an absolute path",
        "Private key (PEM) of the client certificate.",
        _file,
    ),
    "prometheus_headers_dir": Setting(
        "FORESAIL_PROMETHEUS_HEADERS_DIR",
        "",
        "empty or an absolute path",
        "Directory of extra request headers for Prometheus, one file per header (name = file name), e.g. "
        "X-Scope-OrgID for Thanos, Mimir or Cortex (a mounted Secret).",
        _file,
    ),
    "gateway": Setting(
        "FORESAIL_GATEWAY",
        "",
        "empty or [namespace/]name[:sectionName] (DNS names)",
        "The Gateway API Gateway that rollouts split traffic through: where the HTTPRoute CRD is served, each "
        "InferenceService gets per-revision Services and an HTTPRoute <name> attached to this Gateway (its "
        "listener sectionName, if given), weighted by the rollout's step (status.trafficSplit: GatewayWeights). "
        "Empty, or the CRD absent: the canary's share is its share of ready replicas behind the Service.",
        _gateway,
    ),
    "namespace": Setting(
        "POD_NAMESPACE",
        "foresail-system",
        "a DNS label",
        "Namespace of the leader Lease (the operator's own; set from the pod by the chart).",
        _matching(_DNS_LABEL),
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
    status_refresh_seconds: float = 30.0
    batch_min_runtime_seconds: float = 300.0
    liveness_stall_periods: float = 12.0
    liveness_stall_min_seconds: float = 60.0
    liveness_watch_stall_min_seconds: float = 150.0
    lease_duration_seconds: float = 15.0
    lease_renew_deadline_seconds: float = 10.0
    lease_retry_seconds: float = 2.0
    warmup_memory_mb: float = 128.0
    warmup_request_mb: float = 32.0
    worker_image: str = "ghcr.io/foresail/foresail:0.1.0"
    log_level: str = "INFO"
    log_format: str = "text"
    tenancy_mode: str = "strict"
    default_tenant: str = "default"
    watch_namespaces: tuple[str, ...] = ()
    prometheus_bearer_token_file: str = ""
    prometheus_basic_auth_username_file: str = ""
    prometheus_basic_auth_password_file: str = ""
    prometheus_ca_file: str = ""
    prometheus_cert_file: str = ""
    prometheus_key_file: str = ""
    prometheus_headers_dir: str = ""
    gateway: str = ""
    namespace: str = "foresail-system"
    pod_name: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OperatorSettings:
        """Every setting from ``env``; raises ``SettingsError`` naming the first bad variable."""
        s = cls(**{f.name: SETTINGS[f.name].read(env) for f in fields(cls)})
        for a, b in _PAIRS:
            if bool(getattr(s, a)) != bool(getattr(s, b)):
                raise SettingsError(f"{SETTINGS[a].env} and {SETTINGS[b].env}: set both or neither")
        if 2 * s.warmup_request_mb > s.warmup_memory_mb:
            raise SettingsError(
                f"{SETTINGS['warmup_memory_mb'].env}={s.warmup_memory_mb:g}: must be at least twice "
                f"{SETTINGS['warmup_request_mb'].env}={s.warmup_request_mb:g} (a request holds twice its inputs)"
            )
        retry, renew, duration = (SETTINGS[k] for k in ("lease_retry_seconds", "lease_renew_deadline_seconds", "lease_duration_seconds"))
        if not s.lease_retry_seconds < s.lease_renew_deadline_seconds < s.lease_duration_seconds:
            raise SettingsError(
                f"{retry.env}={s.lease_retry_seconds:g}, {renew.env}={s.lease_renew_deadline_seconds:g}, "
                f"{duration.env}={s.lease_duration_seconds:g}: each must be less than the next"
            )
        return s

    def gateway_ref(self) -> GatewayRef | None:
        """The Gateway of FORESAIL_GATEWAY (None: not set: no HTTPRoutes)."""
        return GatewayRef.parse(self.gateway)


_PAIRS = (
    ("prometheus_cert_file", "prometheus_key_file"),
    ("prometheus_basic_auth_username_file", "prometheus_basic_auth_password_file"),
)
