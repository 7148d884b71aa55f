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
                    "rule": "!has(self.quietPercent) || !has(self.burstOnsetPercent) || self.quietPercent < self.burstOnsetPercent",
                    "message": "quietPercent must be < burstOnsetPercent",
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
    error_budget_percent: float | None = Field(
        default=None,
        alias="errorBudgetPercent",
        ge=0.01,
        le=20,
        description="Share of requests allowed to be late (over the SLO or rejected), % (0.01-20). The headroom over the "
        "forecast is the smallest that, replayed over the service's own recent arrivals, keeps late requests within it.",
    )
    budget_feedback: bool | None = Field(
        default=None,
        alias="budgetFeedback",
        description="Nudge the budget the headroom is sized with (within 1/4-4x) from the late share the signals show.",
    )
    forecast_enabled: bool | None = Field(
        default=None,
        alias="forecastEnabled",
        description="Plan for the forecast at now + cold start + tick (level and damped trend); off: the current base rate.",
    )
    history_seconds: float | None = Field(
        default=None,
        alias="historySeconds",
        ge=300,
        le=86_400,
        description="Recent arrivals the headroom is replayed over, seconds (300-86400).",
    )
    fast_path_enabled: bool | None = Field(
        default=None,
        alias="fastPathEnabled",
        description="Act at once on the 2 s arrivals: a burst onset after quiet, or demand beyond the ready and starting replicas.",
    )
    fast_path_percent: float | None = Field(
        default=None,
        alias="fastPathPercent",
        ge=100,
        le=1000,
        description="The fast path acts when 2 s arrivals exceed this % of what the ready and starting replicas serve (100-1000).",
    )
    quiet_percent: float | None = Field(
        default=None,
        alias="quietPercent",
        ge=0,
        le=100,
        description="Below this % of one replica's capacity (2 s arrivals) the service is quiet (0-100).",
    )
    burst_onset_percent: float | None = Field(
        default=None,
        alias="burstOnsetPercent",
        ge=1,
        le=10_000,
        description="After quiet, 2 s arrivals above this % of one replica's capacity start a burst (1-10000).",
    )
    burst_quantile: float | None = Field(
        default=None,
        alias="burstQuantile",
        ge=0.5,
        le=1,
        description="A burst onset is sized for this quantile of past bursts' peaks (0.5-1).",
    )
    idle_gap_quantile: float | None = Field(
        default=None,
        alias="idleGapQuantile",
        ge=0.5,
        le=1,
        description="Capacity is released once idle longer than max(cold start, 1.5 x this quantile of the last 32 gaps "
        "between bursts) (0.5-1); the error budget may hold longer.",
    )
    max_idle_hold_seconds: float | None = Field(
        default=None,
        alias="maxIdleHoldSeconds",
        ge=0,
        le=86_400,
        description="Upper bound of that learned idle hold, seconds (0-86400).",
    )
    max_scale_up_rate: float | None = Field(
        default=None,
        alias="maxScaleUpRate",
        ge=1,
        le=1000,
        description="At most this factor more replicas per tick, and at least 4 more (1-1000).",
    )
    max_scale_down_rate: float | None = Field(
        default=None,
        alias="maxScaleDownRate",
        ge=1,
        le=1000,
        description="At most this factor fewer replicas per tick (e.g. 2 = halve) (1-1000).",
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
    error_budget_percent: float
    budget_feedback: bool
    forecast_enabled: bool
    history_seconds: float
    fast_path_enabled: bool
    fast_path_percent: float
    quiet_percent: float
    burst_onset_percent: float
    burst_quantile: float
    idle_gap_quantile: float
    max_idle_hold_seconds: float
    max_scale_up_rate: float
    max_scale_down_rate: float


DEFAULT_BEHAVIOR = ScalingBehavior(
    tick_seconds=2,
    error_budget_percent=0.5,
    budget_feedback=True,
    forecast_enabled=True,
    history_seconds=1800,
    fast_path_enabled=True,
    fast_path_percent=150,
    quiet_percent=5,
    burst_onset_percent=50,
    burst_quantile=0.75,
    idle_gap_quantile=1.0,
    max_idle_hold_seconds=900,
    max_scale_up_rate=10,
    max_scale_down_rate=2,
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
