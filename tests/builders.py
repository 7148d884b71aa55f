"""Small builders for test objects (Kueue-style): start from a valid default, change what matters."""

from __future__ import annotations

import copy
from typing import Any

from foresail.api.inferenceservice import InferenceService


class IsvcBuilder:
    def __init__(self, name: str = "resnet", namespace: str = "team-a") -> None:
        self.obj: dict[str, Any] = {
            "apiVersion": "foresail.dev/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": name, "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000001", "generation": 1},
            "spec": {
                "model": {"name": "resnet50", "repository": {"configMap": {"name": "models"}}},
                "slo": {"p99LatencyMs": 100},
            },
        }

    def set(self, path: str, value: Any) -> IsvcBuilder:
        """``set("spec.scaling.minReplicas", 3)``; ``None`` deletes the key."""
        node = self.obj
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
        return self

    def dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.obj)

    def build(self) -> InferenceService:
        return InferenceService.model_validate(self.dict())
