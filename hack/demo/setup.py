"""What the demo creates: a tenant owning the namespace and the InferenceService (SLO 150 ms, 1-8 replicas)."""

from __future__ import annotations

from typing import Any

import yaml

from hack.base.paths import REPO

__all__ = ["NAME", "SLO_MS", "TENANT", "isvc"]

NAME = "demo"
SLO_MS = 150.0

# the demo's namespace belongs to a tenant: its GPUs are arbitrated and shown by `kubectl get tenants`
TENANT: dict[str, Any] = {
    "apiVersion": "foresail.dev/v1alpha1",
    "kind": "Tenant",
    "metadata": {"name": "demo"},
    "spec": {
        "namespaces": ["default"],
        "gpus": [{"resource": "nvidia.com/gpu", "guaranteed": 8, "limit": 16}],
        "allowedPriorities": ["critical", "standard", "batch"],
    },
}


def isvc() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["metadata"]["name"] = NAME
    obj["spec"]["slo"] = {"p99LatencyMs": SLO_MS}
    obj["spec"]["scaling"] = {
        "minReplicas": 1,
        "maxReplicas": 8,
        "policyRef": "balanced",
        "capacityPerReplicaRps": 100,
        "overrides": {"tickSeconds": 2},
    }
    obj["spec"]["warmup"] = {"requests": 5, "timeoutSeconds": 120}
    return obj
