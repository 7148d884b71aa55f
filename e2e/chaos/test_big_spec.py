"""Specs over 256 KiB (issue 15, defect 9's last part), against the real apiserver and the operator.

The apiserver limits all annotations of an object to 256 KiB together. kopf's default diff base is a copy of
the spec in an annotation: a bigger spec was admitted, then every patch recording it was refused (422
``metadata.annotations: Too long``) and the handler ran again on each event, forever. The operator now keeps
digests there (``controllers/diffbase.py``); what a spec can grow by is bounded by the CRD (a 422 naming the
field). Shown here: the apiserver refuses an annotation the old storage would have written for this spec; a
~320 KB spec is served, follows a change, and its diff base stays small; specs beyond a bound are refused with
the field in the message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.helpers import pause_isvc
from foresail.api.objects import condition
from hack.base.kube import Kube, KubeError
from hack.base.wait import wait_for

DIFF_BASE = "foresail.dev/last-handled-configuration"
ENV_VARS = 40  # of 8,000 characters: a ~320 KB spec, over the 256 KiB of all annotations together


def _big(name: str, value: str = "x") -> dict[str, Any]:
    env = [{"name": f"BIG_{i}", "value": value * 8000} for i in range(ENV_VARS)]
    return pause_isvc(name, triton={"image": "registry.k8s.io/pause:3.10", "gpusPerReplica": 1, "env": env})


def _path(ns: str, name: str) -> str:
    return f"/apis/foresail.dev/v1alpha1/namespaces/{ns}/inferenceservices/{name}"


def _triton(kube: Kube, ns: str, name: str) -> dict[str, Any] | None:
    dep = kube.api_get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    if dep is None:
        return None
    c: dict[str, Any] = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "triton")
    return c


def test_a_spec_over_256_kib_is_served_and_follows_a_change(operator: Kube, namespace: str) -> None:
    ns = namespace
    operator.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
    obj = _big("big")
    size = len(json.dumps(obj["spec"], separators=(",", ":")))
    assert size > 256 * 1024, size
    operator.create(obj, ns)
    print(f"\n[figure] spec of {size:,} bytes admitted")

    # what kopf's own diff base storage wrote for this spec: the apiserver refuses it
    copy = json.dumps({"spec": obj["spec"]}, separators=(",", ":"))
    with pytest.raises(KubeError) as refused:
        operator.api("PATCH", _path(ns, "big"), {"metadata": {"annotations": {"example.com/copy": copy}}},
                     content_type="application/merge-patch+json")  # fmt: skip
    assert refused.value.code == 422 and "Too long" in refused.value.message, refused.value
    print(f"[figure] a copy of it as an annotation (kopf's default diff base): {refused.value.message[:160]}")

    def ready() -> dict[str, Any] | None:
        c = condition(operator.get("fisvc", "-n", ns, "big"), "Ready")
        return c if c and c["status"] == "True" else None

    wait_for("the 320 KB service Ready", ready, timeout=120)
    triton = _triton(operator, ns, "big")
    assert triton is not None and sum(1 for e in triton.get("env", []) if e["name"].startswith("BIG_")) == ENV_VARS
    base = operator.get("fisvc", "-n", ns, "big")["metadata"]["annotations"].get(DIFF_BASE, "")
    assert 0 < len(base) < 1024, base[:200]

    # a change of the spec is handled (the diff base was stored, and the digests show the change)
    patch = [{"op": "add", "path": "/spec/triton/args", "value": ["--log-verbose=1"]}]
    operator.api("PATCH", _path(ns, "big"), patch, content_type="application/json-patch+json")
    wait_for("the change in the Deployment", lambda: "--log-verbose=1" in " ".join((_triton(operator, ns, "big") or {}).get("args", [])),
             timeout=60)  # fmt: skip
    after = operator.get("fisvc", "-n", ns, "big")
    assert len(after["metadata"]["annotations"].get(DIFF_BASE, "")) < 1024
    assert not [k for k in after["metadata"]["annotations"] if "on_isvc" in k], "no handler left retrying"


BEYOND: list[tuple[str, dict[str, Any], str]] = [
    ("257 environment variables", {"env": [{"name": f"V{i}", "value": "x"} for i in range(257)]}, "spec.triton.env"),
    ("an environment value of 32 KiB + 1", {"env": [{"name": "V", "value": "x" * 32769}]}, "spec.triton.env[0].value"),
    ("257 arguments", {"args": ["--a"] * 257}, "spec.triton.args"),
    ("an argument of 4097 characters", {"args": ["a" * 4097]}, "spec.triton.args[0]"),
]


@pytest.mark.parametrize(("name", "triton", "field"), BEYOND, ids=[b[0] for b in BEYOND])
def test_a_spec_beyond_a_bound_is_refused_naming_the_field(operator: Kube, namespace: str, name: str, triton: dict[str, Any], field: str) -> None:
    obj = pause_isvc("over")
    obj["spec"]["triton"].update(triton)
    proc = operator.create(obj, namespace, check=False)
    assert proc.returncode != 0, name
    assert field in proc.stderr and ("Too many" in proc.stderr or "Too long" in proc.stderr), proc.stderr[:500]


WARM_IN = {"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "data": [0.5] * 16}
BAD_WARMUP: list[tuple[str, dict[str, Any], str, str]] = [
    ("an unknown datatype", {**WARM_IN, "datatype": "FLOAT"}, "spec.warmup.inputs[0].datatype", "Unsupported value"),
    ("a variable dimension", {**WARM_IN, "shape": [-1, 16]}, "spec.warmup.inputs[0].shape[0]", "greater than or equal to 0"),
    ("65,537 elements", {**WARM_IN, "shape": [65537], "data": [0.5] * 65537}, "spec.warmup.inputs[0].data", "Too many"),
    ("no datatype", {k: v for k, v in WARM_IN.items() if k != "datatype"}, "spec.warmup.inputs[0]", "a warm-up input needs name, datatype and shape"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "given", "field", "why"), BAD_WARMUP, ids=[b[0] for b in BAD_WARMUP])
def test_a_malformed_warm_up_input_is_refused_naming_the_field(operator: Kube, namespace: str, name: str, given: dict[str, Any], field: str, why: str) -> None:
    obj = pause_isvc("warm")
    obj["spec"]["warmup"] = {"inputs": [given]}
    proc = operator.create(obj, namespace, check=False)
    assert proc.returncode != 0, name
    assert field in proc.stderr and why in proc.stderr, proc.stderr[:500]
