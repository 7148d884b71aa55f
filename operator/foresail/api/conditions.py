"""Status conditions following the Kubernetes API conventions (pure; ``now`` is an argument)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from foresail.api.objects import format_rfc3339

__all__ = ["Condition", "ConditionStatus", "find_condition", "set_condition"]


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(BaseModel):
    """One observation of an aspect of the resource's state."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    type: str = Field(description="Type of the condition, in CamelCase (Ready, MetricsAvailable, ...).")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="Machine-readable CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable details of the last transition.")
    observed_generation: int = Field(
        default=0, alias="observedGeneration", description="The .metadata.generation the condition was set for."
    )
    last_transition_time: str = Field(
        default="", alias="lastTransitionTime", description="When the status last changed (RFC 3339)."
    )


def find_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Return ``conditions`` with ``type_`` set; the transition time moves only when the status changes."""
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    old = find_condition(conditions, type_)
    changed = old is None or old.status != status
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=format_rfc3339(now) if changed or old is None else old.last_transition_time,
    )
    out = [c for c in conditions if c.type != type_]
    out.append(new)
    return sorted(out, key=lambda c: c.type)
