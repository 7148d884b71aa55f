"""Which images the local runtime runs, and which it leaves to kwok or refuses."""

from __future__ import annotations

import pytest

from hack.testbed.runtime.images import FORESAIL_IMAGE, image_kind, is_kwok_pod


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
