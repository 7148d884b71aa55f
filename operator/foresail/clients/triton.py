"""Triton client helpers (async, tritonclient HTTP): model metadata, generated inputs, timed inferences."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import tritonclient.grpc.aio as triton_grpc
import tritonclient.http.aio as triton_http
from tritonclient.utils import triton_to_np_dtype

from foresail.scaling.coldstart import GENERATED_STRING

__all__ = ["EvalClient", "InputSpec", "ModelShape", "TritonReplica", "closed_loop", "random_items", "warmup_array"]

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


def warmup_array(spec: InputSpec, batch: int, batched: bool, rng: np.random.Generator) -> npt.NDArray[Any]:
    """A random input of ``batch`` items (variable dimensions as 1) in the model's declared datatype,
    never through a float64 copy: integers and booleans drawn in their own type, floating point filled
    one leading row at a time from float32 draws (a [3,224,224] FP16 input at batch 256 is 77 MB, its
    float64 draw was 308 MB more). BYTES elements are ``GENERATED_STRING``."""
    dims = tuple(d if d > 0 else 1 for d in spec.dims)
    shape = (batch, *dims) if batched else dims
    if spec.datatype == "BYTES":
        return np.full(shape, GENERATED_STRING, dtype=np.object_)
    dtype = triton_to_np_dtype(spec.datatype)
    if dtype is None:
        raise ValueError(f"input {spec.name}: Triton datatype {spec.datatype} cannot be generated (give spec.warmup.inputs)")
    if np.dtype(dtype).kind in "iub":
        return rng.integers(0, 2, size=shape, dtype=dtype)
    arr = np.empty(shape, dtype=dtype)
    if not shape:
        arr[()] = rng.random(dtype=np.float32)
        return arr
    draw = np.float64 if arr.dtype == np.float64 else np.float32
    for i in range(shape[0]):
        arr[i] = rng.random(shape[1:], dtype=draw)
    return arr


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

    async def config(self, model: str) -> dict[str, Any]:
        """The model's configuration as Triton serves it (JSON)."""
        return dict(await self.client.get_model_config(model))

    async def load(self, model: str, config: dict[str, Any]) -> None:
        """Load the model again with ``config`` in place of its config.pbtxt (explicit model control)."""
        await self.client.load_model(model, config=json.dumps(config))

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
        """Random inputs of ``batch`` items in each input's own datatype (``warmup_array``)."""
        rng = np.random.default_rng(seed)
        out = []
        for s in specs:
            arr = warmup_array(s, batch, batched, rng)
            inp = triton_http.InferInput(s.name, list(arr.shape), s.datatype)
            inp.set_data_from_numpy(arr)  # the request's bytes: the array itself goes when this returns
            out.append(inp)
        return out

    @staticmethod
    def given(inputs: list[dict[str, Any]]) -> list[triton_http.InferInput]:
        out = []
        for i in inputs:
            arr = np.array(i["data"], dtype=triton_to_np_dtype(i["datatype"]) or np.float32).reshape(i["shape"])
            inp = triton_http.InferInput(i["name"], list(i["shape"]), i["datatype"])
            inp.set_data_from_numpy(arr)
            out.append(inp)
        return out

    async def timed_infer(self, model: str, inputs: list[triton_http.InferInput]) -> float:
        """One inference; its latency in milliseconds."""
        t0 = time.perf_counter()
        await self.client.infer(model, inputs)
        return (time.perf_counter() - t0) * 1000.0


@dataclass(frozen=True)
class ModelShape:
    inputs: dict[str, InputSpec]
    outputs: list[str]
    max_batch_size: int


