"""Spec fuzzing against the real apiserver: a valid InferenceService with one field (or its name) replaced by a
generated value - unicode, huge strings and lists, numbers at and beyond the schema's bounds, values of the
wrong type - is either refused with a 422 whose message names that field (or the object holding it), or
accepted (server-side dry run) as an object the operator reads. 50 examples in ``make test``;
FORESAIL_CHAOS_EXAMPLES sets more (``make chaos``)."""

from __future__ import annotations

import copy
import os
import re
import uuid
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from foresail.api.inferenceservice import InferenceService
from hack.base.kube import Kube, KubeError
from hack.base.paths import REPO

EXAMPLES = int(os.environ.get("FORESAIL_CHAOS_EXAMPLES", "50"))
BASE: dict[str, Any] = {
    "model": {"name": "m", "repository": {"configMap": {"name": "models"}}},
    "triton": {"gpusPerReplica": 1},
    "slo": {"p99LatencyMs": 100},
    "scaling": {"minReplicas": 1, "maxReplicas": 8},
}


def _leaves(schema: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    """(dotted path, schema) of every field that is not an object with properties (scalars, arrays, maps)."""
    props = schema.get("properties")
    if schema.get("type") == "object" and props:
        return [leaf for k, sub in props.items() for leaf in _leaves(sub, f"{path}.{k}")]
    return [(path, schema)]


_CRD = yaml.safe_load((REPO / "crds/foresail.dev_inferenceservices.yaml").read_text())
FIELDS = _leaves(_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"], "spec")

_INT64 = st.integers(-(2**63), 2**63 - 1)
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_TEXT = st.text(max_size=300)  # any unicode, control characters included
_HUGE_TEXT = st.integers(1_000, 200_000).map(lambda n: "x" * n)
_EDGE_TEXT = st.sampled_from(["", " ", "..", "../etc", "a/b", "ü", "\x00", "\u202e", "a" * 63, "a" * 64, "a" * 253, "a" * 254])
_ANY_SCALAR = st.one_of(st.none(), st.booleans(), _INT64, _FLOATS, _TEXT)
_HUGE_LIST = st.integers(100, 5_000).map(lambda n: ["--log-verbose=1"] * n)
_LISTS = st.one_of(
    st.lists(_ANY_SCALAR, max_size=20), st.lists(st.dictionaries(_TEXT, _ANY_SCALAR, max_size=4), max_size=5), _HUGE_LIST
)
_MAPS = st.dictionaries(st.one_of(_TEXT, _EDGE_TEXT), st.one_of(_TEXT, _EDGE_TEXT, _HUGE_TEXT), max_size=10)


def _bounds(schema: dict[str, Any]) -> list[float]:
    out: list[float] = []
    for k in ("minimum", "maximum"):
        if k in schema:
            b = schema[k]
            out += [b - 1, b, b + 1, b - 0.5, b + 0.5]
    return out


def _values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values for a field: mostly of its type, at and beyond its bounds, and sometimes of another type."""
    t = schema.get("type")
    if t in ("integer", "number"):
        typed: st.SearchStrategy[Any] = st.one_of(st.sampled_from(_bounds(schema) or [0]), _INT64, _FLOATS)
    elif t == "string":
        typed = st.one_of(_TEXT, _EDGE_TEXT, _HUGE_TEXT, st.sampled_from(schema.get("enum") or [""]))
    elif t == "boolean":
        typed = st.booleans()
    elif t == "array":
        typed = _LISTS
    else:
        typed = _MAPS
    return st.one_of(typed, typed, typed, _ANY_SCALAR, _LISTS, _MAPS)


@st.composite
def _mutation(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], str]:
    """(the field replaced, the object's name, its spec, the outermost object the replacement created, or "": its
    required fields are missing, and a refusal may name one of them)."""
    spec = copy.deepcopy(BASE)
    if draw(st.integers(0, 9)) == 0:
        name = draw(st.one_of(_TEXT, _EDGE_TEXT, _HUGE_TEXT, st.from_regex(r"[a-z]([-a-z0-9]{0,60}[a-z0-9])?", fullmatch=True)))
        return "metadata.name", name, spec, ""
    path, schema = draw(st.sampled_from(FIELDS))
    keys = path.split(".")[1:]
    if keys[:2] == ["model", "repository"]:
        spec["model"]["repository"] = {}  # one source at a time (two is its own refusal)
    node, created = spec, ""
    for i, k in enumerate(keys[:-1]):
        if k not in node and not created:
            created = ".".join(["spec", *keys[: i + 1]])
        node = node.setdefault(k, {})
    node[keys[-1]] = draw(_values(schema))
    return path, "fuzz", spec, created


_FIELD_RE = re.compile(r"(?:spec|metadata)(?:\.[A-Za-z0-9_]+|\[\d+\]|\[[^\]]{0,80}\])*")


def names_field(message: str, path: str, created: str = "") -> bool:
    """Whether a refusal's message names ``path``: the path, a field below it, an object holding it (not the
    whole spec), its own name in a rule's message, or a required field missing from the object ``created`` for it."""
    for f in _FIELD_RE.findall(message):
        if created and f.startswith(created + ".") and f"{f}: Required value" in message:
            return True
        if f == path or f.startswith(path + ".") or f.startswith(path + "["):
            return True
        if f not in ("spec", "metadata") and path.startswith(f + "."):
            return True
    keys = path.split(".")
    leaf = keys[-1]
    return ".".join(keys[-2:]) in message or (leaf not in GENERIC and re.search(rf"\b{re.escape(leaf)}\b", message) is not None)


GENERIC = {"name", "items", "model", "replicas", "enabled", "spec", "metadata", "labels", "annotations", "env", "args"}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=_mutation())
def test_a_spec_is_refused_naming_its_field_or_accepted_and_readable(
    operator: Kube, namespace: str, case: tuple[str, str, dict[str, Any], str]
) -> None:
    path, name, spec, created = case
    obj = {"apiVersion": "foresail.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": name}, "spec": spec}
    code, message, accepted = _dry_run(operator, namespace, obj)
    event("refused" if accepted is None else "accepted")  # the split, in --hypothesis-show-statistics
    if accepted is None:
        assert code == 422, f"{path}: HTTP {code}: {message[:2000]}"
        assert names_field(message, path, created), f"the refusal does not name {path}: {message[:2000]}"
        return
    accepted["metadata"]["uid"] = accepted["metadata"].get("uid") or str(uuid.uuid4())
    InferenceService.model_validate(accepted)  # what the apiserver accepts, the operator can read


def _dry_run(kube: Kube, ns: str, obj: dict[str, Any]) -> tuple[int, str, dict[str, Any] | None]:
    """A server-side dry-run create: (HTTP code, the refusal's message, the object as accepted or None)."""
    try:
        accepted = kube.api("POST", f"/apis/foresail.dev/v1alpha1/namespaces/{ns}/inferenceservices?dryRun=All", obj, timeout=60)
    except KubeError as e:
        return e.code, e.message, None
    return 201, "", accepted
