"""The benchmarks' fixed settings: replica models, SLOs, the capacity prior, the policy and its overrides."""

from __future__ import annotations

from typing import Any

import yaml

from foresail.api.scalingpolicy import ResolvedBehavior, ScalingBehavior, ScalingPolicy
from foresail.replay.sim import ReplicaModel
from hack.base.log import logger
from hack.base.paths import OUT, REPO, TRACES

__all__ = [
    "BALANCED",
    "CALIBRATION",
    "CLUSTER_CAPACITY_RPS",
    "CLUSTER_NAME",
    "CLUSTER_SLO_MS",
    "DEMO_OVERRIDES",
    "EMULATED",
    "NS",
    "RATE_WINDOW_S",
    "REPLAY_MODEL",
    "TRACES",
    "balanced",
    "log",
    "resolved",
]

log = logger("bench-autoscaler", stderr=True)

BALANCED = REPO / "policies/scaling/balanced.yaml"
REPLAY_MODEL = ReplicaModel(base_ms=100.0, per_item_ms=10.0, max_batch=32)  # the README's replay figures
EMULATED = ReplicaModel(base_ms=20.0, per_item_ms=2.0, max_batch=32)  # crds/examples/emulated-model.yaml
CALIBRATION = OUT / "bench/calibration-emulated.json"
CLUSTER_NAME = "bench-as"
NS = "default"
# the demo's settings for the emulated model (hack/demo): SLO, capacity prior, warm-up
CLUSTER_SLO_MS = 150.0
CLUSTER_CAPACITY_RPS = 100.0
RATE_WINDOW_S = 10.0  # prometheus.rateWindow, as the demo and the e2e suite install the chart
DEMO_OVERRIDES = {"tickSeconds": 2}


def balanced() -> ScalingBehavior:
    return ScalingPolicy.model_validate(yaml.safe_load(BALANCED.read_text())).behavior()


def resolved(overrides: dict[str, Any] | None = None) -> ResolvedBehavior:
    return ScalingBehavior().resolve(balanced(), ScalingBehavior.model_validate(overrides) if overrides else None)
