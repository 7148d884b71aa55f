"""Which pods the local runtime leaves to kwok, and what its fast mode runs for an image (or refuses)."""

from __future__ import annotations

from typing import Any

import pytest

from hack.testbed.runtime.images import FORESAIL_IMAGE, image_kind, is_kwok_pod
from hack.testbed.runtime.processes import UnsupportedCommand, container_command


@pytest.mark.parametrize(
    ("image", "kind"),
    [
        ("nvcr.io/nvidia/tritonserver:24.08-py3", "triton"),
        ("registry.local:5000/team/tritonserver@sha256:abc", "triton"),
        (f"{FORESAIL_IMAGE}:0.1.0", "foresail"),
        ("registry.k8s.io/pause:3.10", "pause"),
        ("nginx:1.27", None),
        ("localhost:5000/nginx", None),
    ],
)
def test_image_kind(image: str, kind: str | None) -> None:
    assert image_kind(image) == kind


@pytest.mark.parametrize(
    ("name", "images", "kwok"),
    [
        ("only pause containers: kwok simulates the pod", ["registry.k8s.io/pause:3.10"], True),
        (
            "a Triton container: the runtime runs it",
            ["registry.k8s.io/pause:3.10", "nvcr.io/nvidia/tritonserver:24.08-py3"],
            False,
        ),
        ("an unsupported image: the runtime reports it", ["nginx:1.27"], False),
    ],
)
def test_kwok_pods_are_those_of_pause_images_only(name: str, images: list[str], kwok: bool) -> None:
    pod = {"spec": {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]}}
    assert is_kwok_pod(pod) == kwok, name


@pytest.mark.parametrize(
    ("name", "spec", "argv_tail"),
    [
        ("tritonserver args", {"image": "nvcr.io/nvidia/tritonserver:24.08-py3", "args": ["tritonserver", "--model-repository=/m"]}, ["--model-repository=/m"]),
        ("the foresail entrypoint", {"image": f"{FORESAIL_IMAGE}:0.1.0", "args": ["eval-worker"]}, ["-m", "foresail", "eval-worker"]),
        ("python in the foresail image", {"image": f"{FORESAIL_IMAGE}:0.1.0", "command": ["python", "-c", "1"]}, ["-c", "1"]),
    ],
)
def test_fast_mode_commands(name: str, spec: dict[str, Any], argv_tail: list[str]) -> None:
    argv, _env = container_command(spec["image"], spec)
    assert argv[-len(argv_tail) :] == argv_tail, name


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("an image the fast mode does not know", {"image": "nginx:1.27"}),
        ("a Triton image running something else", {"image": "nvcr.io/nvidia/tritonserver:24.08-py3", "command": ["bash"]}),
    ],
)
def test_fast_mode_refuses(name: str, spec: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedCommand):
        container_command(spec["image"], spec)
