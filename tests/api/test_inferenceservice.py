"""InferenceService validation and defaults: tables of named cases."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from foresail.api.inferenceservice import DEFAULT_TRITON_IMAGE, Priority
from foresail.api.reasons import Reason
from foresail.api.scalingpolicy import DEFAULT_BEHAVIOR, ScalingBehavior, resolve_policy
from tests.builders import IsvcBuilder

INVALID: list[tuple[str, str, Any, str]] = [
    ("min > max", "spec.scaling", {"minReplicas": 5, "maxReplicas": 2}, "minReplicas must be <= scaling.maxReplicas"),
    ("negative GPUs", "spec.triton.gpusPerReplica", -1, "gpusPerReplica"),
    ("unknown priority", "spec.priority", "urgent", "priority"),
    ("bad quantity", "spec.triton.resources", {"requests": {"memory": "lots"}}, "memory"),
    ("missing model", "spec.model", None, "model"),
    ("two repository sources", "spec.model.repository", {"configMap": {"name": "a"}, "storageUri": "s3://bkt/c"}, "exactly one"),
    ("no repository source", "spec.model.repository", {}, "exactly one"),
    ("storageUri: a bucket of one letter", "spec.model.repository", {"storageUri": "s3://b/c"}, "storageUri must be s3://bucket"),
    ("storageUri: no bucket", "spec.model.repository", {"storageUri": "s3://"}, "storageUri must be"),
    ("storageUri: unknown scheme", "spec.model.repository", {"storageUri": "ftp://host/m.tar"}, "storageUri must be"),
    ("storageUri: not an archive", "spec.model.repository", {"storageUri": "https://host/model.onnx"}, "storageUri must be"),
    ("storageUri: pvc:// (use pvc)", "spec.model.repository", {"storageUri": "pvc://claim/models"}, "storageUri must be"),
    ("storageUri: spaces", "spec.model.repository", {"storageUri": "s3://models/a b"}, "storageUri must be"),
    ("s3 with an archive URL", "spec.model.repository", {"storageUri": "https://h/m.zip", "s3": {}}, "s3 applies only"),
    ("sha256 with an s3 URI", "spec.model.repository", {"storageUri": "s3://models/m", "sha256": "0" * 64}, "sha256 applies only"),
    ("sha256 not hex", "spec.model.repository", {"storageUri": "https://h/m.zip", "sha256": "XYZ"}, "sha256"),
    ("s3 endpoint with a path", "spec.model.repository", {"storageUri": "s3://models/m", "s3": {"endpoint": "http://h/x"}}, "endpoint"),
    ("removed: queueTimeMs", "spec.slo.queueTimeMs", 50, "queueTimeMs"),
    ("removed: versionPolicy", "spec.model.versionPolicy", {"latest": 1}, "versionPolicy"),
    ("removed: triton.maxBatchSize", "spec.triton.maxBatchSize", 8, "maxBatchSize"),
    ("warm-up batch cap below 1", "spec.warmup.maxBatchSize", 0, "maxBatchSize"),
    ("zero SLO", "spec.slo.p99LatencyMs", 0, "p99LatencyMs"),
    ("unknown field", "spec.replicas", 3, "replicas"),
    ("bad policy name", "spec.scaling.policyRef", "Not_A_Name", "policyRef"),
    ("removed: v1's panic window", "spec.scaling.overrides", {"panicWindowSeconds": 6}, "panicWindowSeconds"),
    ("error budget beyond its range", "spec.scaling.overrides", {"errorBudgetPercent": 25}, "errorBudgetPercent"),
    ("burst quantile below the median", "spec.scaling.overrides", {"burstQuantile": 0.4}, "burstQuantile"),
    ("fast path below 100%", "spec.scaling.overrides", {"fastPathPercent": 90}, "fastPathPercent"),
    ("calibration without a batch size", "spec.scaling.calibration", {"baseMs": 20, "perItemMs": 2}, "maxBatch"),
    ("negative batch time", "spec.scaling.calibration", {"baseMs": -1, "perItemMs": 2, "maxBatch": 8}, "baseMs"),
    ("unknown routing", "spec.scaling.routing", {"model": "random"}, "model"),
    ("no connections", "spec.scaling.routing", {"model": "per-connection", "connections": 0}, "connections"),
    ("queue policy without a timeout", "spec.triton.queuePolicy", {"maxQueueSize": 10}, "timeoutMs"),
    ("queue time-out of 0", "spec.triton.queuePolicy", {"timeoutMs": 0}, "timeoutMs"),
    ("queue of 0", "spec.triton.queuePolicy", {"timeoutMs": 100, "maxQueueSize": 0}, "maxQueueSize"),
    ("queue policy: unknown field", "spec.triton.queuePolicy", {"timeoutMs": 100, "action": "DELAY"}, "action"),
    ("minReplicas 0: no scale-to-zero yet", "spec.scaling.minReplicas", 0, "minReplicas"),
    ("gpuProduct of 64 characters", "spec.triton.gpuProduct", "A" * 64, "gpuProduct"),
    ("gpuProduct ending in '-'", "spec.triton.gpuProduct", "NVIDIA-H100-", "gpuProduct"),
    ("image with surrounding spaces", "spec.triton.image", " nvcr.io/nvidia/tritonserver:24.08-py3 ", "image"),
    ("image with a space inside", "spec.triton.image", "nvcr.io/nvidia/triton server:1", "image"),
]

# issue 15, defect 9: what a spec can grow by is bounded at admission (the CRD's maxItems/maxLength: a 422 naming
# the field), never admitted to fail later; (name, path, value at the bound, value beyond it, field)
ENV = {"name": "V", "value": "x"}
WARM_IN = {"name": "INPUT0", "datatype": "FP32", "shape": [1, 2], "data": [0.5, 1.5]}
BOUNDS: list[tuple[str, str, Any, Any, str]] = [
    ("triton.args: 256 arguments", "spec.triton.args", ["--a"] * 256, ["--a"] * 257, "args"),
    ("triton.args: an argument of 4096 characters", "spec.triton.args", ["a" * 4096], ["a" * 4097], "args.0"),
    ("triton.env: 256 variables", "spec.triton.env", [ENV] * 256, [ENV] * 257, "env"),
    ("triton.env: a value of 32 KiB", "spec.triton.env", [{"name": "V", "value": "x" * 32768}], [{"name": "V", "value": "x" * 32769}], "value"),
    ("warmup.inputs: 64 inputs", "spec.warmup.inputs", [WARM_IN] * 64, [WARM_IN] * 65, "inputs"),
    ("warmup.inputs: 65,536 elements", "spec.warmup.inputs", [{**WARM_IN, "shape": [65536], "data": [0.5] * 65536}],
     [{**WARM_IN, "shape": [65537], "data": [0.5] * 65537}], "data"),
    ("podTemplate: 64 tolerations", "spec.triton.podTemplate.spec.tolerations", [{"operator": "Exists"}] * 64, [{"operator": "Exists"}] * 65, "tolerations"),
    ("podTemplate: 256 arguments of an added container", "spec.triton.podTemplate.spec.containers",
     [{"name": "side", "image": "busybox", "args": ["a"] * 256}], [{"name": "side", "image": "busybox", "args": ["a"] * 257}], "args"),
    ("podTemplate: 256 variables of triton", "spec.triton.podTemplate.spec.containers", [{"name": "triton", "env": [ENV] * 256}],
     [{"name": "triton", "env": [ENV] * 257}], "env"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "path", "at", "beyond", "field"), BOUNDS, ids=[c[0] for c in BOUNDS])
def test_what_a_spec_grows_by_is_bounded_naming_the_field(name: str, path: str, at: Any, beyond: Any, field: str) -> None:
    IsvcBuilder().set(path, at).build()
    with pytest.raises(ValidationError, match=field):
        IsvcBuilder().set(path, beyond).build()


NAMES: list[tuple[str, str, str | None]] = [
    ("plain label", "resnet-50", None),
    ("45 characters", "a" * 45, None),
    ("a dot (a version)", "v1.2", "DNS-1035 label"),
    ("a leading digit", "1resnet", "DNS-1035 label"),
    ("upper case", "ResNet", "DNS-1035 label"),
    ("ends in '-'", "resnet-", "DNS-1035 label"),
    ("46 characters", "a" * 46, "at most 45 characters"),
]


@pytest.mark.parametrize(("case", "name", "error"), NAMES, ids=[c[0] for c in NAMES])
def test_the_name_must_name_a_service(case: str, name: str, error: str | None) -> None:
    if error is None:
        assert IsvcBuilder(name).build().name == name, case
        return
    with pytest.raises(ValidationError, match=error):
        IsvcBuilder(name).build()


@pytest.mark.parametrize(("name", "path", "value", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_specs_are_rejected_naming_the_field(name: str, path: str, value: Any, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        IsvcBuilder().set(path, value).build()


def test_defaults() -> None:
    isvc = IsvcBuilder().build()
    assert isvc.spec.triton.image == DEFAULT_TRITON_IMAGE
    assert isvc.spec.triton.gpus_per_replica == 1
    assert isvc.spec.priority is Priority.STANDARD
    assert (isvc.spec.scaling.min_replicas, isvc.spec.scaling.max_replicas) == (1, 10)
    assert isvc.spec.warmup.enabled


@pytest.mark.parametrize(
    ("name", "policy", "override", "expect"),
    [
        ("defaults only", None, None, {"tick_seconds": 2, "error_budget_percent": 0.5}),
        ("policy wins over defaults", ScalingBehavior(tick_seconds=2), None, {"tick_seconds": 2}),
        ("override wins over policy", ScalingBehavior(tick_seconds=2), ScalingBehavior(tick_seconds=10), {"tick_seconds": 10}),
        (
            "override of another field keeps the policy",
            ScalingBehavior(tick_seconds=2),
            ScalingBehavior(error_budget_percent=1),
            {"tick_seconds": 2, "error_budget_percent": 1},
        ),
    ],
)
def test_behavior_layers(
    name: str, policy: ScalingBehavior | None, override: ScalingBehavior | None, expect: dict[str, float]
) -> None:
    resolved = ScalingBehavior().resolve(policy, override)
    for k, v in expect.items():
        assert getattr(resolved, k) == v, name
    assert resolved.max_scale_down_rate == DEFAULT_BEHAVIOR.max_scale_down_rate


@pytest.mark.parametrize(
    ("quantity", "ok"),
    [
        ("1Gi", True),
        ("512Mi", True),
        ("2G", True),
        ("500m", True),
        ("0.5", True),
        ("1e3", True),
        ("-1", False),
        ("lots", False),
        ("1.5.5", False),
    ],
)
def test_quantities(quantity: str, ok: bool) -> None:
    b = IsvcBuilder().set("spec.triton.resources", {"limits": {"memory": quantity}})
    if ok:
        b.build()
    else:
        with pytest.raises(ValidationError, match="memory"):
            b.build()


POLICIES: dict[str, dict[str, Any]] = {
    "fast": {"metadata": {"name": "fast"}, "spec": {"tickSeconds": 1, "errorBudgetPercent": 2}},
    "broken": {"metadata": {"name": "broken"}, "spec": {"tickSeconds": 0.5}},
}


@pytest.mark.parametrize(
    ("name", "ref", "override", "tick", "budget", "problem"),
    [
        ("no policy: defaults", None, None, 2, 0.5, None),
        ("no policy, an override", None, ScalingBehavior(tick_seconds=3), 3, 0.5, None),
        ("the named policy", "fast", None, 1, 2, None),
        ("an override wins over the policy", "fast", ScalingBehavior(error_budget_percent=0.1), 1, 0.1, None),
        ("a missing policy: defaults and the override, reported", "gone", ScalingBehavior(tick_seconds=3), 3, 0.5, Reason.POLICY_NOT_FOUND),
        ("an invalid policy: defaults, reported", "broken", None, 2, 0.5, Reason.POLICY_INVALID),
    ],
)
def test_resolve_policy(
    name: str, ref: str | None, override: ScalingBehavior | None, tick: float, budget: float, problem: Reason | None
) -> None:
    got = resolve_policy(ref, override, POLICIES)
    assert (got.behavior.tick_seconds, got.behavior.error_budget_percent) == (tick, budget), name
    assert (got.problem.reason if got.problem else None) == problem, name
    if got.problem is not None:
        assert repr(ref) in got.problem.message


STORAGE_URIS = [
    ("s3 prefix", {"storageUri": "s3://models/emulated"}),
    ("s3 whole bucket, settings", {"storageUri": "s3://models", "s3": {"endpoint": "http://10.0.0.1:8333", "region": "eu-west-1", "secretName": "s3"}}),
    ("gs prefix", {"storageUri": "gs://my-bucket/team/resnet/"}),
    ("https tar.gz with sha256", {"storageUri": "https://example.com/m/resnet.tar.gz", "sha256": "a" * 64}),
    ("http zip with a query", {"storageUri": "http://10.0.0.1:8888/buckets/m.zip?token=x"}),
    ("tgz", {"storageUri": "https://h/a/b.tgz"}),
]  # fmt: skip


@pytest.mark.parametrize("repository", [c[1] for c in STORAGE_URIS], ids=[c[0] for c in STORAGE_URIS])
def test_storage_uris_admitted(repository: dict[str, Any]) -> None:
    isvc = IsvcBuilder().set("spec.model.repository", repository).build()
    assert isvc.spec.model.repository.storage_uri == repository["storageUri"]


# issue 15: warm-up inputs were free-form; a malformed one failed inside the warm-up (a KeyError from the
# replica's task), never at admission. (name, input, what the message names)
BAD_WARMUP_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    ("no datatype", {"name": "X", "shape": [2], "data": [1, 2]}, "datatype"),
    ("an unknown datatype", {**WARM_IN, "datatype": "FLOAT"}, "datatype"),
    ("more elements than the shape holds", {**WARM_IN, "data": [1, 2, 3]}, "3 elements, but shape [1, 2] holds 2"),
    ("nested, one short", {**WARM_IN, "shape": [2, 2], "data": [[1, 2], [3]]}, "3 elements, but shape [2, 2] holds 4"),
    ("a variable dimension", {**WARM_IN, "shape": [-1, 2]}, "shape.0"),
    ("a string in an FP32 tensor", {**WARM_IN, "data": [1.0, "x"]}, "data element 1 is 'x': a FP32 element is a number"),
    ("a number in a BYTES tensor", {**WARM_IN, "datatype": "BYTES", "data": ["a", 2]}, "a BYTES element is a string"),
    ("a number in a BOOL tensor", {**WARM_IN, "datatype": "BOOL", "data": [True, 1]}, "a BOOL element is true or false"),
    ("no shape", {**WARM_IN, "shape": []}, "shape"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "given", "message"), BAD_WARMUP_INPUTS, ids=[c[0] for c in BAD_WARMUP_INPUTS])
def test_a_malformed_warm_up_input_is_refused_naming_what_is_wrong(name: str, given: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        IsvcBuilder().set("spec.warmup.inputs", [given]).build()


def test_warm_up_inputs_flat_or_nested_of_each_kind_are_kept() -> None:
    ok = [
        {**WARM_IN, "shape": [2, 2], "data": [[1, 2], [3.5, 4]]},
        {"name": "T", "datatype": "BYTES", "shape": [1], "data": ["hello"]},
        {"name": "M", "datatype": "BOOL", "shape": [2], "data": [True, False]},
    ]
    isvc = IsvcBuilder().set("spec.warmup.inputs", ok).build()
    assert [i.model_dump(mode="json") for i in isvc.spec.warmup.inputs] == ok
