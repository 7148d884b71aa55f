"""Triton client helpers (async, tritonclient HTTP): model metadata, generated inputs, timed inferences."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import tritonclient.http.aio as triton_http

__all__ = ["InputSpec", "TritonReplica"]

_NP = {
    "FP32": np.float32,
    "FP16": np.float16,
    "FP64": np.float64,
    "INT64": np.int64,
    "INT32": np.int32,
    "INT16": np.int16,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "BOOL": np.bool_,
}


@dataclass(frozen=True)
class InputSpec:
    name: str
    datatype: str
    dims: tuple[int, ...]  # without the batch dimension when the model batches


class TritonReplica:
    """One Triton server, addressed directly at its pod IP (never through the Service)."""

    def __init__(self, address: str, timeout: float = 30.0) -> None:
        self.client = triton_http.InferenceServerClient(address, conn_timeout=timeout)

    async def close(self) -> None:
        await self.client.close()

    async def model_ready(self, model: str) -> bool:
        try:
            return bool(await self.client.is_model_ready(model))
        except Exception:
            return False

    async def describe(self, model: str) -> tuple[list[InputSpec], int]:
        """Inputs (from the model metadata) and the max batch size (from its config)."""
        meta = await self.client.get_model_metadata(model)
        cfg = await self.client.get_model_config(model)
        mbs = int(cfg.get("max_batch_size", 0) or 0)
        specs = []
        for i in meta["inputs"]:
            shape = [int(d) for d in i["shape"]]
            dims = tuple(shape[1:] if mbs > 0 else shape)
            specs.append(InputSpec(i["name"], i["datatype"], dims))
        return specs, mbs

    @staticmethod
    def generated(specs: list[InputSpec], batch: int, batched: bool, seed: int) -> list[triton_http.InferInput]:
        rng = np.random.default_rng(seed)
        out = []
        for s in specs:
            dims = [d if d > 0 else 1 for d in s.dims]
            shape = [batch, *dims] if batched else dims
            if s.datatype == "BYTES":
                arr = np.array([b"warmup"] * int(np.prod(shape)), dtype=np.object_).reshape(shape)
            else:
                arr = rng.random(shape).astype(_NP.get(s.datatype, np.float32))
            inp = triton_http.InferInput(s.name, shape, s.datatype)
            inp.set_data_from_numpy(arr)
            out.append(inp)
        return out

    @staticmethod
    def given(inputs: list[dict[str, Any]]) -> list[triton_http.InferInput]:
        out = []
        for i in inputs:
            arr = np.array(i["data"], dtype=_NP.get(i["datatype"], np.float32)).reshape(i["shape"])
            inp = triton_http.InferInput(i["name"], list(i["shape"]), i["datatype"])
            inp.set_data_from_numpy(arr)
            out.append(inp)
        return out

    async def timed_infer(self, model: str, inputs: list[triton_http.InferInput]) -> float:
        """One inference; its latency in milliseconds."""
        t0 = time.perf_counter()
        await self.client.infer(model, inputs)
        return (time.perf_counter() - t0) * 1000.0
