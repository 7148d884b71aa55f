"""Prometheus answers for httpx.MockTransport: the autoscaler's four queries, each routed to a result list."""

from __future__ import annotations

import json
from typing import Any

import httpx

__all__ = ["answer", "series"]

_MARKS = {"arrival": "nv_inference_request_(success", "queue": "sum by", "p99": "quantile", "freshness": "timestamp("}


def series(value: str, ns: str = "team-a", svc: str = "resnet", ts: float = 0.0) -> dict[str, Any]:
    """One sample of one service, labelled as the autoscaler's queries group."""
    return {"metric": {"namespace": ns, "foresail_dev_inferenceservice": svc}, "value": [ts, value]}


def answer(results: dict[str, list[dict[str, Any]]], status: int = 200, raw: str | None = None) -> httpx.MockTransport:
    """Route each default instant query (recognised by a fragment) to its result list."""

    def handler(req: httpx.Request) -> httpx.Response:
        if raw is not None:
            return httpx.Response(status, text=raw)
        q = req.url.params["query"]
        name = next(n for n in ("freshness", "p99", "arrival", "queue") if _MARKS[n] in q)
        data: dict[str, Any] = {"resultType": "vector", "result": results.get(name, [])}
        if req.url.path.endswith("/query_range"):
            data = {"resultType": "matrix", "result": []}
        return httpx.Response(status, text=json.dumps({"status": "success", "data": data}))

    return httpx.MockTransport(handler)
