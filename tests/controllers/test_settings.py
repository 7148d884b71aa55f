"""The operator's settings: parsed once, bad values named with their range; the chart sets exactly them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from foresail.controllers.operator import run
from foresail.controllers.settings import SETTINGS, OperatorSettings, SettingsError

CHART = Path(__file__).resolve().parents[2] / "charts/foresail"


def test_defaults_are_the_documented_ones() -> None:
    assert OperatorSettings.from_env({}) == OperatorSettings()


@pytest.mark.parametrize(
    ("name", "env", "field", "want"),
    [
        ("loop period", {"FORESAIL_LOOP_SECONDS": "2"}, "loop_seconds", 2.0),
        ("empty means default", {"FORESAIL_LOOP_SECONDS": " "}, "loop_seconds", 5.0),
        ("status refresh default", {}, "status_refresh_seconds", 30.0),
        ("status written every decision", {"FORESAIL_STATUS_REFRESH_SECONDS": "0"}, "status_refresh_seconds", 0.0),
        ("rate window in minutes", {"FORESAIL_RATE_WINDOW": "2m"}, "rate_window", "2m"),
        ("no batch protection", {"FORESAIL_BATCH_MIN_RUNTIME_SECONDS": "0"}, "batch_min_runtime_seconds", 0.0),
        ("log level any case", {"FORESAIL_LOG_LEVEL": "debug"}, "log_level", "DEBUG"),
        ("prometheus", {"FORESAIL_PROMETHEUS_URL": "http://prom:9090"}, "prometheus_url", "http://prom:9090"),
        ("namespace from the pod", {"POD_NAMESPACE": "ops"}, "namespace", "ops"),
        ("direct metrics", {"FORESAIL_METRICS_SOURCE": "direct"}, "metrics_source", "direct"),
        ("stale after 30 s", {"FORESAIL_METRICS_STALE_SECONDS": "30"}, "metrics_stale_seconds", 30.0),
        ("gateway", {"FORESAIL_GATEWAY": "gateways/shared:http"}, "gateway", "gateways/shared:http"),
        ("no gateway", {}, "gateway", ""),
        ("a larger warm-up budget", {"FORESAIL_WARMUP_MEMORY_MB": "1024", "FORESAIL_WARMUP_REQUEST_MB": "256"}, "warmup_request_mb", 256.0),
        ("liveness stall periods default", {}, "liveness_stall_periods", 12.0),
        ("liveness stall minimum default", {}, "liveness_stall_min_seconds", 60.0),
        ("watch stall minimum default", {}, "liveness_watch_stall_min_seconds", 150.0),
        ("a quicker liveness check", {"FORESAIL_LIVENESS_STALL_MIN_SECONDS": "10"}, "liveness_stall_min_seconds", 10.0),
        ("fewer stall periods", {"FORESAIL_LIVENESS_STALL_PERIODS": "3"}, "liveness_stall_periods", 3.0),
        ("a quicker watch check", {"FORESAIL_LIVENESS_WATCH_STALL_MIN_SECONDS": "20"}, "liveness_watch_stall_min_seconds", 20.0),
        ("lease duration default", {}, "lease_duration_seconds", 15.0),
        ("lease renew deadline default", {}, "lease_renew_deadline_seconds", 10.0),
        ("lease retry default", {}, "lease_retry_seconds", 2.0),
        (
            "a patient lease",
            {"FORESAIL_LEASE_DURATION_SECONDS": "150", "FORESAIL_LEASE_RENEW_DEADLINE_SECONDS": "120"},
            "lease_renew_deadline_seconds",
            120.0,
        ),
    ],
)
def test_values(name: str, env: dict[str, str], field: str, want: object) -> None:
    assert getattr(OperatorSettings.from_env(env), field) == want, name


@pytest.mark.parametrize(
    ("name", "env", "message"),
    [
        ("loop too short", {"FORESAIL_LOOP_SECONDS": "0.1"}, "FORESAIL_LOOP_SECONDS=0.1: must be a number in [1, 300]"),
        ("status refresh too long", {"FORESAIL_STATUS_REFRESH_SECONDS": "601"}, "FORESAIL_STATUS_REFRESH_SECONDS=601: must be a number in [0, 600]"),
        ("loop not a number", {"FORESAIL_LOOP_SECONDS": "fast"}, "FORESAIL_LOOP_SECONDS=fast: must be a number in [1, 300]"),
        ("NaN", {"FORESAIL_BATCH_MIN_RUNTIME_SECONDS": "nan"}, "FORESAIL_BATCH_MIN_RUNTIME_SECONDS=nan: must be a number in [0, 86400]"),
        ("rate window too long", {"FORESAIL_RATE_WINDOW": "1h"}, "FORESAIL_RATE_WINDOW=1h: must be a duration in s or m from 2s to 10m"),
        ("rate window too short", {"FORESAIL_RATE_WINDOW": "1s"}, "FORESAIL_RATE_WINDOW=1s"),
        ("not a URL", {"FORESAIL_PROMETHEUS_URL": "prom:9090"}, "FORESAIL_PROMETHEUS_URL=prom:9090: must be empty or an http"),
        ("unknown level", {"FORESAIL_LOG_LEVEL": "LOUD"}, "FORESAIL_LOG_LEVEL=LOUD: must be one of DEBUG, INFO, WARNING, ERROR"),
        ("bad namespace", {"POD_NAMESPACE": "Ops_1"}, "POD_NAMESPACE=Ops_1: must be a DNS label"),
        ("unknown metrics source", {"FORESAIL_METRICS_SOURCE": "pushgateway"}, "FORESAIL_METRICS_SOURCE=pushgateway: must be prometheus or direct"),
        ("stale too soon", {"FORESAIL_METRICS_STALE_SECONDS": "1"}, "FORESAIL_METRICS_STALE_SECONDS=1: must be a number in [2, 600]"),
        ("gateway with a bad listener", {"FORESAIL_GATEWAY": "gw:Web"}, "FORESAIL_GATEWAY=gw:Web: must be empty or [namespace/]name[:sectionName]"),
        ("warm-up memory too small", {"FORESAIL_WARMUP_MEMORY_MB": "4"}, "FORESAIL_WARMUP_MEMORY_MB=4: must be a number in [8, 65536]"),
        ("stall minimum too short", {"FORESAIL_LIVENESS_STALL_MIN_SECONDS": "1"}, "FORESAIL_LIVENESS_STALL_MIN_SECONDS=1: must be a number in [5, 3600]"),
        ("no stall periods", {"FORESAIL_LIVENESS_STALL_PERIODS": "0"}, "FORESAIL_LIVENESS_STALL_PERIODS=0: must be a number in [1, 100]"),
        ("watch stall not a number", {"FORESAIL_LIVENESS_WATCH_STALL_MIN_SECONDS": "2m"}, "FORESAIL_LIVENESS_WATCH_STALL_MIN_SECONDS=2m: must be a number in [5, 3600]"),
        ("lease retry too short", {"FORESAIL_LEASE_RETRY_SECONDS": "0.1"}, "FORESAIL_LEASE_RETRY_SECONDS=0.1: must be a number in [0.5, 600]"),
        (
            "renew deadline not under the duration",
            {"FORESAIL_LEASE_RENEW_DEADLINE_SECONDS": "15"},
            "FORESAIL_LEASE_RETRY_SECONDS=2, FORESAIL_LEASE_RENEW_DEADLINE_SECONDS=15, FORESAIL_LEASE_DURATION_SECONDS=15: each must be less than the next",
        ),
        (
            "retry not under the renew deadline",
            {"FORESAIL_LEASE_RETRY_SECONDS": "10"},
            "FORESAIL_LEASE_RETRY_SECONDS=10, FORESAIL_LEASE_RENEW_DEADLINE_SECONDS=10, FORESAIL_LEASE_DURATION_SECONDS=15: each must be less than the next",
        ),
        ("warm-up memory under two requests", {"FORESAIL_WARMUP_MEMORY_MB": "48"}, "FORESAIL_WARMUP_MEMORY_MB=48: must be at least twice FORESAIL_WARMUP_REQUEST_MB=32"),
    ],
)
def test_bad_values_name_the_variable_and_the_range(name: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as e:
        OperatorSettings.from_env(env)
    assert str(e.value).startswith(message), name


def test_foresail_run_stops_at_once_on_a_bad_setting(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FORESAIL_LOOP_SECONDS", "0")
    assert run(None, 8080, elect=False) == 2
    assert "FORESAIL_LOOP_SECONDS=0: must be a number in [1, 300]" in capsys.readouterr().err


def test_the_chart_sets_every_setting_and_nothing_else() -> None:
    template = (CHART / "templates/deployment.yaml").read_text()
    env_names = set(re.findall(r"\{name: ([A-Z_]+),", template))
    assert env_names == {s.env for s in SETTINGS.values()}, "deployment.yaml env and controllers/settings.py differ"


@pytest.mark.parametrize(
    ("values_path", "setting"),
    [
        ("autoscaler.loopSeconds", "loop_seconds"),
        ("tenants.batchMinRuntimeSeconds", "batch_min_runtime_seconds"),
        ("metrics.staleSeconds", "metrics_stale_seconds"),
        ("warmup.memoryMB", "warmup_memory_mb"),
        ("warmup.requestMB", "warmup_request_mb"),
        ("liveness.stallPeriods", "liveness_stall_periods"),
        ("liveness.stallMinSeconds", "liveness_stall_min_seconds"),
        ("liveness.watchStallMinSeconds", "liveness_watch_stall_min_seconds"),
        ("lease.durationSeconds", "lease_duration_seconds"),
        ("lease.renewDeadlineSeconds", "lease_renew_deadline_seconds"),
        ("lease.retrySeconds", "lease_retry_seconds"),
    ],
)
def test_the_chart_schema_and_default_match_the_setting(values_path: str, setting: str) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    group, key = values_path.split(".")
    bounds = schema["properties"][group]["properties"][key]
    s = SETTINGS[setting]
    assert (bounds["minimum"], bounds["maximum"]) == (s.minimum, s.maximum)
    assert float(values[group][key]) == float(s.default)
    assert f".Values.{values_path}" in (CHART / "templates/deployment.yaml").read_text()
