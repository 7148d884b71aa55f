"""The emulated Triton model's outputs (e2e/models/emulated): x * 2, and wrong_percent of the items off by +1,
chosen by their input bytes alone."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from typing import Any

import numpy as np
import pytest

from hack.base.paths import E2E_MODELS


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
    spec = importlib.util.spec_from_file_location("emulated_model", E2E_MODELS / "emulated/1/model.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _instance(model: Any, monkeypatch: pytest.MonkeyPatch, wrong: str | None) -> Any:
    if wrong is not None:
        monkeypatch.setenv("FORESAIL_EMULATED_WRONG_PERCENT", wrong)
    m = model.TritonPythonModel()
    m.initialize({"model_config": json.dumps({"parameters": {"base_ms": {"string_value": "0"}}})})
    return m


X = np.random.default_rng(3).integers(0, 1000, size=(2000, 16)).astype(np.float32)


def test_by_default_every_output_is_twice_the_input(model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _instance(model, monkeypatch, None)
    assert m.wrong_percent == 0
    assert np.array_equal(m._outputs(X), X * 2)


def test_wrong_percent_is_a_share_of_items_chosen_by_their_bytes(model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _instance(model, monkeypatch, "10")
    out = m._outputs(X)
    off = np.flatnonzero((out != X * 2).any(axis=1))
    assert np.array_equal(out[off], X[off] * 2 + 1)
    assert 0.08 < len(off) / len(X) < 0.12
    # the same items whatever the batch they arrive in
    assert [i for i in range(len(X)) if (m._outputs(X[i : i + 1]) != X[i : i + 1] * 2).any()] == off.tolist()
