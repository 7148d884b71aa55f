"""The InferenceService resource (group foresail.dev, version v1alpha1, short name ``fisvc``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from foresail.api.conditions import Condition
from foresail.api.meta import Resource, SpecModel
from foresail.api.podtemplate import PodTemplateOverlay
from foresail.api.scalingpolicy import ScalingBehavior

__all__ = [
    "DEFAULT_TRITON_IMAGE",
    "ColdStartStatus",
    "FallbackSpec",
    "InferenceService",
    "InferenceServiceSpec",
    "InferenceServiceStatus",
    "ModelSpec",
    "ObservedMetrics",
    "Priority",
    "QuotaStatus",
    "Recommendation",
    "RepositorySource",
    "ScalingSpec",
    "SloSpec",
    "TritonSpec",
    "WarmupSpec",
]

DEFAULT_TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.08-py3"
# Derived objects are named "<name>-<suffix>"; a Service name is a DNS-1035 label (63 chars). Leaving
# room for "-warm" style suffixes and the ReplicaSet/pod hashes the Deployment adds keeps us at 45.
MAX_NAME_LENGTH = 45

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A non-negative Kubernetes quantity (resource requests and limits cannot be negative)
QUANTITY = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][-+]?[0-9]+)?$"


class Priority(StrEnum):
    """Priority classes; the chart installs a PriorityClass for each (foresail-<priority>)."""

    CRITICAL = "critical"
    STANDARD = "standard"
    BATCH = "batch"


class PvcSource(SpecModel):
    claim_name: str = Field(
        alias="claimName", min_length=1, max_length=253, description="PersistentVolumeClaim in the same namespace."
    )
    sub_path: str = Field(default="", alias="subPath", description="Directory inside the claim holding the model repository.")


class ConfigMapSource(SpecModel):
    name: str = Field(min_length=1, max_length=253, description="ConfigMap in the same namespace.")
    items: list[dict[str, str]] = Field(
        default_factory=list,
        description="Key-to-path mapping as in a configMap volume (keys cannot hold '/', paths can build the repository tree).",
    )


STORAGE_URI_UNSUPPORTED = "spec.model.repository.storageUri is not supported yet: use pvc or configMap"


class RepositorySource(SpecModel):
    """Where the Triton model repository comes from: exactly one of pvc or configMap (storageUri is refused for now)."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.pvc) ? 1 : 0) + (has(self.configMap) ? 1 : 0) + (has(self.storageUri) ? 1 : 0) == 1",
                    "message": "exactly one of pvc, configMap or storageUri must be set",
                },
                {"rule": "!has(self.storageUri)", "message": STORAGE_URI_UNSUPPORTED},
            ]
        },
    )
    pvc: PvcSource | None = Field(default=None, description="A PersistentVolumeClaim holding the repository.")
    config_map: ConfigMapSource | None = Field(default=None, alias="configMap", description="A ConfigMap holding small models.")
    storage_uri: str | None = Field(
        default=None,
        alias="storageUri",
        pattern=r"^(s3|gs|https?|pvc)://.+",
        description="Not supported yet: refused at admission (a later version fetches s3://, gs:// and https:// URIs).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> RepositorySource:
        n = sum(x is not None for x in (self.pvc, self.config_map, self.storage_uri))
        if n != 1:
            raise ValueError("exactly one of pvc, configMap or storageUri must be set")
        if self.storage_uri is not None:
            raise ValueError(STORAGE_URI_UNSUPPORTED)
        return self


class ModelSpec(SpecModel):
    name: str = Field(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$", description="Model name in the Triton repository."
    )
    repository: RepositorySource = Field(
        description="Where the model repository comes from. Which versions Triton serves is the model's "
        "version_policy in its config.pbtxt."
    )


class ResourceList(SpecModel):
    cpu: str | None = Field(default=None, pattern=QUANTITY, description="CPU quantity, e.g. 2 or 500m.")
    memory: str | None = Field(default=None, pattern=QUANTITY, description="Memory quantity, e.g. 16Gi.")


class Resources(SpecModel):
    requests: ResourceList = Field(default_factory=ResourceList, description="Requests of the Triton container (GPUs excluded).")
    limits: ResourceList = Field(default_factory=ResourceList, description="Limits of the Triton container (GPUs excluded).")


class EnvVar(SpecModel):
    name: str = Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", description="Variable name.")
    value: str = Field(default="", description="Variable value.")


class TritonSpec(SpecModel):
    image: str = Field(default=DEFAULT_TRITON_IMAGE, min_length=1, description="Triton server image.")
    args: list[str] = Field(default_factory=list, description="Extra tritonserver arguments (appended).")
    env: list[EnvVar] = Field(default_factory=list, description="Extra environment variables of the Triton container.")
    resources: Resources = Field(default_factory=Resources, description="CPU and memory of the Triton container.")
    gpus_per_replica: int = Field(default=1, alias="gpusPerReplica", ge=0, le=16, description="nvidia.com/gpu per replica.")
    gpu_product: str | None = Field(
        default=None,
        alias="gpuProduct",
        max_length=128,
        pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]*$",
        description="Only nodes labelled nvidia.com/gpu.product=<this> (and the tenant quota of that product); empty = any GPU.",
    )
    shm_size: str = Field(
        default="1Gi",
        alias="shmSize",
        pattern=QUANTITY,
        description="Size of /dev/shm, an emptyDir of medium Memory (the Python backend and shared-memory inputs use it); "
        "0: the container runtime's default (64 MiB).",
    )
    pod_template: PodTemplateOverlay | None = Field(
        default=None,
        alias="podTemplate",
        description="Additions to the Triton pods: labels, annotations, service account, image pull secrets, node selector, "
        "tolerations, affinity, topology spread, security context, volumes, the triton container's env and mounts, sidecars.",
    )


