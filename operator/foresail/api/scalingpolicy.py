"""ScalingPolicy (cluster-scoped): a named preset of scaling behaviour.

Every field is optional in a policy or an inline override; ``ScalingBehavior.resolve`` layers
defaults <- policy <- overrides, and the result is a ``ResolvedBehavior`` with every value set.
``resolve_policy`` does that for a service from the listed policies (pure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from foresail.api.conditions import Condition
from foresail.api.meta import Resource, validation_message
from foresail.api.reasons import Problem, Reason

__all__ = [
    "DEFAULT_BEHAVIOR",
    "PolicyResolution",
    "ResolvedBehavior",
    "ScalingBehavior",
    "ScalingPolicy",
    "ScalingPolicySpec",
    "resolve_policy",
]


class ScalingBehavior(BaseModel):
    """Scaling settings; unset fields inherit from the policy, then the defaults."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.panicWindowSeconds) || !has(self.stableWindowSeconds) || self.panicWindowSeconds <= self.stableWindowSeconds",
                    "message": "panicWindowSeconds must be <= stableWindowSeconds",
                }
            ]
        },
    )

    tick_seconds: float | None = Field(
        default=None,
        alias="tickSeconds",
        ge=1,
        le=300,
        description="How often the autoscaler decides for the service, seconds (rounded up to the operator's loop period).",
    )
    stable_window_seconds: float | None = Field(
        default=None, alias="stableWindowSeconds", ge=5, le=3600, description="Averaging window of the stable mode, seconds."
    )
    panic_window_seconds: float | None = Field(
        default=None, alias="panicWindowSeconds", ge=1, le=600, description="Averaging window of the panic mode, seconds."
    )
    panic_threshold_percent: float | None = Field(
        default=None,
        alias="panicThresholdPercent",
        ge=110,
        le=1000,
        description="Enter panic when demand over the panic window exceeds this % of ready capacity.",
    )
    target_utilization_percent: float | None = Field(
        default=None,
        alias="targetUtilizationPercent",
        ge=10,
        le=100,
        description="Plan replicas at this % of the capacity that meets the SLO.",
    )
    max_scale_up_rate: float | None = Field(
        default=None,
        alias="maxScaleUpRate",
        ge=1,
        le=1000,
        description="At most this factor more replicas per tick (e.g. 2 = double).",
    )
    max_scale_down_rate: float | None = Field(
        default=None,
        alias="maxScaleDownRate",
        ge=1,
        le=1000,
        description="At most this factor fewer replicas per tick (e.g. 2 = halve).",
    )
    scale_down_delay_seconds: float | None = Field(
        default=None,
        alias="scaleDownDelaySeconds",
        ge=0,
        le=3600,
        description="Stabilization: scale down only to the highest recommendation of this window.",
    )
    forecast_enabled: bool | None = Field(
        default=None, alias="forecastEnabled", description="Scale ahead of demand from a forecast."
    )
    forecast_history_seconds: float | None = Field(
        default=None,
        alias="forecastHistorySeconds",
        ge=60,
        le=14 * 86400,
        description="History the forecaster learns from, seconds.",
    )
    forecast_quantile: float | None = Field(
        default=None, alias="forecastQuantile", ge=0.5, le=0.999, description="Plan for this upper quantile of the forecast."
    )
    headroom_percent: float | None = Field(
        default=None, alias="headroomPercent", ge=0, le=500, description="Extra capacity on top of the forecast, %."
    )

    def merged(self, other: ScalingBehavior | None) -> ScalingBehavior:
        """``self`` with every field ``other`` sets replaced."""
        if other is None:
            return self
        data = self.model_dump(exclude_none=True)
        data.update(other.model_dump(exclude_none=True))
        return ScalingBehavior.model_validate(data)

    def resolve(self, *layers: ScalingBehavior | None) -> ResolvedBehavior:
        out = DEFAULT_BEHAVIOR.merged(self)
        for layer in layers:
            out = out.merged(layer)
        return ResolvedBehavior.model_validate(out.model_dump())


class ResolvedBehavior(BaseModel):
    """Scaling settings with every value set."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)
    tick_seconds: float
    stable_window_seconds: float
    panic_window_seconds: float
    panic_threshold_percent: float
    target_utilization_percent: float
    max_scale_up_rate: float
    max_scale_down_rate: float
    scale_down_delay_seconds: float
    forecast_enabled: bool
    forecast_history_seconds: float
    forecast_quantile: float
    headroom_percent: float


DEFAULT_BEHAVIOR = ScalingBehavior(
    tick_seconds=5,
    stable_window_seconds=60,
    panic_window_seconds=6,
    panic_threshold_percent=200,
    target_utilization_percent=80,
    max_scale_up_rate=10,
    max_scale_down_rate=2,
    scale_down_delay_seconds=300,
    forecast_enabled=True,
    forecast_history_seconds=3600,
    forecast_quantile=0.9,
    headroom_percent=0,
)


class ScalingPolicySpec(ScalingBehavior):
    description: str | None = Field(default=None, max_length=1024, description="What this preset is for.")


class ScalingPolicyStatus(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    conditions: list[Condition] = Field(default_factory=list, description="Conditions of the policy.")


class ScalingPolicy(Resource):
    """A named preset of scaling behaviour that InferenceServices reference with scaling.policyRef."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    api_version: str = Field(default="foresail.dev/v1alpha1", alias="apiVersion")
    kind: str = Field(default="ScalingPolicy")
    spec: ScalingPolicySpec = Field(default_factory=ScalingPolicySpec)
    status: ScalingPolicyStatus = Field(default_factory=ScalingPolicyStatus)

    def behavior(self) -> ScalingBehavior:
        return ScalingBehavior.model_validate(self.spec.model_dump(exclude={"description"}, exclude_none=True))


@dataclass(frozen=True)
class PolicyResolution:
    behavior: ResolvedBehavior
    problem: Problem | None = None  # the referenced policy is missing or invalid: defaults and overrides apply


def resolve_policy(
    ref: str | None, overrides: ScalingBehavior | None, policies: Mapping[str, Mapping[str, Any]]
) -> PolicyResolution:
    """The behaviour of a service: defaults <- the ScalingPolicy ``ref`` (from ``policies``, listed
    objects by name) <- its inline ``overrides``. A missing or invalid policy is reported, not fatal."""
    if not ref:
        return PolicyResolution(ScalingBehavior().resolve(overrides))
    body = policies.get(ref)
    if body is None:
        return PolicyResolution(
            ScalingBehavior().resolve(overrides),
            Problem(Reason.POLICY_NOT_FOUND, f"ScalingPolicy {ref!r} not found: using defaults"),
        )
    try:
        policy = ScalingPolicy.model_validate(body).behavior()
    except ValidationError as e:
        return PolicyResolution(
            ScalingBehavior().resolve(overrides),
            Problem(Reason.POLICY_INVALID, f"ScalingPolicy {ref!r} is invalid ({validation_message(e)}): using defaults"),
        )
    return PolicyResolution(ScalingBehavior().resolve(policy, overrides))
