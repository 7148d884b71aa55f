"""Which images the local runtime runs (Triton, Foresail), which it leaves to kwok (pause) and which it refuses."""

from __future__ import annotations

from typing import Any

__all__ = ["FORESAIL_IMAGE", "image_kind", "is_kwok_pod"]

# The Foresail image, named in one place: the chart's default image repository must match.
FORESAIL_IMAGE = "ghcr.io/foresail/foresail"


def image_kind(image: str) -> str | None:
    """``triton``, ``foresail``, ``pause`` or None (unsupported) for a container image reference."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref = ref[: ref.rfind(":")]
    if ref.endswith("tritonserver"):
        return "triton"
    if ref == FORESAIL_IMAGE or ref.endswith("/foresail"):
        return "foresail"
    if ref.rsplit("/", 1)[-1] == "pause":
        return "pause"
    return None


def is_kwok_pod(pod: dict[str, Any]) -> bool:
    """Pods whose containers are all pause images are kwok's to simulate."""
    return all(image_kind(c["image"]) == "pause" for c in pod["spec"]["containers"])
