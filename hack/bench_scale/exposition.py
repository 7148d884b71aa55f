"""Triton-format metrics text of simulated replicas (pure): the series Triton 2.51 serves on :8002/metrics,
one label set per replica, carrying the labels Prometheus' relabelling gives a real Triton pod
(``namespace``, ``pod``, ``foresail_dev_inferenceservice``) so that the scrape job can keep them as they
are (``honor_labels: true``) and the operator's query sees what it sees of real replicas.

Per replica: ``nv_inference_request_success``, ``nv_inference_request_failure`` (reasons REJECTED and OTHER),
``nv_inference_count``, ``nv_inference_exec_count``, ``nv_inference_request_duration_us``,
``nv_inference_queue_duration_us``, ``nv_inference_compute_{input,infer,output}_duration_us``,
``nv_inference_pending_request_count`` and the summary ``nv_inference_request_summary_us{quantile=...}``
with its ``_sum`` and ``_count`` (``--metrics-config summary_latencies=true``); counts floored to integers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from hack.bench_scale.load import QUANTILES, Counters

__all__ = ["SERIES_PER_REPLICA", "Replica", "exposition"]


@dataclass(frozen=True)
class Replica:
    namespace: str
    pod: str
    service: str
    model: str
    counters: Counters


_COUNTERS = (
    ("nv_inference_request_success", "Number of successful inference requests, all batch sizes", "success"),
    ("nv_inference_request_failure", "Number of failed inference requests, all batch sizes", "failure"),
    ("nv_inference_count", "Number of inferences performed (does not include cached requests)", "inference_count"),
    ("nv_inference_exec_count", "Number of model executions performed (does not include cached requests)", "exec_count"),
    ("nv_inference_request_duration_us", "Cumulative inference request duration in microseconds (includes cached requests)", "request_us"),
    ("nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds (includes cached requests)", "queue_us"),
    ("nv_inference_compute_input_duration_us", "Cumulative compute input duration in microseconds (does not include cached requests)", "compute_input_us"),
    ("nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in microseconds (does not include cached requests)", "compute_infer_us"),
    ("nv_inference_compute_output_duration_us", "Cumulative inference compute output duration in microseconds (does not include cached requests)", "compute_output_us"),
)  # fmt: skip
SUMMARY = "nv_inference_request_summary_us"
# one line per counter, one more for the second failure reason, the gauge, the quantiles, _sum and _count
SERIES_PER_REPLICA = len(_COUNTERS) + 1 + 1 + len(QUANTILES) + 2


def _num(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def _labels(r: Replica) -> str:
    return f'foresail_dev_inferenceservice="{r.service}",model="{r.model}",namespace="{r.namespace}",pod="{r.pod}",version="1"'


def exposition(replicas: Iterable[Replica]) -> str:
    """The text format (version 0.0.4) of every replica's series, grouped by metric as Triton writes them."""
    rs = list(replicas)
    labels = [_labels(r) for r in rs]
    out: list[str] = []
    for name, help_, field in _COUNTERS:
        out.append(f"# HELP {name} {help_}\n# TYPE {name} counter\n")
        if name == "nv_inference_request_failure":
            for r, lb in zip(rs, labels, strict=True):
                out.append(f'{name}{{{lb},reason="REJECTED"}} {math.floor(r.counters.failure)}\n')
                out.append(f'{name}{{{lb},reason="OTHER"}} 0\n')
            continue
        for r, lb in zip(rs, labels, strict=True):
            out.append(f"{name}{{{lb}}} {math.floor(getattr(r.counters, field))}\n")
    name = "nv_inference_pending_request_count"
    out.append(f"# HELP {name} Instantaneous number of pending requests awaiting execution per-model.\n# TYPE {name} gauge\n")
    for r, lb in zip(rs, labels, strict=True):
        out.append(f"{name}{{{lb}}} {math.floor(r.counters.pending)}\n")
    out.append(f"# HELP {SUMMARY} Summary of inference request duration in microseconds (includes cached requests)\n")
    out.append(f"# TYPE {SUMMARY} summary\n")
    for r, lb in zip(rs, labels, strict=True):
        c = r.counters
        for q, v in zip(QUANTILES, c.quantiles_us, strict=True):
            out.append(f'{SUMMARY}{{{lb},quantile="{q:g}"}} {_num(round(v, 1) if math.isfinite(v) else v)}\n')
        out.append(f"{SUMMARY}_sum{{{lb}}} {math.floor(c.summary_sum_us)}\n")
        out.append(f"{SUMMARY}_count{{{lb}}} {math.floor(c.summary_count)}\n")
    return "".join(out)
