"""The CRD YAML in crds/ and in the chart is exactly what the models generate."""

from __future__ import annotations

from pathlib import Path

import pytest

from foresail.api.crd import crds, render_all

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("where", ["crds", "charts/foresail/crds"])
def test_generated_crds_do_not_drift(where: str) -> None:
    for name, text in render_all().items():
        path = REPO / where / name
        assert path.is_file(), f"{path} missing: run `make generate`"
        assert path.read_text() == text, f"{path} drifted from operator/foresail/api: run `make generate`"


def _walk(node: object, path: str = "") -> list[str]:
    """Fields without a description (kubectl explain would show nothing)."""
    missing = []
    if isinstance(node, dict):
        for k, v in (node.get("properties") or {}).items():
            if isinstance(v, dict) and not v.get("description") and k not in ("apiVersion", "kind", "metadata"):
                missing.append(f"{path}.{k}")
            missing += _walk(v, f"{path}.{k}")
        if isinstance(node.get("items"), dict):
            missing += _walk(node["items"], f"{path}[]")
    return missing


def test_every_field_is_documented() -> None:
    for name, crd in crds().items():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert _walk(schema) == [], name


@pytest.mark.parametrize("kind", ["foresail.dev_inferenceservices.yaml", "foresail.dev_evaljobs.yaml"])
def test_names_that_name_services_are_dns_1035_labels_at_admission(kind: str) -> None:
    rules = crds()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    assert any("self.metadata.name.matches('^[a-z]" in r["rule"] for r in rules), rules
