"""What every Foresail resource model shares: its metadata and the accessors the controllers use."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["ARG", "DNS_1035_LABEL", "ENV_VALUE_MAX", "LIST_MAX", "RELATIVE_PATH", "Resource", "ServiceNamed", "SpecModel", "service_name_problem", "validation_message"]

# A Service's name: a DNS-1035 label (a letter first, no dots); InferenceServices and EvalJobs name Services
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

# A relative path inside a volume: segments separated by single "/", none of them "." or ".." (RE2, so the
# CRD's OpenAPI pattern is the same expression): no absolute paths, no climbing out of the volume.
# Bounds of the lists and strings a spec can grow by (issue 15, defect 9): a spec beyond them is refused at
# admission with a 422 naming the field (Too many / Too long), never admitted to fail later. An argument or
# environment value is one string of the exec call (Linux refuses one over 128 KiB: MAX_ARG_STRLEN).
LIST_MAX = 256  # arguments, commands, environment variables
ENV_VALUE_MAX = 32_768
ARG = Annotated[str, Field(max_length=4096)]
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


def service_name_problem(name: str, max_length: int) -> str | None:
    """Why ``name`` cannot name the Services derived from it (None: it can): the CRD's rule, for objects
    admitted before the rule existed."""
    if len(name) > max_length:
        return f"metadata.name must be at most {max_length} characters (names of derived objects must fit)"
    if not re.fullmatch(DNS_1035_LABEL, name):
        return (
            f"metadata.name {name!r} must be a DNS-1035 label (lower-case letters, digits and '-', a letter first, "
            "no '.'): it names a Service"
        )
    return None


class ServiceNamed(Resource):
    """A resource whose name names Services (and other derived objects): refused when it cannot."""

    name_max: ClassVar[int] = 63

    @field_validator("metadata")
    @classmethod
    def _service_name(cls, md: dict[str, Any]) -> dict[str, Any]:
        problem = service_name_problem(str(md["name"]), cls.name_max) if "name" in md else None
        if problem:
            raise ValueError(problem)
        return md
