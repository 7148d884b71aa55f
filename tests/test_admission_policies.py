"""The admission policies: the chart's copies do not drift, the chart puts its own identity in, and the
test fixtures are well-formed.

The policies themselves run against the real apiserver in e2e/ (test_admission_policies.py,
test_tenancy.py, test_operator_guard.py).
"""

from __future__ import annotations

import pytest
import yaml

from e2e.admission import CHART_FILES, OPERATOR, POLICIES, POLICY, AdmissionCase, admission_cases, fixture_objects
from foresail.api.inferenceservice import InferenceService
from foresail.api.tenant import Tenant

CASES = admission_cases()


def test_chart_copies_do_not_drift() -> None:
    assert sorted(p.name for p in CHART_FILES.glob("*.yaml")) == [p.name for p in POLICIES], "run `make generate`"
    for p in POLICIES:
        assert (CHART_FILES / p.name).read_text() == p.read_text(), f"{CHART_FILES / p.name} drifted from {p}: run `make generate`"


def test_every_policy_has_its_binding_and_fails_closed() -> None:
    for p in POLICIES:
        policy, binding = (d for d in yaml.safe_load_all(p.read_text()) if d)
        assert (policy["kind"], binding["kind"]) == ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"), p
        assert policy["spec"]["failurePolicy"] == "Fail", p
        assert binding["spec"]["policyName"] == policy["metadata"]["name"] == binding["metadata"]["name"], p
        assert binding["spec"]["validationActions"] == ["Deny"], p


def test_the_operator_identity_is_named_where_the_chart_replaces_it() -> None:
    """The chart substitutes its ServiceAccount for the default install's; nothing else may spell it."""
    named = {p.name for p in POLICIES if OPERATOR in p.read_text()}
    assert named == {"operator-guard.yaml", "tenancy.yaml"}
    template = (CHART_FILES.parent / "templates/admission-policies.yaml").read_text()
    assert f'replace "{OPERATOR}"' in template


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
