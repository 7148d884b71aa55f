"""The Triton pod template: restricted security defaults, /dev/shm from the spec, and the user's overlay merged in."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from foresail.api.meta import validation_message
from foresail.api.objects import GPU_PRODUCT_LABEL, LABEL_ISVC
from foresail.render.triton import render_deployment
from tests.builders import IsvcBuilder


def _pod(overlay: dict[str, Any] | None = None, **triton: Any) -> dict[str, Any]:
    b = IsvcBuilder()
    for k, v in triton.items():
        b.set(f"spec.triton.{k}", v)
    if overlay is not None:
        b.set("spec.triton.podTemplate", overlay)
    template: dict[str, Any] = render_deployment(b.build())["spec"]["template"]
    return template


def _triton(template: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = next(c for c in template["spec"]["containers"] if c["name"] == "triton")
    return c


def test_defaults_meet_the_restricted_pod_security_standard() -> None:
    t = _pod()
    pod_sc, c = t["spec"]["securityContext"], _triton(t)
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == 1000 and pod_sc["seccompProfile"]["type"] == "RuntimeDefault"
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]} and sc["readOnlyRootFilesystem"]
    vols = {v["name"]: v for v in t["spec"]["volumes"]}
    assert vols["dshm"] == {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}
    assert vols["tmp"] == {"name": "tmp", "emptyDir": {}}
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/models", "/tmp", "/dev/shm"}


@pytest.mark.parametrize(
    ("name", "shm", "volume"),
    [
        ("a size", "4Gi", {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "4Gi"}}),
        ("0: the runtime's default /dev/shm", "0", None),
    ],
)
def test_shm_size(name: str, shm: str, volume: dict[str, Any] | None) -> None:
    t = _pod(shmSize=shm)
    assert next((v for v in t["spec"]["volumes"] if v["name"] == "dshm"), None) == volume, name


CASES: list[tuple[str, dict[str, Any], Any]] = [
    (
        "labels and annotations are added, Foresail's stay",
        {"metadata": {"labels": {"team": "vision"}, "annotations": {"a": "b"}}},
        lambda t: t["metadata"]["labels"]["team"] == "vision"
        and t["metadata"]["labels"][LABEL_ISVC] == "resnet"
        and t["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "8002", "a": "b"},
    ),
    (
        "service account and image pull secrets",
        {"spec": {"serviceAccountName": "triton", "imagePullSecrets": [{"name": "ngc"}]}},
        lambda t: t["spec"]["serviceAccountName"] == "triton" and t["spec"]["imagePullSecrets"] == [{"name": "ngc"}],
    ),
    (
        "tolerations are appended to the GPU toleration",
        {"spec": {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]}},
        lambda t: [x["key"] for x in t["spec"]["tolerations"]] == ["nvidia.com/gpu", "dedicated"],
    ),
    (
        "node selector merges, the GPU product of spec.triton wins",
        {"spec": {"nodeSelector": {"zone": "a", GPU_PRODUCT_LABEL: "other"}}},
        lambda t: t["spec"]["nodeSelector"] == {"zone": "a", GPU_PRODUCT_LABEL: "H100"},
    ),
    (
        "affinity merges with the anti-affinity",
        {"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}},
        lambda t: {"nodeAffinity", "podAntiAffinity"} <= set(t["spec"]["affinity"]),
    ),
    (
        "topology spread",
        {"spec": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]}},
        lambda t: t["spec"]["topologySpreadConstraints"][0]["topologyKey"] == "zone",
    ),
    (
        "the pod security context is merged over the restricted defaults",
        {"spec": {"securityContext": {"runAsUser": 2000, "supplementalGroups": [5]}}},
        lambda t: t["spec"]["securityContext"]["runAsUser"] == 2000 and t["spec"]["securityContext"]["runAsNonRoot"] is True,
    ),
    (
        "volumes, env and mounts of the triton container",
        {
            "spec": {
                "volumes": [{"name": "cache", "emptyDir": {}}],
                "containers": [
                    {
                        "name": "triton",
                        "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "envFrom": [{"configMapRef": {"name": "cfg"}}],
                        "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
                        "securityContext": {"readOnlyRootFilesystem": False},
                    }
                ],
            }
        },
        lambda t: any(v["name"] == "cache" for v in t["spec"]["volumes"])
        and _triton(t)["env"][-1]["name"] == "A"
        and _triton(t)["envFrom"] == [{"configMapRef": {"name": "cfg"}}]
        and {"mountPath": "/cache", "name": "cache"} in _triton(t)["volumeMounts"]
        and _triton(t)["securityContext"]["readOnlyRootFilesystem"] is False
        and _triton(t)["securityContext"]["capabilities"] == {"drop": ["ALL"]},
    ),
    (
        "another container is added",
        {"spec": {"containers": [{"name": "proxy", "image": "envoyproxy/envoy:v1.31", "args": ["-c", "/etc/envoy.yaml"]}]}},
        lambda t: [c["name"] for c in t["spec"]["containers"]] == ["triton", "proxy"]
        and t["spec"]["containers"][1] == {"name": "proxy", "image": "envoyproxy/envoy:v1.31", "args": ["-c", "/etc/envoy.yaml"]},
    ),
]


@pytest.mark.parametrize(("name", "overlay", "check"), CASES, ids=[c[0] for c in CASES])
def test_overlay(name: str, overlay: dict[str, Any], check: Any) -> None:
    assert check(_pod(overlay, gpuProduct="H100")), name


@pytest.mark.parametrize(
    ("name", "overlay", "field"),
    [
        ("the triton image is spec.triton.image", {"spec": {"containers": [{"name": "triton", "image": "x"}]}}, "containers.0"),
        ("the triton args are spec.triton.args", {"spec": {"containers": [{"name": "triton", "args": ["--x"]}]}}, "containers.0"),
        ("an added container needs an image", {"spec": {"containers": [{"name": "side"}]}}, "containers.0"),
        ("reserved volume names", {"spec": {"volumes": [{"name": "dshm", "emptyDir": {}}]}}, "volumes.0"),
        ("reserved labels", {"metadata": {"labels": {"foresail.dev/inferenceservice": "x"}}}, "metadata"),
        ("unknown pod spec fields", {"spec": {"nodeSelecter": {"a": "b"}}}, "nodeSelecter"),
        ("a mount needs an absolute path", {"spec": {"containers": [{"name": "triton", "volumeMounts": [{"name": "v", "mountPath": "x"}]}]}}, "mountPath"),
    ],
)
def test_bad_overlays_are_refused_naming_the_field(name: str, overlay: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as e:
        IsvcBuilder().set("spec.triton.podTemplate", overlay).build()
    msg = validation_message(e.value)
    assert "spec.triton.podTemplate" in msg and field in msg, (name, msg)
