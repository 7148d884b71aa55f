"""The InferenceService resource (group foresail.dev, version v1alpha1, short name ``fisvc``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field, model_validator

from foresail.api.common import DNS_LABEL, IMAGE, LABEL_VALUE, QUANTITY, Priority
from foresail.api.conditions import Condition
from foresail.api.meta import ARG, ENV_VALUE_MAX, LIST_MAX, ServiceNamed, SpecModel
from foresail.api.podtemplate import PodTemplateOverlay
from foresail.api.repository import ConfigMapSource, KeyToPath, ModelStatus, PvcSource, RepositorySource, S3Source
from foresail.api.rollout import RolloutSpec, RolloutStatus, TrafficSplit
from foresail.api.scalingpolicy import ScalingBehavior

__all__ = [
    "DEFAULT_TRITON_IMAGE",
    "IMAGE",
    "LABEL_VALUE",
    "CalibrationSpec",
    "ColdStartStatus",
    "ConfigMapSource",
    "FallbackSpec",
    "InferenceService",
    "InferenceServiceSpec",
    "InferenceServiceStatus",
    "KeyToPath",
    "ModelSpec",
    "ModelStatus",
    "ObservedMetrics",
    "Priority",
    "PvcSource",
    "QueuePolicy",
    "QuotaStatus",
    "Recommendation",
    "RepositorySource",
    "RoutingModel",
    "RoutingSpec",
    "S3Source",
    "ScalingSpec",
    "ScalingState",
    "SloSpec",
    "TritonSpec",
    "WarmupSpec",
    "WindowObservation",
]

DEFAULT_TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.08-py3"
# Derived objects are named "<name>-<suffix>"; a Service name is a DNS-1035 label (63 chars). Leaving
# room for "-warm" style suffixes and the ReplicaSet/pod hashes the Deployment adds keeps us at 45.
MAX_NAME_LENGTH = 45

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
    value: str = Field(default="", max_length=ENV_VALUE_MAX, description="Variable value.")


class QueuePolicy(SpecModel):
    """Triton's bounded queue: the model's ``dynamic_batching.default_queue_policy`` with ``timeout_action:
    REJECT``, applied by the warm-up gate (the model is loaded again with it before the replica serves;
    the model's config.pbtxt is not changed). A backlog then cannot outlive an overload."""

    timeout_ms: int = Field(
        alias="timeoutMs",
        ge=1,
        le=3_600_000,
        description="A request queued longer than this is rejected (Triton counts it in nv_inference_request_failure, "
        "reason REJECTED: a miss in every figure). Clients cannot override it.",
    )
    max_queue_size: int | None = Field(
        default=None,
        alias="maxQueueSize",
        ge=1,
        le=1_000_000,
        description="Requests beyond this many queued are refused at once. Triton 2.51 does not count these refusals "
        "in any metric, so the autoscaler cannot see them: use it only as a memory cap well above "
        "(arrival rate x timeout); timeoutMs is the bound that is counted.",
    )


class TritonSpec(SpecModel):
    image: str = Field(default=DEFAULT_TRITON_IMAGE, min_length=1, pattern=IMAGE, description="Triton server image.")
    args: list[ARG] = Field(default_factory=list, max_length=LIST_MAX, description="Extra tritonserver arguments (appended).")
    env: list[EnvVar] = Field(
        default_factory=list, max_length=LIST_MAX, description="Extra environment variables of the Triton container."
    )
    resources: Resources = Field(default_factory=Resources, description="CPU and memory of the Triton container.")
    gpus_per_replica: int = Field(default=1, alias="gpusPerReplica", ge=0, le=16, description="nvidia.com/gpu per replica.")
    gpu_product: str | None = Field(
        default=None,
        alias="gpuProduct",
        max_length=63,
        pattern=LABEL_VALUE,
        description="Only nodes labelled nvidia.com/gpu.product=<this> (and the tenant quota of that product); empty = any GPU.",
    )
    queue_policy: QueuePolicy | None = Field(
        default=None,
        alias="queuePolicy",
        description="Bound Triton's queue (rejecting what waits too long); absent: the model's own config.pbtxt decides. "
        "The model must use dynamic batching.",
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


class CalibrationSpec(SpecModel):
    """One replica's batch latency: a batch of b requests takes baseMs + perItemMs x b (b <= maxBatch)."""

    base_ms: float = Field(alias="baseMs", ge=0, le=600_000, description="Fixed time of a batch, milliseconds.")
    per_item_ms: float = Field(alias="perItemMs", ge=0, le=600_000, description="Time each request adds to a batch, milliseconds.")
    max_batch: int = Field(alias="maxBatch", ge=1, le=65_536, description="Largest batch (the model's max_batch_size; 1 = no batching).")


class RoutingModel(StrEnum):
    ROUND_ROBIN = "round-robin"
    LEAST_OUTSTANDING = "least-outstanding"
    PER_CONNECTION = "per-connection"


class RoutingSpec(SpecModel):
    model: RoutingModel = Field(
        default=RoutingModel.ROUND_ROBIN,
        description="round-robin (per request), least-outstanding (a gateway such as Envoy) or per-connection (kube-proxy "
        "with keep-alive or gRPC: each client connection pinned to one replica, so load spreads unevenly).",
    )
    connections: int = Field(
        default=64, ge=1, le=1_000_000, description="Client connections, for per-connection routing."
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
    min_replicas: int = Field(
        default=1,
        alias="minReplicas",
        ge=1,
        le=10_000,
        description="Fewest replicas (at least 1: at zero there are no metrics to scale up from; scale-to-zero does not exist yet).",
    )
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
    calibration: CalibrationSpec | None = Field(
        default=None,
        description="The replica's batch-latency curve (e.g. from foresail calibrate): capacity per replica at the SLO is "
        "computed from it for every replica count. Preferred over capacityPerReplicaRps when both are set.",
    )
    capacity_per_replica_rps: float | None = Field(
        default=None,
        alias="capacityPerReplicaRps",
        gt=0,
        le=1_000_000,
        description="The simple alternative to calibration: requests/s one replica serves within the SLO (e.g. from "
        "foresail calibrate --slo-ms); used as given, nothing is learned from it.",
    )
    routing: RoutingSpec = Field(
        default_factory=lambda: RoutingSpec(),
        description="How clients' requests reach the replicas: it decides how evenly load spreads over them.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> ScalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("scaling.minReplicas must be <= scaling.maxReplicas")
        return self


WARMUP_INPUTS_MAX = 64  # a model's inputs
WARMUP_DATA_MAX = 65_536  # elements of one warm-up input (a spec is at most ~1.5 MB in etcd anyway)
WARMUP_SHAPE_MAX = 16  # dimensions of one warm-up input


class TritonDatatype(StrEnum):
    """Triton's tensor datatypes (the KServe v2 protocol's names)."""

    BOOL = "BOOL"
    UINT8 = "UINT8"
    UINT16 = "UINT16"
    UINT32 = "UINT32"
    UINT64 = "UINT64"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FP16 = "FP16"
    FP32 = "FP32"
    FP64 = "FP64"
    BF16 = "BF16"
    BYTES = "BYTES"


def _flatten(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in data:
        out.extend(_flatten(x) if isinstance(x, list) else [x])
    return out


def _warmup_input_schema(schema: dict[str, Any]) -> None:
    # Released CRDs kept these objects free-form: the four fields are asked for by a CEL rule (ratcheted: an
    # unchanged stored input keeps passing) rather than as required properties, and unknown fields are still
    # kept, so that the CRD upgrade breaks no stored object (api.crd_compat)
    schema.pop("required", None)
    schema["additionalProperties"] = True
    schema["x-kubernetes-validations"] = [
        {
            # data (a list of untyped elements) is not visible to CEL: its absence is InvalidSpec (pydantic)
            "rule": "has(self.name) && has(self.datatype) && has(self.shape)",
            "message": "a warm-up input needs name, datatype and shape (and data)",
        }
    ]


class WarmupInput(SpecModel):
    """One input tensor of a warm-up request, as in the KServe v2 protocol's JSON: data row-major, flat or nested,
    with as many elements as shape holds (its first dimension the batch, when the model batches)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", json_schema_extra=_warmup_input_schema)

    name: str = Field(min_length=1, max_length=256, description="The model's input name.")
    datatype: TritonDatatype = Field(description="Triton datatype, e.g. FP32, INT64, BYTES.")
    shape: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(
        min_length=1,
        max_length=WARMUP_SHAPE_MAX,
        description="Dimensions, each >= 0 (the batch first when the model batches).",
    )
    data: list[Any] = Field(
        min_length=1,
        max_length=WARMUP_DATA_MAX,
        description=f"The elements, row-major, flat or nested (at most {WARMUP_DATA_MAX:,} in all): numbers, "
        "true/false for BOOL, strings for BYTES.",
    )

    @model_validator(mode="after")
    def _fits_its_shape(self) -> WarmupInput:
        flat = _flatten(self.data)
        want = 1
        for d in self.shape:
            want *= d
        if len(flat) > WARMUP_DATA_MAX:
            raise ValueError(f"data: {len(flat):,} elements, at most {WARMUP_DATA_MAX:,}")
        if len(flat) != want:
            raise ValueError(f"data: {len(flat):,} elements, but shape {self.shape} holds {want:,}")
        kind = (
            str if self.datatype == TritonDatatype.BYTES else bool if self.datatype == TritonDatatype.BOOL else None
        )
        for i, x in enumerate(flat):
            ok = isinstance(x, kind) if kind is not None else isinstance(x, int | float) and not isinstance(x, bool)
            if not ok:
                what = "a string" if kind is str else "true or false" if kind is bool else "a number"
                raise ValueError(f"data element {i} is {x!r}: a {self.datatype} element is {what}")
        return self


class WarmupSpec(SpecModel):
    enabled: bool = Field(default=True, description="Gate readiness on a warm-up (readiness gate foresail.dev/warm).")
    inputs: list[WarmupInput] = Field(
        default_factory=list,
        max_length=WARMUP_INPUTS_MAX,
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
    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    # a transition rule: the canary and the stable revision serve behind one Service under one name,
                    # and Triton's series are read for the spec's model name
                    "rule": "!has(self.rollout) || !has(oldSelf.rollout) || self.model.name == oldSelf.model.name",
                    "message": "spec.model.name cannot change while spec.rollout is set (both revisions must answer "
                    "to one name): remove spec.rollout to roll the renamed model in place, or serve it as a new "
                    "InferenceService",
                    "fieldPath": ".model.name",
                    "reason": "FieldValueForbidden",
                }
            ]
        },
    )
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
    rollout: RolloutSpec | None = Field(
        default=None,
        description="Roll a change of spec.model or spec.triton out as a canary in steps, gated on latency and errors, "
        "rolled back on a failed gate; absent: a change rolls the replicas in place.",
    )


class Recommendation(SpecModel):
    """The autoscaler's last decision and every figure it came from."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    replicas: int = Field(ge=0, description="Recommended replicas.")
    reason: str = Field(
        description="What set the replicas: MetricsUnavailable, MetricsFallback, NoCapacityEstimate, BaseDemand, "
        "ForecastDemand, FastPath, BurstOnset, IdleHold or NotDue."
    )
    message: str = Field(default="", description="The decision's figures, in words.")
    time: str = Field(description="When (RFC 3339).")
    base_rps: float | None = Field(default=None, alias="baseRps", description="The base arrival rate (level), requests/s.")
    forecast_rps: float | None = Field(
        default=None, alias="forecastRps", description="The rate forecast at now + lead (the base rate with the forecast off)."
    )
    lead_seconds: float | None = Field(default=None, alias="leadSeconds", description="Lead: cold start p90 + one tick, seconds.")
    headroom: float | None = Field(
        default=None, description="Multiplier over the forecast that keeps late requests within the error budget."
    )
    planned_rps: float | None = Field(default=None, alias="plannedRps", description="headroom x forecast, requests/s.")
    error_budget_percent: float | None = Field(
        default=None, alias="errorBudgetPercent", description="The budget the headroom was sized with (after the outer loop), %."
    )
    late_floor_percent: float | None = Field(
        default=None, alias="lateFloorPercent", description="Late share in the replay that no headroom prevents (e.g. bursts from quiet), %."
    )
    measured_late_percent: float | None = Field(
        default=None, alias="measuredLatePercent", description="Share of requests in windows that missed the SLO (p99 over it, or rejections), %."
    )
    capacity_rps: float | None = Field(
        default=None, alias="capacityRps", description="Requests/s per replica within the SLO at the recommended count."
    )
    capacity_source: str | None = Field(
        default=None, alias="capacitySource", description="Calibration, CapacityPerReplica or None."
    )
    capacity_ratio: float | None = Field(
        default=None, alias="capacityRatio", description="Learned saturated throughput over the calibration's (1 = as calibrated)."
    )
    fast_rps: float | None = Field(default=None, alias="fastRps", description="Rate the fast path sized for, requests/s.")
    burst_rps: float | None = Field(default=None, alias="burstRps", description="Typical burst peak a burst onset is sized for.")
    hold_seconds: float | None = Field(
        default=None, alias="holdSeconds", description="Idle capacity is released after this long: max(cold start, the gap quantile)."
    )


class WindowObservation(SpecModel):
    """The live signals over one window, from the difference of Triton's counters across it."""

    seconds: float = Field(description="The window: 2, 10 or 60 seconds.")
    arrival_rps: float = Field(alias="arrivalRps", description="Requests/s that arrived: completions + failures + in-flight growth.")
    completion_rps: float = Field(alias="completionRps", description="Requests/s completed.")
    rejection_rps: float = Field(
        alias="rejectionRps", description="Requests/s failed (queue time-outs of spec.triton.queuePolicy included): misses."
    )
    queue_growth_rps: float = Field(alias="queueGrowthRps", description="Growth of the requests in flight (queued + executing), per second.")
    mean_queue_wait_ms: float = Field(alias="meanQueueWaitMs", description="Mean queue wait of the completions, ms.")
    mean_latency_ms: float = Field(alias="meanLatencyMs", description="Mean latency of the completions, ms.")
    p99_ms: float | None = Field(
        default=None,
        alias="p99Ms",
        description="p99 latency across the replicas warm for at least a minute, request-weighted; absent when none completed any "
        "(not measured: e.g. no replica has been warm for a minute yet).",
    )


class ObservedMetrics(SpecModel):
    time: str | None = Field(default=None, description="When the signals were computed (RFC 3339).")
    source: str | None = Field(
        default=None, description="Where the counters came from: Prometheus, or Direct (the replicas' own metrics endpoints)."
    )
    note: str | None = Field(default=None, description="Why the direct source fell back to Prometheus, when it did.")
    age_seconds: float | None = Field(default=None, alias="ageSeconds", description="Age of the newest sample.")
    sample_interval_seconds: float | None = Field(
        default=None, alias="sampleIntervalSeconds", description="Spacing of the replicas' samples (the scrape interval)."
    )
    arrival_rps: float | None = Field(default=None, alias="arrivalRps", description="Arrival rate over the 10 s window, requests/s.")
    queue_depth: float | None = Field(default=None, alias="queueDepth", description="Requests queued across the serving replicas now.")
    in_flight: float | None = Field(default=None, alias="inFlight", description="Requests queued or executing now.")
    p99_ms: float | None = Field(
        default=None, alias="p99Ms", description="p99 latency over the 10 s window, ms (see windows); absent when not measured."
    )
    serving_replicas: int | None = Field(default=None, alias="servingReplicas", description="Replicas measured (serving).")
    p99_replicas: int | None = Field(
        default=None, alias="p99Replicas", description="Serving replicas warm for at least a minute: the ones p99 comes from."
    )
    windows: list[WindowObservation] = Field(default_factory=list, description="The signals over 2 s, 10 s and 60 s.")


class ColdStartStatus(SpecModel):
    p50_seconds: float | None = Field(default=None, alias="p50Seconds", description="Median create-to-warm seconds.")
    p90_seconds: float | None = Field(default=None, alias="p90Seconds", description="p90 create-to-warm seconds.")
    samples: int = Field(default=0, description="Starts measured.")
    recent_seconds: list[float] = Field(
        default_factory=list, alias="recentSeconds", description="The most recent create-to-warm durations, seconds."
    )


class _StatePart(SpecModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class ForecastState(_StatePart):
    s1: float | None = Field(default=None, description="Average of the arrival rate, requests/s.")
    s2: float | None = Field(default=None, description="Average of that average (level 2 s1 - s2, trend (s1 - s2) / tau).")
    time: float | None = Field(default=None, description="Time of the last sample (unix seconds).")


class BurstState(_StatePart):
    busy: bool = Field(default=False, description="In a burst now.")
    since: float | None = Field(default=None, description="When the current quiet or busy phase started (unix seconds).")
    peak: float = Field(default=0.0, description="Highest 2 s arrival rate of the current burst.")
    peaks: list[float] = Field(default_factory=list, description="Past bursts' peaks, requests/s (at most 32).")


class HoldState(_StatePart):
    steps: list[list[float]] = Field(
        default_factory=list, description="[time, replicas]: the last time that many were wanted (a decreasing staircase)."
    )
    gaps: list[float] = Field(default_factory=list, description="Seconds capacity stood idle before it was wanted again (at most 32).")


class BudgetState(_StatePart):
    factor: float = Field(default=1.0, description="The outer loop's factor on the error budget (0.25-4).")
    late: float = Field(default=0.0, description="Requests in windows the signals show missing the SLO (exponentially forgotten).")
    predicted: float = Field(default=0.0, description="Requests in intervals the model says miss it (exponentially forgotten).")
    settled: float = Field(default=0.0, description="Load on the ready replicas (times their capacity), averaged over ten SLOs.")
    arrived: float = Field(default=0.0, description="Requests measured (exponentially forgotten).")
    time: float | None = Field(default=None, description="Last update (unix seconds).")


class HeadroomState(_StatePart):
    multiplier: float = Field(description="Headroom over the forecast.")
    tau_seconds: float = Field(default=20.0, alias="tauSeconds", description="Forecaster time constant chosen with it.")
    hold_seconds: float = Field(default=0.0, alias="holdSeconds", description="Idle hold the replay chose with it.")
    burst_rps: float = Field(default=0.0, alias="burstRps", description="Burst level the replay chose with it (0: none).")
    late_share: float = Field(default=0.0, alias="lateShare", description="Late share the replay found at it.")
    floor: float = Field(default=0.0, description="Late share no headroom prevents.")
    samples: int = Field(default=0, description="History samples replayed.")
    span_seconds: float = Field(default=0.0, alias="spanSeconds", description="History replayed, seconds.")


class ScalingState(_StatePart):
    """What the autoscaler keeps across operator restarts (bounded)."""

    forecast: list[ForecastState] = Field(default_factory=list, description="The forecasters (time constants 10, 20, 40, 80 s).")
    bursts: BurstState | None = Field(default=None, description="Burst peaks and gaps learned.")
    hold: HoldState | None = Field(default=None, description="The scale-down rule's memory and the gaps it learned.")
    capacity_ratio: float | None = Field(default=None, alias="capacityRatio", description="Learned saturated-throughput ratio.")
    budget: BudgetState | None = Field(default=None, description="The outer loop on the error budget.")
    headroom: HeadroomState | None = Field(default=None, description="The last headroom replayed.")
    metrics_bad_since: float | None = Field(
        default=None, alias="metricsBadSince", description="Metrics unavailable since (unix seconds)."
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
    model: ModelStatus | None = Field(
        default=None,
        description="The content digest of the model repository (spec.model.repository.storageUri as fetched, or pvc as read "
        "in place) reported by the newest replica's init container (absent for configMap, and until a replica reported).",
    )
    rollout: RolloutStatus | None = Field(
        default=None, description="The revisions serving and the rollout in progress or last finished (spec.rollout)."
    )
    traffic_split: TrafficSplit | None = Field(
        default=None,
        alias="trafficSplit",
        description="How a canary's share of traffic is made: ReplicaShare (its share of ready replicas behind the "
        "Service) or GatewayWeights (the weights of the HTTPRoute <name>; the operator's FORESAIL_GATEWAY).",
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, WarmupFailing, MetricsAvailable, ScalingActive, ScalingLimited, QuotaLimited and RolloutProgressing."
    )



class InferenceService(ServiceNamed):
    """A Triton deployment of a model repository with a latency SLO, autoscaled ahead of demand."""

    name_max: ClassVar[int] = MAX_NAME_LENGTH
    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    api_version: str = Field(default="foresail.dev/v1alpha1", alias="apiVersion")
    kind: str = Field(default="InferenceService")
    spec: InferenceServiceSpec
    status: InferenceServiceStatus = Field(default_factory=InferenceServiceStatus)
