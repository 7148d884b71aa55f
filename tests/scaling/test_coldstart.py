"""Warm-up steadiness, warm-up batch sizes and the cold-start estimator: named cases."""

from __future__ import annotations

import pytest

from foresail.scaling.coldstart import element_bytes, estimate_cold_start, is_steady, item_bytes, warmup_batch_sizes, warmup_plan


@pytest.mark.parametrize(
    ("name", "lat", "window", "tol", "steady"),
    [
        ("too few", [10, 10], 5, 10, False),
        ("flat", [50, 10, 10, 10, 10, 10], 5, 10, True),
        ("still falling", [30, 25, 20, 15, 10], 5, 10, False),
        ("noise within tolerance", [10, 10.5, 9.6, 10.2, 10], 5, 10, True),
    ],
)
def test_is_steady(name: str, lat: list[float], window: int, tol: float, steady: bool) -> None:
    assert is_steady(lat, window, tol) is steady, name


@pytest.mark.parametrize(
    ("name", "mbs", "cap", "sizes"),
    [
        ("no batching", 0, None, [1]),
        ("batch of one", 1, None, [1]),
        ("powers of two", 8, None, [1, 2, 4, 8]),
        ("and the maximum", 12, None, [1, 2, 4, 8, 12]),
        ("capped by spec.warmup.maxBatchSize", 64, 8, [1, 2, 4, 8]),
        ("a cap above the model's own maximum changes nothing", 8, 64, [1, 2, 4, 8]),
        ("a cap on a model that does not batch", 0, 8, [1]),
    ],
)
def test_warmup_batch_sizes(name: str, mbs: int, cap: int | None, sizes: list[int]) -> None:
    assert warmup_batch_sizes(mbs, cap) == sizes, name


MIB = 1 << 20
IMAGE = ("FP32", (3, 224, 224))  # 602,112 bytes an item: batch 256 is 147 MiB (float64 was 294 MiB)


@pytest.mark.parametrize(
    ("inputs", "mbs", "cap", "max_bytes", "sizes", "reduced_from"),
    [
        pytest.param([("FP32", (4,))], 8, None, 64 * MIB, [1, 2, 4, 8], None, id="a small model fits: nothing reduced"),
        pytest.param([IMAGE], 256, None, 64 * MIB, [1, 2, 4, 8, 16, 32, 64, 111], 256, id="huge input shape: batch 256 reduced to fit 64 MiB"),
        pytest.param([("FP16", (3, 224, 224))], 256, None, 64 * MIB, [1, 2, 4, 8, 16, 32, 64, 128, 222], 256, id="FP16 model: half the bytes, twice the batch"),
        pytest.param([("BYTES", (1024,))], 1024, None, 1 * MIB, [1, 2, 4, 8, 16, 32, 64, 102], 1024, id="BYTES input: each element with its length prefix"),
        pytest.param([IMAGE], 256, 16, 64 * MIB, [1, 2, 4, 8, 16], None, id="spec.warmup.maxBatchSize below the fit: nothing reduced"),
        pytest.param([IMAGE, ("INT64", (1,))], 256, None, 64 * MIB, [1, 2, 4, 8, 16, 32, 64, 111], 256, id="several inputs add up"),
        pytest.param([("FP32", (-1, 4))], 8, None, 64 * MIB, [1, 2, 4, 8], None, id="a variable dimension counts as 1"),
        pytest.param([("FP32", (64, 1024, 1024))], 0, None, 64 * MIB, [1], None, id="a model that does not batch: one item, even over the cap"),
        pytest.param([IMAGE], 4, None, 1 * MIB, [1], 4, id="an item over the cap: batch 1 only"),
    ],
)  # fmt: skip
def test_warmup_plan_fits_each_request_under_the_byte_cap(
    inputs: list[tuple[str, tuple[int, ...]]], mbs: int, cap: int | None, max_bytes: int, sizes: list[int], reduced_from: int | None
) -> None:
    plan = warmup_plan(mbs, cap, item_bytes(inputs), max_bytes)
    assert (plan.sizes, plan.reduced_from) == (sizes, reduced_from)
    assert plan.request_bytes(plan.sizes[-1]) <= max_bytes or plan.sizes == [1]
    assert (f"largest batch {reduced_from} -> {sizes[-1]}" in plan.note) if reduced_from else plan.note == ""


@pytest.mark.parametrize(
    ("datatype", "size"),
    [
        pytest.param("FP32", 4, id="FP32"),
        pytest.param("FP16", 2, id="FP16"),
        pytest.param("BF16", 2, id="BF16"),
        pytest.param("INT64", 8, id="INT64"),
        pytest.param("UINT8", 1, id="UINT8"),
        pytest.param("BOOL", 1, id="BOOL"),
        pytest.param("BYTES", 10, id="BYTES: b'warmup' and its 4-byte length"),
        pytest.param("FP8_E4M3", 8, id="an unknown type: counted as 8 bytes"),
    ],
)
def test_element_bytes(datatype: str, size: int) -> None:
    assert element_bytes(datatype) == size


def test_cold_start_estimate_uses_recent_starts() -> None:
    est = estimate_cold_start([100.0] * 5 + [10.0] * 20)
    assert est is not None
    assert est.p50_seconds == 10.0
    assert est.samples == 20
    assert estimate_cold_start([]) is None
