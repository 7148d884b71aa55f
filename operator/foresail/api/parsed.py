"""Parsed resource models kept across passes, keyed by the object's identity and ``resourceVersion`` (pure).

A pass lists every InferenceService and validates each into its model; at 2,000 services that validation
was a good part of the pass, for objects that mostly did not change since the last one. ``ParsedCache``
parses a body once per (namespace, name, uid, resourceVersion): any write to the object (spec, status,
metadata) gives it a new ``resourceVersion`` and so a fresh parse. A body without a ``resourceVersion``
(a test's object, a fake's) is parsed every time. Bodies that fail validation are not kept: the caller
sees the ``ValidationError`` every time, as before. ``retain`` forgets the objects no longer listed.

The models are shared between passes, so they must not be mutated (nothing in the controllers does:
changes go through ``model_copy`` or the apiserver).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

__all__ = ["ParsedCache"]

M = TypeVar("M", bound=BaseModel)
Key = tuple[str, str]


class ParsedCache(Generic[M]):
    def __init__(self, model: type[M]) -> None:
        self.model = model
        self._kept: dict[Key, tuple[str, str, M]] = {}
        self.parsed = 0  # validations run (misses), for tests and benchmarks

    def get(self, body: Mapping[str, Any]) -> M:
        """``body`` as a model; raises pydantic's ``ValidationError`` like ``model_validate``."""
        meta = body.get("metadata") or {}
        rv = meta.get("resourceVersion")
        if not rv:
            self.parsed += 1
            return self.model.model_validate(body)
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        uid = str(meta.get("uid", ""))
        kept = self._kept.get(key)
        if kept is not None and kept[0] == uid and kept[1] == rv:
            return kept[2]
        self.parsed += 1
        try:
            model = self.model.model_validate(body)
        except Exception:
            self._kept.pop(key, None)
            raise
        self._kept[key] = (uid, str(rv), model)
        return model

    def retain(self, keys: Iterable[Key]) -> None:
        """Forget every object not in ``keys`` (those listed this pass)."""
        keep = set(keys)
        for key in [k for k in self._kept if k not in keep]:
            del self._kept[key]

    def __len__(self) -> int:
        return len(self._kept)
