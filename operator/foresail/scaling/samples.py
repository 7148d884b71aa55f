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

__all__ = ["FIELDS", "METRIC_NAMES", "SUMMARY", "Row", "Series", "pod_samples", "series_samples"]

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
Series = tuple[str, Mapping[str, str], Iterable[tuple[float, float]]]  # name, labels, (time, value) points


def pod_samples(rows: Iterable[Row], model: str) -> list[PodSample]:
    """One replica's samples of ``model``, in time order."""
    return series_samples(((name, labels, ((t, value),)) for name, labels, t, value in rows), model)


def series_samples(series: Iterable[Series], model: str) -> list[PodSample]:
    """``pod_samples`` of whole series (a name, its labels, its (time, value) points): the labels are read
    once per series rather than once per point (a pass reads ~10 points of ~10 series of every replica)."""
    sums: dict[float, dict[str, float]] = {}
    seen: dict[float, set[str]] = {}
    quantiles: dict[float, list[float]] = {}
    for name, labels, points in series:
        if labels.get("model") != model:
            continue
        if name == SUMMARY:
            try:
                k = QUANTILES.index(float(labels.get("quantile", "")))
            except ValueError:
                continue  # another quantile (the summary's _sum and _count have other names)
            for t, value in points:
                qs = quantiles.get(t)
                if qs is None:
                    qs = quantiles[t] = [math.nan] * len(QUANTILES)
                qs[k] = value if math.isnan(qs[k]) else max(qs[k], value)
            continue
        f = FIELDS.get(name)
        if f is None:
            continue
        for t, value in points:
            row = sums.get(t)
            if row is None:
                row = sums[t] = {}
                seen[t] = set()
            row[f] = row.get(f, 0.0) + value
            seen[t].add(name)
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
