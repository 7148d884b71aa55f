"""CustomResourceDefinitions generated from the pydantic models (pure).

    python -m foresail.api.crd OUT_DIR      write one YAML file per CRD

The schema is the models' JSON schema made structural for Kubernetes: references inlined, optional
fields without ``null``, numeric exclusive bounds in OpenAPI v3.0 form, free-form objects marked
``x-kubernetes-preserve-unknown-fields``, and the models' CEL rules as ``x-kubernetes-validations``.
A test fails when the files in ``crds/`` or the chart drift from this output.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from foresail.api.evaljob import MAX_NAME_LENGTH as EVALJOB_NAME_MAX
from foresail.api.evaljob import EvalJobSpec, EvalJobStatus
from foresail.api.inferenceservice import MAX_NAME_LENGTH, InferenceServiceSpec, InferenceServiceStatus
from foresail.api.meta import DNS_1035_LABEL
from foresail.api.scalingpolicy import ScalingPolicySpec, ScalingPolicyStatus
from foresail.api.tenant import TenantSpec, TenantStatus

__all__ = ["GROUP", "VERSION", "crds", "openapi_schema", "render_all"]

GROUP = "foresail.dev"
VERSION = "v1alpha1"
_KEEP = {
    "type", "description", "default", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "maxProperties", "format", "x-kubernetes-validations", "x-kubernetes-preserve-unknown-fields",
}  # fmt: skip


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    js = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(js, js.get("$defs", {}))


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k in ("description", "default")}}
        return _convert(merged, defs)
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unions are not structural: {options}")
        inner = _convert(options[0], defs)
        for k in ("description", "default"):
            if k in node and node[k] is not None:
                inner[k] = node[k]
        return inner
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEEP}
    if out.get("default") is None:
        out.pop("default", None)
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node:
            out[plain] = node[bound]
            out[bound] = True
    t = node.get("type")
    if t == "object" or "properties" in node:
        out["type"] = "object"
        props = node.get("properties")
        if props:
            out["properties"] = {k: _convert(v, defs) for k, v in props.items()}
            if node.get("required"):
                out["required"] = list(node["required"])
        add = node.get("additionalProperties")
        if isinstance(add, dict) and add:
            out["additionalProperties"] = _convert(add, defs)
        elif not props or add is True:  # free-form, or named fields plus whatever else (extra="allow")
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif t == "array":
        out["items"] = _convert(node.get("items", {}), defs)
    elif t is None and not out.get("enum"):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _crd(
    kind: str,
    plural: str,
    short: list[str],
    scope: str,
    spec: type[BaseModel],
    status: type[BaseModel],
    columns: list[dict[str, Any]],
    description: str,
    spec_required: bool = True,
    name_max: int | None = None,
) -> dict[str, Any]:
    spec_schema = openapi_schema(spec)
    spec_schema["description"] = f"Desired state of the {kind}."
    top: dict[str, Any] = {
        "type": "object",
        "description": description,
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this representation."},
            "kind": {"type": "string", "description": "Kind of this representation."},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": {**openapi_schema(status), "description": f"Observed state of the {kind}."},
        },
    }
    if spec_required:
        top["required"] = ["spec"]
    if name_max:  # the object names Services: a DNS-1035 label short enough for the suffixes
        top["x-kubernetes-validations"] = [
            {
                "rule": f"size(self.metadata.name) <= {name_max}",
                "message": f"metadata.name must be at most {name_max} characters (names of derived objects must fit)",
            },
            {
                "rule": f"self.metadata.name.matches('{DNS_1035_LABEL}')",
                "message": "metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', a letter first, "
                "no '.'): it names a Service",
            },
        ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        # Argo CD keeps the CRD (so every object of its kind) when the Application is deleted; Helm never deletes crds/
        "metadata": {"name": f"{plural}.{GROUP}", "annotations": {"argocd.argoproj.io/sync-options": "Delete=false"}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short,
                "categories": ["foresail"],
            },
            "scope": scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": top},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        *columns,
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


def crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD object."""
    return {
        "foresail.dev_inferenceservices.yaml": _crd(
            "InferenceService",
            "inferenceservices",
            ["fisvc"],
            "Namespaced",
            InferenceServiceSpec,
            InferenceServiceStatus,
            [
                {
                    "name": "Ready",
                    "type": "integer",
                    "jsonPath": ".status.readyReplicas",
                    "description": "Ready (warm) replicas.",
                },
                {
                    "name": "Desired",
                    "type": "integer",
                    "jsonPath": ".status.desiredReplicas",
                    "description": "Replicas the autoscaler wants.",
                },
                {
                    "name": "P99-ms",
                    "type": "number",
                    "jsonPath": ".status.observed.p99Ms",
                    "description": "Observed p99 latency.",
                },
                {
                    "name": "Queue",
                    "type": "number",
                    "jsonPath": ".status.observed.queueDepth",
                    "description": "Pending requests.",
                },
                {"name": "SLO-ms", "type": "number", "jsonPath": ".spec.slo.p99LatencyMs", "description": "p99 latency target."},
                {
                    "name": "Status",
                    "type": "string",
                    "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
                    "description": "Ready reason.",
                },
            ],
            "A Triton deployment of a model repository with a p99 latency SLO, autoscaled ahead of demand.",
            name_max=MAX_NAME_LENGTH,
        ),
        "foresail.dev_tenants.yaml": _crd(
            "Tenant",
            "tenants",
            ["ften"],
            "Cluster",
            TenantSpec,
            TenantStatus,
            [
                {"name": "Guaranteed", "type": "integer", "jsonPath": ".status.guaranteed"},
                {"name": "Used", "type": "integer", "jsonPath": ".status.used"},
                {"name": "Borrowed", "type": "integer", "jsonPath": ".status.borrowed"},
                {"name": "Lent", "type": "integer", "jsonPath": ".status.lent"},
                {"name": "Pending", "type": "integer", "jsonPath": ".status.pending"},
            ],
            "A team sharing the cluster's GPUs: its namespaces, GPU quotas, weight and allowed priorities.",
        ),
        "foresail.dev_evaljobs.yaml": _crd(
            "EvalJob",
            "evaljobs",
            ["evj"],
            "Namespaced",
            EvalJobSpec,
            EvalJobStatus,
            [
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Progress-%", "type": "number", "jsonPath": ".status.progress.percent"},
                {"name": "EPS", "type": "number", "jsonPath": ".status.throughput.eps", "description": "Evaluations per second."},
                {"name": "P99-ms", "type": "number", "jsonPath": ".status.throughput.p99Ms"},
                {"name": "Score", "type": "number", "jsonPath": ".status.results.score"},
                {
                    "name": "Delta",
                    "type": "number",
                    "priority": 1,
                    "jsonPath": ".status.baseline.delta",
                    "description": "Score minus the baseline's on the paired items (spec.baseline).",
                },
                {
                    "name": "Regressed",
                    "type": "string",
                    "jsonPath": '.status.conditions[?(@.type=="Regressed")].reason',
                    "description": "Regressed, NoRegression, Undecided, ... (spec.baseline).",
                },
            ],
            "A sharded, deterministic, resumable evaluation of a served model that yields to production traffic.",
            name_max=EVALJOB_NAME_MAX,
        ),
        "foresail.dev_scalingpolicies.yaml": _crd(
            "ScalingPolicy",
            "scalingpolicies",
            ["fsp"],
            "Cluster",
            ScalingPolicySpec,
            ScalingPolicyStatus,
            [
                {"name": "Tick", "type": "number", "jsonPath": ".spec.tickSeconds"},
                {"name": "Target-%", "type": "number", "jsonPath": ".spec.targetUtilizationPercent"},
                {"name": "Forecast", "type": "boolean", "jsonPath": ".spec.forecastEnabled"},
            ],
            "A named preset of scaling behaviour for InferenceServices (scaling.policyRef).",
            spec_required=False,
        ),
    }


def render_all() -> dict[str, str]:
    header = "# Generated by `python -m foresail.api.crd` from operator/foresail/api. Do not edit.\n"
    return {name: header + yaml.safe_dump(obj, sort_keys=False, width=120) for name, obj in crds().items()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m foresail.api.crd OUT_DIR", file=sys.stderr)
        return 2
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (out / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
