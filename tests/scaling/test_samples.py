"""series_samples (whole series) and pod_samples (points one by one) read as the per-point parser did: named cases."""

from __future__ import annotations

import math
from typing import Any

import pytest

from foresail.scaling.counters import NO_QUANTILES, PodSample
from foresail.scaling.latency import QUANTILES
from foresail.scaling.samples import FIELDS, SUMMARY, Series, pod_samples, series_samples

M = {"model": "m"}


def _reference(rows: list[Any], model: str) -> list[PodSample]:
    """pod_samples as it read rows one by one before series_samples (the reference)."""
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


def _full(ts: list[float], model: str = "m", version: str = "1", base: float = 1.0) -> list[Series]:
    labels = {"model": model, "version": version}
    out: list[Series] = [(name, labels, [(t, base * (i + 1) * t) for t in ts]) for i, name in enumerate(FIELDS)]
    for q, k in (("0.5", 1.0), ("0.99", 3.0)):
        out.append((SUMMARY, {**labels, "quantile": q}, [(t, k * t) for t in ts]))
    return out


def _rows(series: list[Series]) -> list[Any]:
    return [(name, labels, t, v) for name, labels, points in series for t, v in points]


CASES = [
    ("a replica's samples", _full([1.0, 2.0, 3.0])),
    ("two versions are summed, their quantiles maxed", _full([1.0, 2.0]) + _full([1.0, 2.0], version="2", base=2.0)),
    ("another model's series are left out", _full([1.0]) + _full([1.0], model="other", base=5.0)),
    ("only another model: nothing", _full([1.0], model="other")),
    ("a counter missing at a time: no sample then", [*_full([1.0, 2.0])[1:], (next(iter(FIELDS)), M, [(2.0, 1.0)])]),
    (
        "NaN quantiles and an unknown quantile",
        [
            *_full([1.0]),
            (SUMMARY, {**M, "quantile": "0.5"}, [(1.0, math.nan)]),
            (SUMMARY, {**M, "quantile": "0.42"}, [(1.0, 7.0)]),
        ],
    ),
    ("points out of time order", [(n, labels, list(reversed(list(points)))) for n, labels, points in _full([1.0, 2.0, 3.0])]),
    ("nothing", []),
]


@pytest.mark.parametrize(("name", "series"), CASES, ids=[c[0] for c in CASES])
def test_series_samples_equal_pod_samples(name: str, series: list[Series]) -> None:
    want = repr(_reference(_rows(series), "m"))  # repr: NaN quantiles compare equal as text
    assert repr(series_samples(series, "m")) == want, name
    assert repr(pod_samples(_rows(series), "m")) == want, name
