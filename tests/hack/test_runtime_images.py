"""Which images the local runtime runs, and which it leaves to kwok or refuses."""

from __future__ import annotations

import pytest

from hack.runtime import FORESAIL_IMAGE, image_kind


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
