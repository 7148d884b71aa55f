"""Whether an object found under a child's name is the owner's to change (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.api.inferenceservice import InferenceService
from foresail.render.meta import RENDERED_DIGEST, controlled_by, name_taken, rendered_digest, stamp
from tests.controllers.objects import ISVC_UID, isvc

OWNER = InferenceService.model_validate(isvc())


def found(*refs: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": "resnet", "namespace": "team-a", "ownerReferences": list(refs)}}


def ref(uid: str, controller: bool = True, kind: str = "InferenceService", name: str = "resnet") -> dict[str, Any]:
    return {"apiVersion": "foresail.dev/v1alpha1", "kind": kind, "name": name, "uid": uid, "controller": controller}


@pytest.mark.parametrize(
    ("obj", "ours", "why"),
    [
        pytest.param(None, False, None, id="absent: free to create"),
        pytest.param(found(ref(ISVC_UID)), True, None, id="controlled by this very service"),
        pytest.param(found(ref("u-x", controller=False, kind="EvalJob", name="x"), ref(ISVC_UID)), True, None, id="its controller among other owners"),
        pytest.param(found(), False, "it has no controller", id="a user's object: no owner"),
        pytest.param(found(ref(ISVC_UID, controller=False)), False, "it has no controller", id="owned but not controlled"),
        pytest.param(found(ref("old-uid")), False, "an earlier InferenceService of this name (UID old-uid)", id="an earlier service of the name"),
        pytest.param(found(ref("g", kind="Gateway", name="edge")), False, "its controller is Gateway edge", id="another controller"),
    ],
)
def test_name_taken(obj: dict[str, Any] | None, ours: bool, why: str | None) -> None:
    assert controlled_by(obj, OWNER) is ours
    problem = name_taken(OWNER, obj)
    if why is None:
        assert problem is None
    else:
        assert problem is not None and problem.reason == "NameTaken"
        assert problem.message.startswith("Deployment team-a/resnet exists and is not controlled by this InferenceService (")
        assert why in problem.message


@pytest.mark.parametrize(
    ("name", "a", "b", "same"),
    [
        ("the same rendering", {"metadata": {"name": "x"}, "spec": {"a": 1}}, {"spec": {"a": 1}, "metadata": {"name": "x"}}, True),
        ("a changed value", {"metadata": {"name": "x"}, "spec": {"a": 1}}, {"metadata": {"name": "x"}, "spec": {"a": 2}}, False),
        ("a dropped field", {"metadata": {"name": "x"}, "spec": {"a": 1, "b": 2}}, {"metadata": {"name": "x"}, "spec": {"a": 1}}, False),
        ("its own annotation left out", {"metadata": {"name": "x", "annotations": {RENDERED_DIGEST: "old"}}},
         {"metadata": {"name": "x", "annotations": {}}}, True),
    ],
)  # fmt: skip
def test_rendered_digest(name: str, a: dict[str, Any], b: dict[str, Any], same: bool) -> None:
    assert (rendered_digest(a) == rendered_digest(b)) is same


def test_stamp_annotates_a_copy_with_its_digest() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "x", "annotations": {"keep": "me"}}, "spec": {"a": 1}}
    out = stamp(obj)
    assert out["metadata"]["annotations"] == {"keep": "me", RENDERED_DIGEST: rendered_digest(obj)}
    assert RENDERED_DIGEST not in obj["metadata"]["annotations"], "the rendered object is left as it was"
    assert stamp(out) == out, "stamping twice changes nothing"