class EvalClient:
    """Inference on many Triton replicas for the eval worker: one client per address, requests that
    carry several items stacked on the batch dimension when the model batches. gRPC by default (its
    per-request cost is lower than HTTP's: ~7% more items/s on one replica here), or HTTP."""

    def __init__(self, model: str, version: str = "", timeout: float = 30.0, protocol: str = "grpc") -> None:
        if protocol not in ("grpc", "http"):
            raise ValueError(f"protocol = {protocol!r}, must be grpc or http")
        self.model, self.version, self.timeout, self.protocol = model, version, timeout, protocol
        self.clients: dict[str, Any] = {}

    def _client(self, address: str) -> Any:
        c = self.clients.get(address)
        if c is None:
            if self.protocol == "grpc":
                c = triton_grpc.InferenceServerClient(address)
            else:
                c = triton_http.InferenceServerClient(address, conn_timeout=self.timeout)
            self.clients[address] = c
        return c

    async def close(self) -> None:
        for c in self.clients.values():
            await c.close()
        self.clients.clear()

    async def describe(self, address: str) -> ModelShape:
        c = self._client(address)
        if self.protocol == "grpc":
            meta = await c.get_model_metadata(self.model, self.version, as_json=True)
            cfg = (await c.get_model_config(self.model, self.version, as_json=True)).get("config", {})
        else:
            meta = await c.get_model_metadata(self.model, self.version)
            cfg = await c.get_model_config(self.model, self.version)
        mbs = int(cfg.get("max_batch_size", 0) or 0)
        inputs = {}
        for i in meta["inputs"]:
            shape = [int(d) for d in i["shape"]]
            inputs[i["name"]] = InputSpec(i["name"], i["datatype"], tuple(shape[1:] if mbs > 0 else shape))
        return ModelShape(inputs, [o["name"] for o in meta["outputs"]], mbs)

    async def infer(self, address: str, shape: ModelShape, items: list[dict[str, Any]]) -> list[dict[str, npt.NDArray[Any]]]:
        """``items``: each item's inputs by tensor name; returns each item's outputs by tensor name."""
        if shape.max_batch_size == 0 and len(items) != 1:
            raise ValueError("the model does not batch: one item per request")
        make = triton_grpc.InferInput if self.protocol == "grpc" else triton_http.InferInput
        inputs = []
        for name, spec in shape.inputs.items():
            if spec.datatype == "BYTES":
                arr = np.array([np.asarray(it[name], dtype=np.object_) for it in items], dtype=np.object_)
            else:
                arr = np.array([np.asarray(it[name], dtype=_NP.get(spec.datatype, np.float32)) for it in items])
            if shape.max_batch_size == 0:
                arr = arr[0]
            inp = make(name, list(arr.shape), spec.datatype)
            inp.set_data_from_numpy(arr)
            inputs.append(inp)
        result = await self._client(address).infer(self.model, inputs, model_version=self.version)
        outs = {name: result.as_numpy(name) for name in shape.outputs}
        if shape.max_batch_size == 0:
            return [{k: v for k, v in outs.items() if v is not None}]
        return [{k: v[i] for k, v in outs.items() if v is not None} for i in range(len(items))]


def random_items(shape: ModelShape, n: int, seed: int = 0) -> list[dict[str, npt.NDArray[Any]]]:
    """``n`` items of random inputs shaped as the model's (variable dimensions as 1, BYTES as b"x")."""
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n):
        item: dict[str, npt.NDArray[Any]] = {}
        for name, spec in shape.inputs.items():
            dims = [d if d > 0 else 1 for d in spec.dims]
            if spec.datatype == "BYTES":
                item[name] = np.full(dims, b"x", dtype=np.object_)
            else:
                item[name] = rng.random(dims).astype(_NP.get(spec.datatype, np.float32))
        items.append(item)
    return items


async def closed_loop(send: Callable[[], Awaitable[Any]], concurrency: int, seconds: float) -> tuple[list[float], float]:
    """``concurrency`` workers each sending the next request as soon as the last one answered, for
    ``seconds``: the latencies of the requests that completed (ms) and the time they took (s)."""
    latencies: list[float] = []
    start = time.perf_counter()
    end = start + seconds

    async def worker() -> None:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            await send()
            latencies.append((time.perf_counter() - t0) * 1000.0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start
