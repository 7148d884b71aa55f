"""Every example manifest of a Foresail kind is valid against the API models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from foresail.api.evaljob import EvalJob
from foresail.api.inferenceservice import InferenceService
from foresail.api.tenant import Tenant
from foresail.evaluation.dataset import load_jsonl

EXAMPLES = Path(__file__).resolve().parents[2] / "crds/examples"
MODELS: dict[str, Any] = {"InferenceService": InferenceService, "Tenant": Tenant, "EvalJob": EvalJob}
DOCS = [
    (f"{p.relative_to(EXAMPLES)}#{i}", d)
    for p in sorted(EXAMPLES.rglob("*.yaml"))
    for i, d in enumerate(yaml.safe_load_all(p.read_text()))
    if d
]


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[n for n, _ in DOCS])
def test_example_is_valid(name: str, doc: dict[str, Any]) -> None:
    model = MODELS.get(doc["kind"])
    if model is not None:
        model.model_validate(doc)
    elif doc["kind"] == "ConfigMap" and "dataset.jsonl" in doc.get("data", {}):
        assert load_jsonl(doc["data"]["dataset.jsonl"].encode())
