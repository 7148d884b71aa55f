"""Tenant (cluster-scoped): namespaces, GPU quotas (guaranteed and borrowable), weight, priorities."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from foresail.api.common import DNS_LABEL, LABEL_VALUE, Priority
from foresail.api.conditions import Condition
from foresail.api.meta import Resource, SpecModel

__all__ = ["GpuQuota", "Tenant", "TenantSpec", "TenantStatus", "TenantUsage"]


class LabelSelector(SpecModel):
    match_labels: dict[str, str] = Field(
        default_factory=dict, alias="matchLabels", description="Namespaces with all of these labels."
    )


class GpuQuota(SpecModel):
    """GPUs of one resource (and optionally one GPU product) for a tenant."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "self.guaranteed <= self.limit", "message": "guaranteed must be <= limit"}]
        },
    )
    resource: str = Field(
        default="nvidia.com/gpu", pattern=r"^[a-z0-9.-]+/[a-z0-9.-]+$", description="Extended resource name of the GPUs."
    )
    product: str | None = Field(
        default=None,
        max_length=63,
        pattern=LABEL_VALUE,
        description="Only GPUs on nodes labelled nvidia.com/gpu.product=<product>; empty = any.",
    )
    guaranteed: int = Field(
        default=0, ge=0, le=100_000, description="Always available to the tenant; lent out only while unused."
    )
    limit: int = Field(default=0, ge=0, le=100_000, description="Hard cap, including what the tenant borrows.")

    @model_validator(mode="after")
    def _bounds(self) -> GpuQuota:
        if self.guaranteed > self.limit:
            raise ValueError("guaranteed must be <= limit")
        return self


class TenantSpec(SpecModel):
    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.namespaces) && size(self.namespaces) > 0 || has(self.namespaceSelector)",
                    "message": "set namespaces or namespaceSelector",
                }
            ]
        },
    )
    namespaces: list[Annotated[str, Field(max_length=63, pattern=DNS_LABEL)]] = Field(
        default_factory=list, description="Namespaces the tenant owns."
    )
    namespace_selector: LabelSelector | None = Field(
        default=None, alias="namespaceSelector", description="Or: namespaces selected by label."
    )
    gpus: list[GpuQuota] = Field(default_factory=list, description="GPU quotas, one per resource/product.")
    weight: int = Field(default=1, ge=1, le=1000, description="Share of unguaranteed GPUs relative to other tenants.")
    allowed_priorities: list[Priority] = Field(
        default_factory=lambda: [Priority.STANDARD, Priority.BATCH],
        alias="allowedPriorities",
        description="Priorities this tenant's workloads may use.",
    )

    @model_validator(mode="after")
    def _owns_something(self) -> TenantSpec:
        if not self.namespaces and self.namespace_selector is None:
            raise ValueError("set namespaces or namespaceSelector")
        return self


class TenantUsage(SpecModel):
    resource: str = Field(default="nvidia.com/gpu", description="GPU resource.")
    product: str | None = Field(default=None, description="GPU product of this quota (empty = any).")
    guaranteed: int = Field(default=0, description="Guaranteed GPUs.")
    limit: int = Field(default=0, description="Hard cap.")
    granted: int = Field(default=0, description="GPUs the arbiter's latest plan grants.")
    used: int = Field(default=0, description="GPUs held by the tenant's workloads.")
    borrowed: int = Field(default=0, description="GPUs held beyond the guarantee.")
    lent: int = Field(default=0, description="Guaranteed GPUs others use while this tenant does not.")
    pending: int = Field(default=0, description="GPUs the tenant's workloads want but do not hold.")


class TenantStatus(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    guaranteed: int = Field(default=0, description="Guaranteed GPUs, all quotas together.")
    used: int = Field(default=0, description="GPUs held by the tenant's workloads.")
    borrowed: int = Field(default=0, description="GPUs held beyond the guarantees.")
    lent: int = Field(default=0, description="Unused guaranteed GPUs that other tenants' borrowing occupies.")
    pending: int = Field(default=0, description="GPUs the tenant's workloads want but do not hold.")
    namespaces: list[str] = Field(default_factory=list, description="Namespaces the tenant owns now.")
    usage: list[TenantUsage] = Field(default_factory=list, description="Per GPU resource and product.")
    holders: list[str] = Field(default_factory=list, description="Services and jobs holding GPUs (namespace/kind/name).")
    conditions: list[Condition] = Field(default_factory=list, description="Conditions of the tenant.")


class Tenant(Resource):
    """A team sharing the cluster's GPUs: its namespaces, quotas, weight and allowed priorities."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    api_version: str = Field(default="foresail.dev/v1alpha1", alias="apiVersion")
    kind: str = Field(default="Tenant")
    spec: TenantSpec
    status: TenantStatus = Field(default_factory=TenantStatus)
