"""Revisions and Deployment slots: which slot runs which revision, rendered from what (named cases)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from foresail.api.objects import LABEL_ISVC, LABEL_REVISION, LABEL_SLOT
from foresail.api.rollout import Slot
from foresail.render.slots import deployment_revision, plan_slots, stable_slot, with_serving
from foresail.render.triton import (
    REVISION_ANNOTATION,
    SERVING_ANNOTATION,
    decode_serving,
    encode_serving,
    render_deployment,
    revision,
)
from tests.builders import IsvcBuilder

ROLLOUT = {"steps": [{"percent": 10}, {"percent": 50}]}


def _env(dep: dict[str, Any]) -> list[dict[str, str]]:
    env: list[dict[str, str]] = dep["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


def _scaled(dep: dict[str, Any], replicas: int) -> dict[str, Any]:
    return {**dep, "spec": {**dep["spec"], "replicas": replicas}}


def test_revision_changes_with_serving_fields_only() -> None:
    base = IsvcBuilder().build()
    assert revision(base) == revision(IsvcBuilder().set("spec.scaling", {"maxReplicas": 3}).set("spec.priority", "batch").build())
    assert revision(base) == revision(IsvcBuilder().set("spec.triton.gpusPerReplica", 1).build()), "a default written out"
    assert revision(base) != revision(IsvcBuilder().set("spec.triton.env", [{"name": "X", "value": "1"}]).build())
    assert revision(base) != revision(IsvcBuilder().set("spec.model.name", "other").build())


def test_slot_a_keeps_its_selector_slot_b_adds_the_slot() -> None:
    isvc = IsvcBuilder().build()
    a, b = render_deployment(isvc, Slot.A), render_deployment(isvc, Slot.B)
    assert a["metadata"]["name"] == "resnet" and b["metadata"]["name"] == "resnet-b"
    assert a["spec"]["selector"]["matchLabels"] == {LABEL_ISVC: "resnet"}
    assert b["spec"]["selector"]["matchLabels"] == {LABEL_ISVC: "resnet", LABEL_SLOT: "b"}
    for dep in (a, b):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert labels[LABEL_REVISION] == revision(isvc) == deployment_revision(dep)
        assert all(labels.get(k) == v for k, v in dep["spec"]["selector"]["matchLabels"].items())
    assert LABEL_SLOT not in a["spec"]["template"]["metadata"]["labels"]


def test_serving_annotation_round_trips() -> None:
    isvc = IsvcBuilder().set("spec.triton.env", [{"name": "X", "value": "1"}]).build()
    again = with_serving(IsvcBuilder().build(), render_deployment(isvc))
    assert again is not None and revision(again) == revision(isvc)
    assert with_serving(isvc, {"metadata": {"annotations": {}}}) is None


@pytest.mark.parametrize(
    ("name", "rollout", "a", "b", "expect"),
    [
        ("no slots yet, no rollout", None, None, None, Slot.A),
        ("only b has replicas (promoted, status lost)", None, 0, 3, Slot.B),
        ("only a has replicas", None, 3, 0, Slot.A),
        ("neither has replicas", None, 0, 0, Slot.A),
        ("status says b", {"stableSlot": "b"}, 5, 0, Slot.B),
    ],
)
def test_stable_slot(name: str, rollout: dict[str, Any] | None, a: int | None, b: int | None, expect: Slot) -> None:
    builder = IsvcBuilder()
    if rollout is not None:
        builder.set("status.rollout", rollout)
    isvc = builder.build()
    deps = {
        Slot.A: None if a is None else _scaled(render_deployment(isvc, Slot.A), a),
        Slot.B: None if b is None else _scaled(render_deployment(isvc, Slot.B), b),
    }
    assert stable_slot(isvc, deps) is expect, name


@pytest.mark.parametrize(("canary", "expect"), [(Slot.B, Slot.A), (Slot.A, Slot.B)])
def test_status_lost_mid_rollout_the_stable_slot_is_the_one_not_running_the_spec(canary: Slot, expect: Slot) -> None:
    old = IsvcBuilder().set("spec.rollout", ROLLOUT).build()
    new = IsvcBuilder().set("spec.rollout", ROLLOUT).set("spec.triton.env", [{"name": "X", "value": "1"}]).build()
    deps = {canary: _scaled(render_deployment(new, canary), 2), canary.other: _scaled(render_deployment(old, canary.other), 1)}
    assert stable_slot(new, deps) is expect
    plan = plan_slots(new, deps)
    assert (plan.stable, plan.canary) == (expect, canary)


def test_no_rollout_updates_the_stable_slot_in_place() -> None:
    old = IsvcBuilder().build()
    new = IsvcBuilder().set("spec.triton.env", [{"name": "X", "value": "1"}]).build()
    plan = plan_slots(new, {Slot.A: render_deployment(old, Slot.A), Slot.B: None})
    assert plan.canary is None and plan.stable is Slot.A
    assert [d["metadata"]["name"] for d in plan.deployments] == ["resnet"]
    assert _env(plan.deployments[0]) == [{"name": "X", "value": "1"}]


def test_rollout_puts_the_new_revision_in_the_other_slot() -> None:
    old = IsvcBuilder().set("spec.rollout", ROLLOUT).build()
    new = (
        IsvcBuilder()
        .set("spec.rollout", ROLLOUT)
        .set("spec.triton.env", [{"name": "X", "value": "1"}])
        .set("spec.priority", "critical")
        .build()
    )
    plan = plan_slots(new, {Slot.A: render_deployment(old, Slot.A), Slot.B: None})
    assert (plan.stable, plan.canary) == (Slot.A, Slot.B)
    assert (plan.stable_revision, plan.revision) == (revision(old), revision(new))
    stable, canary = plan.deployments
    assert stable["metadata"]["name"] == "resnet" and _env(stable) == [], "the stable slot keeps its serving fields"
    assert stable["spec"]["template"]["spec"]["priorityClassName"] == "foresail-critical", (
        "... and takes the others from the spec"
    )
    assert canary["metadata"]["name"] == "resnet-b" and _env(canary) == [{"name": "X", "value": "1"}]
    assert canary["metadata"]["annotations"][REVISION_ANNOTATION] == revision(new)


def test_after_promotion_the_spec_renders_into_the_new_stable_slot() -> None:
    new = (
        IsvcBuilder()
        .set("spec.rollout", ROLLOUT)
        .set("spec.triton.env", [{"name": "X", "value": "1"}])
        .set("status.rollout", {"stableSlot": "b"})
        .build()
    )
    old = IsvcBuilder().build()
    plan = plan_slots(new, {Slot.A: _scaled(render_deployment(old, Slot.A), 0), Slot.B: render_deployment(new, Slot.B)})
    assert (plan.stable, plan.canary) == (Slot.B, None)
    assert [d["metadata"]["name"] for d in plan.deployments] == ["resnet-b"]


def test_a_deployment_from_before_revisions_is_updated_in_place() -> None:
    old = render_deployment(IsvcBuilder().build(), Slot.A)
    del old["metadata"]["annotations"]
    new = IsvcBuilder().set("spec.rollout", ROLLOUT).set("spec.triton.env", [{"name": "X", "value": "1"}]).build()
    plan = plan_slots(new, {Slot.A: old, Slot.B: None})
    assert plan.canary is None


def test_an_unreadable_serving_annotation_leaves_the_stable_deployment_alone() -> None:
    old = render_deployment(IsvcBuilder().build(), Slot.A)
    old["metadata"]["annotations"]["foresail.dev/serving"] = "{not json"
    new = IsvcBuilder().set("spec.rollout", ROLLOUT).set("spec.triton.env", [{"name": "X", "value": "1"}]).build()
    plan = plan_slots(new, {Slot.A: old, Slot.B: None})
    assert (plan.stable, plan.canary) == (Slot.A, Slot.B)
    assert [d["metadata"]["name"] for d in plan.deployments] == ["resnet-b"], "never rolled to the canary's revision in place"


def _vars(value: str, n: int) -> list[dict[str, str]]:
    return [{"name": f"V{i}", "value": value} for i in range(n)]


def _noise(n: int, seed: int) -> str:
    """Incompressible, deterministic text."""
    return "".join(hashlib.sha256(f"{seed}-{i}".encode()).hexdigest() for i in range(n // 64 + 1))[:n]


@pytest.mark.parametrize(
    ("env", "form"),
    [
        pytest.param(_vars("1", 1), "json", id="small: plain JSON"),
        pytest.param(_vars("x" * 8000, 40), "zlib", id="320 KB that compresses: zlib"),
        pytest.param([{"name": f"V{i}", "value": _noise(8000, i)} for i in range(40)], "absent", id="320 KB of noise: left out"),
    ],
)
def test_the_serving_annotation_fits_the_annotation_limit(env: list[dict[str, str]], form: str) -> None:
    isvc = IsvcBuilder().set("spec.triton.env", env).build()
    dep = render_deployment(isvc)
    annotations = dep["metadata"]["annotations"]
    assert sum(len(k) + len(v) for k, v in annotations.items()) < 256 * 1024
    value = annotations.get(SERVING_ANNOTATION)
    assert {"json": value is not None and value.startswith("{"), "zlib": value is not None and value.startswith("zlib:"),
            "absent": value is None}[form], (value or "")[:40]  # fmt: skip
    assert decode_serving(encode_serving({"model": {}, "triton": {"env": env}}) or "{}") in ({"model": {}, "triton": {"env": env}}, {})
    back = with_serving(IsvcBuilder().build(), dep)
    if form == "absent":
        assert back is None  # during a rollout the stable Deployment is then left as it is
    else:
        assert back is not None and [e.value for e in back.spec.triton.env] == [e["value"] for e in env]


def test_a_damaged_compressed_annotation_reads_as_none() -> None:
    dep = render_deployment(IsvcBuilder().build())
    dep["metadata"]["annotations"][SERVING_ANNOTATION] = "zlib:not-base64!"
    assert with_serving(IsvcBuilder().build(), dep) is None


@pytest.mark.parametrize("repository", [{"pvc": {"claimName": "models"}}, {"storageUri": "s3://models/x"}], ids=["pvc", "storageUri"])
def test_rollout_renders_both_slots_with_the_operator_image(repository: dict[str, Any]) -> None:
    """Was: the stable slot was rendered with the default operator image during a rollout, so its replicas' init
    container (storage-init) rolled onto an image the cluster may not hold."""
    image = "registry.local/foresail@sha256:1"
    old = IsvcBuilder().set("spec.rollout", ROLLOUT).set("spec.model.repository", repository).build()
    new = (
        IsvcBuilder()
        .set("spec.rollout", ROLLOUT)
        .set("spec.model.repository", repository)
        .set("spec.triton.env", [{"name": "X", "value": "1"}])
        .build()
    )
    plan = plan_slots(new, {Slot.A: render_deployment(old, Slot.A, image), Slot.B: None}, image)
    assert plan.canary is Slot.B
    assert [d["spec"]["template"]["spec"]["initContainers"][0]["image"] for d in plan.deployments] == [image, image]
