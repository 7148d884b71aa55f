"""The cases of policies/admission/tests/, shared by the unit tests (well-formed) and e2e (against the apiserver)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from hack.base.paths import REPO

FIXTURES = REPO / "policies/admission/tests"
POLICY = REPO / "policies/admission/tenant-rules.yaml"
POLICIES = sorted((REPO / "policies/admission").glob("*.yaml"))
CHART_FILES = REPO / "charts/foresail/files"
OPERATOR = "system:serviceaccount:foresail-system:foresail"  # the identity the policy files name (the chart's default install)


@dataclass(frozen=True)
class AdmissionCase:
    name: str
    namespace: str
    obj: dict[str, Any]
    denied: tuple[str, ...]
    """Substrings of the denial message, any one of them; empty: the request is allowed."""


def admission_cases() -> list[AdmissionCase]:
    doc = yaml.safe_load((FIXTURES / "cases.yaml").read_text())
    cases = []
    for c in doc["cases"]:
        obj = copy.deepcopy(doc["base"][c.get("kind", "InferenceService")])
        obj["spec"].update(c.get("spec") or {})
        denied = c.get("denied", ())
        cases.append(AdmissionCase(c["name"], c["namespace"], obj, (denied,) if isinstance(denied, str) else tuple(denied)))
    return cases


def fixture_objects() -> list[dict[str, Any]]:
    """The Namespaces and Tenants the cases run against."""
    return [d for d in yaml.safe_load_all((FIXTURES / "tenants.yaml").read_text()) if d]
