"""Prometheus answers for httpx.MockTransport: Triton's raw counter samples as the autoscaler's one
query gets them (a matrix: every series of every replica with its scrapes), and range-query history."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from email.utils import formatdate
from typing import Any

import httpx

from foresail.scaling.counters import PodSample
from foresail.scaling.latency import QUANTILES

__all__ = ["Replica", "answer", "matrix", "triton_series"]

Replica = tuple[str, str, str]  # namespace, service, pod


def triton_series(samples: Sequence[PodSample], model: str = "resnet") -> list[tuple[str, dict[str, str], list[list[Any]]]]:
    """Triton's series of one replica, as (name, extra labels, [[t, "value"], ...]): failures split by
    reason, the compute phases apart, the summary's quantiles, all of version "1"."""

    def values(f: Any) -> list[list[Any]]:
        return [[s.t, "NaN" if math.isnan(v := float(f(s))) else repr(v)] for s in samples]

    base = {"model": model, "version": "1"}
    out: list[tuple[str, dict[str, str], list[list[Any]]]] = [
        ("nv_inference_request_success", base, values(lambda s: s.success)),
        ("nv_inference_request_failure", {**base, "reason": "REJECTED"}, values(lambda s: s.failure)),
        ("nv_inference_request_failure", {**base, "reason": "BACKEND"}, values(lambda s: 0)),
        ("nv_inference_request_duration_us", base, values(lambda s: s.request_us)),
        ("nv_inference_queue_duration_us", base, values(lambda s: s.queue_us)),
        ("nv_inference_compute_input_duration_us", base, values(lambda s: 0)),
        ("nv_inference_compute_infer_duration_us", base, values(lambda s: s.compute_us)),
        ("nv_inference_compute_output_duration_us", base, values(lambda s: 0)),
        ("nv_inference_pending_request_count", base, values(lambda s: s.pending)),
    ]
    for i, q in enumerate(QUANTILES):
        out.append(("nv_inference_request_summary_us", {**base, "quantile": f"{q:g}"}, values(lambda s, i=i: s.quantiles_us[i])))
    return out


def matrix(replicas: Mapping[Replica, Sequence[PodSample]], model: str = "resnet", pod_label: bool = True) -> list[dict[str, Any]]:
    """The matrix result of the counters query for these replicas."""
    result = []
    for (ns, svc, pod), samples in replicas.items():
        for name, labels, vals in triton_series(samples, model):
            metric = {"__name__": name, "namespace": ns, "foresail_dev_inferenceservice": svc, **labels}
            if pod_label:
                metric["pod"] = pod
            result.append({"metric": metric, "values": vals})
    return result


def answer(
    result: list[dict[str, Any]] | None = None,
    status: int = 200,
    raw: str | None = None,
    seen: list[httpx.Request] | None = None,
    date: float | None = None,
    at: float | None = None,
) -> httpx.MockTransport:
    """Every instant query gets ``result`` (a matrix), every range query an empty matrix; ``date``:
    Prometheus' clock, sent in the ``Date`` header (none without it). ``at``: the query's evaluation time,
    its range selector (``[Ns] offset Ms``) honoured: only the samples in (at - M - N, at - M]."""
    headers = {} if date is None else {"Date": formatdate(date, usegmt=True)}

    def handler(req: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(req)
        if raw is not None:
            return httpx.Response(status, text=raw, headers=headers)
        got = result or []
        if at is not None and (m := re.search(r"\[(\d+)s\](?: offset (\d+)s)?$", req.url.params.get("query", ""))):
            hi = at - int(m.group(2) or 0)
            lo = hi - int(m.group(1))
            got = [{**r, "values": [v for v in r["values"] if lo < float(v[0]) <= hi]} for r in got]
        data = {"resultType": "matrix", "result": [] if req.url.path.endswith("/query_range") else got}
        return httpx.Response(status, text=json.dumps({"status": "success", "data": data}), headers=headers)

    return httpx.MockTransport(handler)
