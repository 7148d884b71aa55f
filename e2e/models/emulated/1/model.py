"""Triton python-backend model whose batch execution time is emulated.

Parameters (config.pbtxt, overridable by environment FORESAIL_EMULATED_<NAME> for tests):
  base_ms, per_item_ms  batch time = base_ms + per_item_ms * batch_size, slept, not spun
  cold_requests         the first N executions after start are slow ...
  cold_extra_ms         ... by this much (emulates CUDA context / JIT / cache warm-up)
  init_delay_s          seconds spent in initialize() (model load time); negative = never ready
  wrong_percent         percent of items (0-100) whose output is off by +1: an item is wrong when the sha256 of
                        its input row's bytes, as an integer mod 10000, is below wrong_percent * 100, so the
                        same items are wrong in every replica, batch and run (default 0: none)
Output = input * 2, so responses can be checked.
"""

import hashlib
import json
import os
import time

import numpy as np
import triton_python_backend_utils as pb_utils


def _param(params: dict, name: str, default: float) -> float:
    env = os.environ.get(f"FORESAIL_EMULATED_{name.upper()}")
    if env is not None:
        return float(env)
    raw = params.get(name, {}).get("string_value")
    return float(raw) if raw not in (None, "") else default


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.base_ms = _param(params, "base_ms", 20.0)
        self.per_item_ms = _param(params, "per_item_ms", 2.0)
        self.cold_left = int(_param(params, "cold_requests", 0))
        self.cold_extra_ms = _param(params, "cold_extra_ms", 0.0)
        self.wrong_percent = _param(params, "wrong_percent", 0.0)
        delay = _param(params, "init_delay_s", 0.0)
        if delay < 0:
            raise RuntimeError("emulated model configured never to load (init_delay_s < 0)")
        time.sleep(delay)

    def execute(self, requests):
        inputs = [pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy() for r in requests]
        batch = sum(int(x.shape[0]) for x in inputs)
        ms = self.base_ms + self.per_item_ms * batch
        if self.cold_left > 0:
            self.cold_left -= 1
            ms += self.cold_extra_ms
        time.sleep(ms / 1000.0)
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT0", self._outputs(x))]) for x in inputs
        ]

    def _outputs(self, x):
        out = (x * 2).astype(np.float32)
        if self.wrong_percent > 0:
            for i in range(out.shape[0]):
                if _wrong(x[i], self.wrong_percent):
                    out[i] += 1
        return out


def _wrong(row, percent: float) -> bool:
    """Whether an item (one input row) is answered wrong: decided by its bytes alone."""
    h = int.from_bytes(hashlib.sha256(np.ascontiguousarray(row, dtype=np.float32).tobytes()).digest()[:8], "big")
    return h % 10000 < percent * 100
