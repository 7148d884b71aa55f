"""The replay simulator configured like a cluster run: its arrivals, replica model, measured cold start,
capacity prior, tick and rate window."""

from __future__ import annotations

import json

from foresail.api.scalingpolicy import ResolvedBehavior
from foresail.replay import policies, traces
from foresail.replay.sim import ReplicaModel, SimConfig, SimResult, simulate
from foresail.scaling.capacity import Calibration
from hack.bench.autoscaler.sampling import ClusterRun, initial_pods
from hack.bench.autoscaler.settings import CALIBRATION, CLUSTER_CAPACITY_RPS, CLUSTER_SLO_MS, EMULATED, RATE_WINDOW_S

__all__ = ["arrivals_of", "predict", "sim_models"]


def sim_models() -> dict[str, ReplicaModel]:
    """The replica models the predictions use: the emulated model's own parameters, and the fit to its
    measured calibration curve (``python -m hack.calibrate``; slower: Python-backend and HTTP overheads)."""
    models = {"emulated 20+2 ms/item": EMULATED}
    if CALIBRATION.is_file():
        models["fitted to the calibration curve"] = ReplicaModel.from_curve(json.loads(CALIBRATION.read_text())["points"], 32)
    return models


def arrivals_of(run: ClusterRun) -> traces.Arrivals:
    """The run's requests as arrivals of unit work, by scheduled time."""
    return traces.Arrivals(tuple(sorted(run.scheduled)), tuple(1.0 for _ in run.scheduled))


def predict(
    run: ClusterRun, model: ReplicaModel, behavior: ResolvedBehavior, cold: float, lead_cold: float, max_replicas: int
) -> SimResult:
    pol = policies.foresail_policy(behavior, Calibration(capacity_rps=CLUSTER_CAPACITY_RPS), CLUSTER_SLO_MS, lead_cold, 1, max_replicas)
    cfg = SimConfig(
        model=model,
        slo_ms=CLUSTER_SLO_MS,
        cold_start_s=cold,
        tick_s=behavior.tick_seconds,
        rate_window_s=RATE_WINDOW_S,
        initial_replicas=initial_pods(run),
        min_replicas=1,
        max_replicas=max_replicas,
    )
    return simulate(arrivals_of(run), cfg, pol, horizon=run.duration)
