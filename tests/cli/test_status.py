"""``foresail status`` against a fake apiserver (through a kubeconfig), and its view as a table of cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from foresail.cli import main
from foresail.cli.status import render_status
from tests.controllers.objects import isvc, pod
from tests.fakes.apiserver import FakeApiServer

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def served(**status: Any) -> dict[str, Any]:
    obj = isvc(scaling__policyRef="balanced", scaling__maxReplicas=8)
    obj["status"] = {
        "replicas": 3, "readyReplicas": 2, "warmReplicas": 2, "startingReplicas": 1, "desiredReplicas": 3,
        "recommendation": {"replicas": 3, "reason": "ForecastDemand", "message": "forecast 41.0 rps x headroom 1.20 -> 3",
                           "time": "2027-01-15T07:59:50Z", "baseRps": 32.0, "forecastRps": 41.0, "leadSeconds": 19.1,
                           "headroom": 1.2, "errorBudgetPercent": 0.5, "lateFloorPercent": 0.01, "capacityRps": 20.0,
                           "capacitySource": "Calibration", "capacityRatio": 1.0, "burstRps": 60.0, "holdSeconds": 17.1},
        "observed": {"arrivalRps": 31.9, "queueDepth": 2.0, "inFlight": 5.5, "p99Ms": 88.0, "ageSeconds": 1.2, "time": "2027-01-15T07:59:50Z",
                     "source": "Prometheus", "note": "direct reads incomplete (resnet-1: TimeoutError); Prometheus used",
                     "sampleIntervalSeconds": 1.0, "servingReplicas": 2, "p99Replicas": 1,
                     "windows": [{"seconds": s, "arrivalRps": 31.9, "completionRps": 30.0, "rejectionRps": 0.5, "queueGrowthRps": 1.4,
                                  "meanQueueWaitMs": 4.0, "meanLatencyMs": 40.2, "p99Ms": 88.0} for s in (2, 10, 60)]},
        "coldStart": {"p50Seconds": 14.2, "p90Seconds": 17.1, "samples": 5, "recentSeconds": [14.2]},
        "quota": {"tenant": "a", "requestedReplicas": 4, "grantedReplicas": 3, "gpusPerReplica": 1, "reason": "tenant 'a' limit reached"},
        "conditions": [
            {"type": "ScalingActive", "status": "True", "reason": "Decided", "message": "ok", "lastTransitionTime": "2027-01-15T07:00:00Z"},
            {"type": "Ready", "status": "True", "reason": "Serving", "message": "2/3 replicas ready", "lastTransitionTime": "2027-01-15T07:58:00Z"},
        ],
        **status,
    }  # fmt: skip
    return obj


def pods() -> list[dict[str, Any]]:
    warm = pod("resnet", "team-a", 0)
    warm["status"]["conditions"][1]["message"] = "warm after 60 requests in 15.0s"
    return [warm, pod("resnet", "team-a", 1, warm=False)]


@pytest.mark.parametrize(
    ("name", "obj", "lines"),
    [
        (
            "served and decided",
            served(),
            [
                "InferenceService team-a/resnet",
                "replicas 1..8   policy balanced",
                "Replicas     desired 3   existing 3   ready 2   warm 2   starting 1",
                "Decision     3 replicas: ForecastDemand (10s ago)",
                "forecast 41.0 rps x headroom 1.20 -> 3",
                "base 32.0 rps   forecast 41.0 rps at +19.1 s   headroom x1.20   budget 0.50% (floor 0.01%)",
                "capacity 20.0 rps/replica (Calibration, ratio 1.00)   burst 60.0 rps   idle hold 17.1 s",
                "Signals      from Prometheus: samples every 1.0 s, newest 1.2 s old; 2 serving replicas, p99 from 1 (warm for a minute)",
                "direct reads incomplete (resnet-1: TimeoutError); Prometheus used",
                "window  arrivals  completed  rejected  in-flight growth  queue wait  mean latency   p99",
                "  10 s      31.9       30.0       0.5               1.4      4.0 ms       40.2 ms   88.0 ms",
                "now: 2 queued, 5.5 in flight (queued + executing); rates in requests/s",
                "Quota        tenant a grants 3 of 4 replicas (1 GPU each): tenant 'a' limit reached",
                "Cold start   p50 14.2 s   p90 17.1 s   (5 starts)",
                "resnet-0",
                "warm     warm after 60 requests in 15.0s",
                "Ready             True    Serving",
            ],
        ),
        (
            "a recommendation written by the v1 decision still renders",
            served(recommendation={"replicas": 3, "reason": "Panic", "time": "2027-01-15T07:59:50Z", "panic": True, "stableRps": 32.0}),
            ["Decision     3 replicas: Panic (10s ago)", "base -   forecast - at +-"],
        ),
        (
            "no replica warm for a minute yet: p99 not measured, shown as such (not 0)",
            served(observed={"arrivalRps": 31.9, "queueDepth": 0.0, "inFlight": 1.0, "ageSeconds": 1.2, "time": "2027-01-15T07:59:50Z",
                             "source": "Prometheus", "sampleIntervalSeconds": 1.0, "servingReplicas": 2, "p99Replicas": 0,
                             "windows": [{"seconds": 10, "arrivalRps": 31.9, "completionRps": 30.0, "rejectionRps": 0.0, "queueGrowthRps": 1.9,
                                          "meanQueueWaitMs": 4.0, "meanLatencyMs": 40.2}]}),
            ["2 serving replicas, p99 not measured yet (no replica warm for a minute)",
             "  10 s      31.9       30.0       0.0               1.9      4.0 ms       40.2 ms      -"],
        ),
        (
            "new: nothing decided yet",
            served(recommendation=None, observed=None, quota=None, coldStart=None),
            ["Decision     none yet", "Signals      none yet", "Quota        no tenant arbitrates this service", "Cold start   not measured yet"],
        ),
    ],
)
def test_render_status(name: str, obj: dict[str, Any], lines: list[str]) -> None:
    text = render_status(obj, pods(), [], NOW)
    for line in lines:
        assert line in text, (name, line, text)


def test_conditions_come_in_a_fixed_order() -> None:
    text = render_status(served(), [], [], NOW)
    assert text.index("  Ready ") < text.index("  ScalingActive ")


def test_reads_the_service_its_pods_and_events_with_a_kubeconfig(
    api: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "resnet.1", "namespace": "team-a"},
        "involvedObject": {"kind": "InferenceService", "name": "resnet"}, "reason": "ScaledUp",
        "message": "replicas 2 -> 3: ForecastDemand", "type": "Normal", "lastTimestamp": "2027-01-15T07:59:50Z",
    }  # fmt: skip
    api.put(served(), *pods(), event)
    config = api.kubeconfig(tmp_path / "kubeconfig", namespace="team-a")
    assert main(["status", "resnet", "--kubeconfig", str(config)]) == 0
    out = capsys.readouterr().out
    assert "InferenceService team-a/resnet" in out and "ScaledUp" in out and "resnet-1" in out
    assert main(["status", "-n", "team-a", "team-a/resnet", "--kubeconfig", str(config)]) == 0
    assert main(["status", "team-a/nope", "--kubeconfig", str(config)]) == 1
    assert "InferenceService team-a/nope not found" in capsys.readouterr().err
    assert main(["status", "-n", "other", "team-a/resnet", "--kubeconfig", str(config)]) == 2
    assert "names namespace 'team-a' but -n says 'other'" in capsys.readouterr().err
