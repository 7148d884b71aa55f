"""Every spec field of every CRD is read by something that acts on it: an API that promises only what it does.

A field counts as consumed when code outside ``foresail.api`` (controllers, renderers, the pure
decision and quota code, the eval worker) accesses an attribute of its name, or reads a dict key of
its JSON name (the eval worker reads its configuration as JSON), or the tenant admission policy's
CEL names it. A field nothing reads fails this test: wire it up or remove it.

The check is by name: a field whose name another object also uses (``max_batch_size`` of a model's
Triton config, say) can pass without being read; it catches a field no code mentions at all.
"""

from __future__ import annotations

import ast
import types
import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from foresail.api.evaljob import EvalJobSpec
from foresail.api.inferenceservice import InferenceServiceSpec
from foresail.api.meta import SpecModel
from foresail.api.scalingpolicy import ScalingPolicySpec
from foresail.api.tenant import TenantSpec

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator/foresail"
CONSUMERS = ["controllers", "render", "scaling", "quota", "evaluation", "clients", "rollout"]
ADMISSION = REPO / "policies/admission"
# fields the operator does not act on, on purpose
NOT_ACTED_ON = {
    "ScalingPolicySpec.description": "for people reading the policy",
}


def _models(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            yield from _models(arg)


def spec_fields(model: type[BaseModel], path: str = "") -> Iterator[tuple[str, str, str]]:
    """(path for the message, python name, JSON name) of every field, nested models included."""
    for name, info in model.model_fields.items():
        alias = info.alias or name
        where = f"{path or model.__name__}.{alias}"
        yield f"{model.__name__}.{name}", name, alias
        for sub in _models(info.annotation):
            yield from spec_fields(sub, where)


def consumed_names(roots: list[Path]) -> tuple[set[str], set[str]]:
    """Attribute names accessed and string constants used, in the consumers' source."""
    attrs: set[str] = set()
    strings: set[str] = set()
    for root in roots:
        for f in root.rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.Attribute):
                    attrs.add(node.attr)
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    strings.add(node.value)
    return attrs, strings


def unconsumed(models: list[type[BaseModel]], attrs: set[str], strings: set[str], cel: str) -> list[str]:
    out = []
    for model in models:
        for owner, name, alias in spec_fields(model):
            if owner in NOT_ACTED_ON:
                continue
            if name not in attrs and alias not in strings and f".{alias}" not in cel:
                out.append(owner)
    return sorted(set(out))


def test_every_spec_field_is_consumed() -> None:
    attrs, strings = consumed_names([PACKAGE / p for p in CONSUMERS])
    cel = "\n".join(p.read_text() for p in ADMISSION.glob("*.yaml"))
    missing = unconsumed([InferenceServiceSpec, EvalJobSpec, TenantSpec, ScalingPolicySpec], attrs, strings, cel)
    assert missing == [], f"spec fields no controller or renderer reads (wire them up or remove them): {missing}"


def test_the_check_catches_a_field_nobody_reads() -> None:
    class Inner(SpecModel):
        read_me: int = Field(default=0, alias="readMe")
        forgotten_hint: int = Field(default=0, alias="forgottenHint")

    class Spec(SpecModel):
        inner: list[Inner] | None = None

    assert unconsumed([Spec], {"inner", "read_me"}, set(), "") == ["Inner.forgotten_hint"]
    assert unconsumed([Spec], {"inner"}, {"readMe", "forgottenHint"}, "") == []