class SloSpec(SpecModel):
    p99_latency_ms: float = Field(
        alias="p99LatencyMs", gt=0, le=600_000, description="Target p99 request latency (queueing included), milliseconds."
    )


class FallbackSpec(SpecModel):
    """What to do while metrics are missing, NaN, infinite or stale: hold, and never scale down."""

    replicas: int | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="Scale up to at least this many replicas while metrics are unavailable (never down).",
    )
    after_seconds: int = Field(
        default=60, alias="afterSeconds", ge=0, le=86_400, description="How long metrics must be unavailable first."
    )


class ScalingSpec(SpecModel):
    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self.minReplicas <= self.maxReplicas", "message": "scaling.minReplicas must be <= scaling.maxReplicas"}
            ]
        },
    )
    min_replicas: int = Field(default=1, alias="minReplicas", ge=0, le=10_000, description="Fewest replicas.")
    max_replicas: int = Field(default=10, alias="maxReplicas", ge=1, le=10_000, description="Most replicas.")
    policy_ref: str | None = Field(
        default=None,
        alias="policyRef",
        max_length=253,
        pattern=DNS_LABEL,
        description="Name of a ScalingPolicy (cluster-scoped) to start from.",
    )
    overrides: ScalingBehavior | None = Field(default=None, description="Inline settings that override the referenced policy.")
    fallback: FallbackSpec = Field(default_factory=FallbackSpec, description="Behaviour while metrics are unavailable.")
    capacity_per_replica_rps: float | None = Field(
        default=None,
        alias="capacityPerReplicaRps",
        gt=0,
        le=1_000_000,
        description="Prior for requests/s one replica serves within the SLO (e.g. from a calibration curve); learned online from there.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> ScalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("scaling.minReplicas must be <= scaling.maxReplicas")
        return self


class WarmupSpec(SpecModel):
    enabled: bool = Field(default=True, description="Gate readiness on a warm-up (readiness gate foresail.dev/warm).")
    inputs: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Warm-up inputs [{name, datatype, shape, data}]; empty = generated from the model's metadata.",
    )
    requests: int = Field(default=20, ge=1, le=10_000, description="Minimum warm-up requests per batch size.")
    max_batch_size: int | None = Field(
        default=None,
        alias="maxBatchSize",
        ge=1,
        le=4096,
        description="Largest batch the generated warm-up sends (1, the powers of two below it, and it); "
        "default and upper bound: the model's max_batch_size. Not used with explicit inputs.",
    )
    steadiness_percent: float = Field(
        default=15.0,
        alias="steadinessPercent",
        gt=0,
        le=100,
        description="Warm when the last window of latencies is within this % of its median.",
    )
    timeout_seconds: int = Field(
        default=300, alias="timeoutSeconds", ge=1, le=86_400, description="Give up (WarmupFailing) after this long."
    )
    max_failures: int = Field(
        default=3, alias="maxFailures", ge=1, le=100, description="Replace a replica after this many failed warm-ups."
    )


class InferenceServiceSpec(SpecModel):
    model: ModelSpec = Field(description="The model to serve and where its repository comes from.")
    triton: TritonSpec = Field(default_factory=TritonSpec, description="The Triton container.")
    slo: SloSpec = Field(description="The latency objective the autoscaler keeps.")
    scaling: ScalingSpec = Field(default_factory=ScalingSpec, description="Replica bounds, policy and fallback.")
    warmup: WarmupSpec = Field(default_factory=WarmupSpec, description="Warm-up gate of new replicas.")
    tenant: str | None = Field(
        default=None, max_length=253, pattern=DNS_LABEL, description="Tenant whose GPU quota this service uses."
    )
    priority: Priority = Field(
        default=Priority.STANDARD, description="critical, standard or batch (maps to the PriorityClass foresail-<priority>)."
    )


