"""Triton's metric series -> ``PodSample``s (pure): one parser for Prometheus' raw samples and for a
replica's own metrics endpoint.

A row is (metric name, labels, time, value). Rows of other models than the service's (an ensemble's
composing models, a second model in the repository) are left out; counters are summed over model
versions and failure reasons; a summary quantile of several versions takes the highest (a conservative
reading of a rare case). A sample exists for a time at which every counter and the queue gauge were
read; the quantiles are NaN when absent (Triton reports NaN when nothing completed in 60 s).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from foresail.scaling.counters import NO_QUANTILES, PodSample
from foresail.scaling.latency import QUANTILES

__all__ = ["FIELDS", "METRIC_NAMES", "SUMMARY", "Row", "pod_samples"]

# metric name -> PodSample field (the compute phases are summed into one)
FIELDS: dict[str, str] = {
    "nv_inference_request_success": "success",
    "nv_inference_request_failure": "failure",
    "nv_inference_request_duration_us": "request_us",
    "nv_inference_queue_duration_us": "queue_us",
    "nv_inference_compute_input_duration_us": "compute_us",
    "nv_inference_compute_infer_duration_us": "compute_us",
    "nv_inference_compute_output_duration_us": "compute_us",
    "nv_inference_pending_request_count": "pending",
}
SUMMARY = "nv_inference_request_summary_us"  # with a quantile label
METRIC_NAMES = (*FIELDS, SUMMARY)

Row = tuple[str, Mapping[str, str], float, float]


def pod_samples(rows: Iterable[Row], model: str) -> list[PodSample]:
    """One replica's samples of ``model``, in time order."""
    sums: dict[float, dict[str, float]] = {}
    seen: dict[float, set[str]] = {}
    quantiles: dict[float, list[float]] = {}
    for name, labels, t, value in rows:
        if labels.get("model") != model:
            continue
        if name == SUMMARY:
            try:
                k = QUANTILES.index(float(labels.get("quantile", "")))
            except ValueError:
                continue  # another quantile (the summary's _sum and _count have other names)
            qs = quantiles.setdefault(t, [math.nan] * len(QUANTILES))
            qs[k] = value if math.isnan(qs[k]) else max(qs[k], value)
            continue
        f = FIELDS.get(name)
        if f is None:
            continue
        row = sums.setdefault(t, {})
        row[f] = row.get(f, 0.0) + value
        seen.setdefault(t, set()).add(name)
    out = []
    for t in sorted(sums):
        row = sums[t]
        if len(seen[t]) < len(FIELDS):
            continue  # a partial read of this replica: not a sample
        got = quantiles.get(t)
        out.append(
            PodSample(
                t,
                success=row["success"],
                failure=row["failure"],
                request_us=row["request_us"],
                queue_us=row["queue_us"],
                compute_us=row["compute_us"],
                pending=row["pending"],
                quantiles_us=tuple(got) if got else NO_QUANTILES,
            )
        )
    return out
