"""What every Foresail resource model shares: its metadata and the accessors the controllers use."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["RELATIVE_PATH", "Resource", "SpecModel", "validation_message"]

# A relative path inside a volume: segments separated by single "/", none of them "." or ".." (RE2, so the
# CRD's OpenAPI pattern is the same expression): no absolute paths, no climbing out of the volume.
RELATIVE_PATH = r"^([^./][^/]*|\.[^./][^/]*|\.\.[^/]+)(/([^./][^/]*|\.[^./][^/]*|\.\.[^/]+))*$"


class SpecModel(BaseModel):
    """Base of every spec/status part: camelCase aliases accepted alongside field names, unknown fields refused."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class Resource(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", ""))

    @property
    def generation(self) -> int:
        return int(self.metadata.get("generation", 0) or 0)


def validation_message(e: ValidationError) -> str:
    """One line naming each invalid field by its path: ``spec.scaling.minReplicas: Input should be ...``."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
