"""Shipped presets and examples are valid against the API, and the example model matches e2e/models."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from foresail.api.inferenceservice import InferenceService
from foresail.api.scalingpolicy import ScalingPolicy
from hack.testbed.manifests import model_configmap

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((REPO / "policies/scaling").glob("*.yaml")), ids=lambda p: p.stem)
def test_preset_is_valid(path: Path) -> None:
    policy = ScalingPolicy.model_validate(yaml.safe_load(path.read_text()))
    assert policy.metadata["name"] == path.stem
    resolved = policy.behavior().resolve()
    assert resolved.quiet_percent < resolved.burst_onset_percent
    assert set(policy.spec.model_dump(exclude_none=True)) == {*resolved.model_dump(), "description"}, "a preset sets every field"


def test_example_inferenceservice_is_valid() -> None:
    InferenceService.model_validate(yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text()))


def test_example_model_configmap_matches_e2e_models() -> None:
    cm = yaml.safe_load((REPO / "crds/examples/emulated-model.yaml").read_text())
    assert cm == model_configmap("emulated-model", ["emulated"]), "regenerate crds/examples/emulated-model.yaml"
