"""The tenant-rules admission policy: the chart's copy does not drift, and its test fixtures are well-formed.

The policy itself runs against the real apiserver in e2e/test_admission_policies.py.
"""

from __future__ import annotations

import pytest
import yaml

from e2e.admission import CHART_COPY, POLICY, AdmissionCase, admission_cases, fixture_objects
from foresail.api.inferenceservice import InferenceService
from foresail.api.tenant import Tenant

CASES = admission_cases()


def test_chart_copy_does_not_drift() -> None:
    assert CHART_COPY.is_file(), f"{CHART_COPY} missing: run `make generate`"
    assert CHART_COPY.read_text() == POLICY.read_text(), f"{CHART_COPY} drifted from {POLICY}: run `make generate`"


def test_policy_is_bound_once_per_tenant() -> None:
    policy, binding = (d for d in yaml.safe_load_all(POLICY.read_text()) if d)
    assert policy["spec"]["paramKind"] == {"apiVersion": "foresail.dev/v1alpha1", "kind": "Tenant"}
    assert policy["spec"]["failurePolicy"] == "Fail"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert sorted(rule["resources"]) == ["evaljobs", "inferenceservices"]
    assert sorted(rule["operations"]) == ["CREATE", "UPDATE"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["paramRef"] == {"selector": {}, "parameterNotFoundAction": "Allow"}
    assert binding["spec"]["validationActions"] == ["Deny"]


def test_fixture_tenants_are_valid() -> None:
    tenants = [Tenant.model_validate(o) for o in fixture_objects() if o["kind"] == "Tenant"]
    assert len(tenants) >= 3


def test_case_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_is_well_formed(case: AdmissionCase) -> None:
    namespaces = {o["metadata"]["name"] for o in fixture_objects() if o["kind"] == "Namespace"}
    assert case.namespace in namespaces
    if case.obj["kind"] == "InferenceService":
        InferenceService.model_validate(case.obj)
