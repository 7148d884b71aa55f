"""What every Foresail resource model shares: its metadata and the accessors the controllers use."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Resource"]


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
