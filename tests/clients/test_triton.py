"""Warm-up inputs generated from a model's metadata: in the model's own datatype, without a float64 copy."""

from __future__ import annotations

import math
import tracemalloc

import pytest

from foresail.clients.triton import InputSpec, TritonReplica


@pytest.mark.parametrize(
    ("datatype", "dims", "batch", "element"),
    [
        pytest.param("FP16", (3, 8, 8), 4, 2, id="FP16 model"),
        pytest.param("FP32", (4,), 8, 4, id="FP32"),
        pytest.param("BF16", (16,), 2, 2, id="BF16"),
        pytest.param("INT64", (128,), 2, 8, id="INT64 token ids"),
        pytest.param("UINT32", (5,), 3, 4, id="UINT32"),
        pytest.param("BOOL", (7,), 2, 1, id="BOOL"),
        pytest.param("BYTES", (5,), 3, 10, id="BYTES input"),
        pytest.param("FP32", (-1, 4), 2, 4, id="a variable dimension as 1"),
    ],
)
def test_generated_inputs_are_in_the_models_datatype(datatype: str, dims: tuple[int, ...], batch: int, element: int) -> None:
    (inp,) = TritonReplica.generated([InputSpec("x", datatype, dims)], batch, True, seed=1)
    shape = [batch, *(d if d > 0 else 1 for d in dims)]
    assert (inp.datatype(), inp.shape()) == (datatype, shape)
    assert len(inp._get_binary_data()) == math.prod(shape) * element


def test_a_model_that_does_not_batch_gets_its_shape() -> None:
    (inp,) = TritonReplica.generated([InputSpec("x", "FP32", (2, 3))], 1, False, seed=1)
    assert inp.shape() == [2, 3]


def test_a_large_fp16_input_is_generated_without_a_float64_copy() -> None:
    spec = InputSpec("image", "FP16", (3, 224, 224))
    final = 32 * 3 * 224 * 224 * 2  # 9.6 MB of FP16 on the wire
    tracemalloc.start()
    try:
        (inp,) = TritonReplica.generated([spec], 32, True, seed=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(inp._get_binary_data()) == final
    assert peak < 2.5 * final, f"peak {peak / 1e6:.1f} MB for {final / 1e6:.1f} MB of input: the array and its bytes, no float64 copy"
