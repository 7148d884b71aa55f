"""ParsedCache: a body is validated once per (namespace, name, uid, resourceVersion): named cases."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from foresail.api.inferenceservice import InferenceService
from foresail.api.parsed import ParsedCache
from tests.controllers.objects import isvc


def _body(name: str = "resnet", rv: str | None = "1", uid: str = "u1", **spec: Any) -> dict[str, Any]:
    b = isvc(name, "team-a", **spec)
    if rv is not None:
        b["metadata"]["resourceVersion"] = rv
    b["metadata"]["uid"] = uid
    return b


def _edit(b: dict[str, Any], **meta: Any) -> dict[str, Any]:
    out = copy.deepcopy(b)
    out["metadata"].update(meta)
    return out


@pytest.mark.parametrize(
    ("name", "second", "parses", "same_model"),
    [
        ("same object, same resourceVersion: parsed once", lambda b: copy.deepcopy(b), 1, True),
        ("a new resourceVersion: parsed again", lambda b: _edit(b, resourceVersion="2"), 2, False),
        ("recreated under the same name (another uid): parsed again", lambda b: _edit(b, uid="u2"), 2, False),
        ("another name: parsed", lambda b: _edit(b, name="other"), 2, False),
        ("no resourceVersion: parsed every time", lambda b: _edit(b, resourceVersion=""), 2, False),
    ],
)
def test_parsed_once_per_version(name: str, second: Any, parses: int, same_model: bool) -> None:
    cache: ParsedCache[InferenceService] = ParsedCache(InferenceService)
    first = _body()
    a = cache.get(first)
    b = cache.get(second(first))
    assert cache.parsed == parses, name
    assert (a is b) == same_model, name
    assert b == InferenceService.model_validate(second(first)), name


def test_a_changed_spec_under_a_new_version_is_seen() -> None:
    cache: ParsedCache[InferenceService] = ParsedCache(InferenceService)
    assert cache.get(_body(rv="1", scaling__maxReplicas=4)).spec.scaling.max_replicas == 4
    assert cache.get(_body(rv="2", scaling__maxReplicas=9)).spec.scaling.max_replicas == 9
    assert cache.get(_body(rv="2", scaling__maxReplicas=9)).spec.scaling.max_replicas == 9
    assert cache.parsed == 2


def test_an_invalid_body_raises_every_time_and_is_not_kept() -> None:
    cache: ParsedCache[InferenceService] = ParsedCache(InferenceService)
    good = _body(rv="1")
    cache.get(good)
    bad = _edit(good, resourceVersion="2")
    bad["spec"]["scaling"] = {"noSuchField": 1}
    for _ in range(2):
        with pytest.raises(ValidationError):
            cache.get(bad)
    assert len(cache) == 0, "the invalid version replaced the kept one"
    assert cache.parsed == 3


def test_retain_forgets_what_is_no_longer_listed() -> None:
    cache: ParsedCache[InferenceService] = ParsedCache(InferenceService)
    for n in ("a", "b", "c"):
        cache.get(_body(n))
    cache.retain([("team-a", "a"), ("team-a", "c")])
    assert len(cache) == 2
    cache.get(_body("b"))
    assert cache.parsed == 4, "a forgotten object is parsed again"
    cache.get(_body("a"))
    assert cache.parsed == 4