class Recommendation(SpecModel):
    replicas: int = Field(ge=0, description="Recommended replicas.")
    reason: str = Field(
        description="What set the replicas: MetricsUnavailable, MetricsFallback, NoCapacityEstimate, StableDemand, "
        "ForecastDemand, QueueBacklog, Panic, ScaleDownStabilized or NotDue."
    )
    message: str = Field(default="", description="The decision's figures, in words.")
    time: str = Field(description="When (RFC 3339).")
    panic: bool = Field(default=False, description="Whether the autoscaler was in panic mode.")
    stable_rps: float | None = Field(default=None, alias="stableRps", description="Average arrival rate over the stable window.")
    forecast_rps: float | None = Field(
        default=None, alias="forecastRps", description="Upper forecast of the arrival rate at now + lead time."
    )
    capacity_rps: float | None = Field(default=None, alias="capacityRps", description="Requests/s per replica within the SLO.")


class ObservedMetrics(SpecModel):
    age_seconds: float | None = Field(default=None, alias="ageSeconds", description="Age of the newest scraped sample.")
    arrival_rps: float | None = Field(default=None, alias="arrivalRps", description="Arrival rate, requests/s.")
    queue_depth: float | None = Field(default=None, alias="queueDepth", description="Pending requests across replicas.")
    p99_ms: float | None = Field(default=None, alias="p99Ms", description="p99 request latency, ms.")
    time: str | None = Field(default=None, description="When the metrics were sampled (RFC 3339).")


class ColdStartStatus(SpecModel):
    p50_seconds: float | None = Field(default=None, alias="p50Seconds", description="Median create-to-warm seconds.")
    p90_seconds: float | None = Field(default=None, alias="p90Seconds", description="p90 create-to-warm seconds.")
    samples: int = Field(default=0, description="Starts measured.")
    recent_seconds: list[float] = Field(
        default_factory=list, alias="recentSeconds", description="The most recent create-to-warm durations, seconds."
    )


class ScalingState(SpecModel):
    """What the autoscaler keeps across operator restarts."""

    recommendations: list[list[float]] = Field(
        default_factory=list, description="[time, replicas] within the scale-down delay window."
    )
    panic_until: float | None = Field(
        default=None, alias="panicUntil", description="Panic mode lasts until this time (unix seconds)."
    )
    capacity_rps: float | None = Field(
        default=None, alias="capacityRps", description="Learned requests/s per replica within the SLO."
    )


class QuotaStatus(SpecModel):
    tenant: str = Field(description="The tenant whose GPUs the service uses (spec.tenant, or the namespace's owner).")
    requested_replicas: int = Field(default=0, alias="requestedReplicas", description="Replicas the autoscaler asked for.")
    granted_replicas: int = Field(default=0, alias="grantedReplicas", description="Replicas the tenant arbiter grants.")
    gpus_per_replica: int = Field(default=0, alias="gpusPerReplica", description="GPUs per replica.")
    reason: str = Field(default="", description="What limits the grant, if anything.")


class InferenceServiceStatus(SpecModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    observed_generation: int = Field(default=0, alias="observedGeneration", description="Generation this status reflects.")
    replicas: int = Field(default=0, description="Replicas that exist.")
    ready_replicas: int = Field(default=0, alias="readyReplicas", description="Replicas Ready (warm and serving).")
    warm_replicas: int = Field(default=0, alias="warmReplicas", description="Replicas whose warm-up gate is True.")
    starting_replicas: int = Field(default=0, alias="startingReplicas", description="Replicas not yet warm.")
    desired_replicas: int = Field(default=0, alias="desiredReplicas", description="Replicas the autoscaler wants.")
    selector: str = Field(default="", description="Label selector of the replicas' pods (foresail.dev/inferenceservice=<name>).")
    recommendation: Recommendation | None = Field(default=None, description="The autoscaler's last recommendation.")
    observed: ObservedMetrics | None = Field(default=None, description="Last observed metrics.")
    cold_start: ColdStartStatus | None = Field(default=None, alias="coldStart", description="Measured cold-start estimate.")
    scaling_state: ScalingState | None = Field(
        default=None, alias="scalingState", description="Autoscaler state kept across restarts."
    )
    quota: QuotaStatus | None = Field(default=None, description="The tenant arbiter's grant (absent without a tenant).")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, WarmupFailing, MetricsAvailable, ScalingActive, ScalingLimited and QuotaLimited."
    )



class InferenceService(Resource):
    """A Triton deployment of a model repository with a latency SLO, autoscaled ahead of demand."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    api_version: str = Field(default="foresail.dev/v1alpha1", alias="apiVersion")
    kind: str = Field(default="InferenceService")
    spec: InferenceServiceSpec
    status: InferenceServiceStatus = Field(default_factory=InferenceServiceStatus)
