"""The EvalJob resource (group foresail.dev, version v1alpha1, short name ``evj``): a sharded,
deterministic, resumable evaluation of a served model over a dataset."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from foresail.api.common import DNS_LABEL, IMAGE, QUANTITY, Priority
from foresail.api.conditions import Condition
from foresail.api.meta import RELATIVE_PATH, ServiceNamed, SpecModel
from foresail.api.podtemplate import DNS_SUBDOMAIN

__all__ = [
    "BaselineSpec",
    "BaselineStatus",
    "DatasetSource",
    "EvalJob",
    "EvalJobSpec",
    "EvalJobStatus",
    "EvalMode",
    "OutputSpec",
    "PrometheusAuthRef",
    "ScorerKind",
    "ScorerSpec",
    "TargetSpec",
    "TrafficSpec",
    "spec_hash",
]

# Derived objects: "<name>-eval" (dedicated replicas, itself an InferenceService of at most 45
# characters), "<name>-worker" (ServiceAccount/Role), "<name>-progress" (ConfigMap), the Job's pods
MAX_NAME_LENGTH = 40


class EvalMode(StrEnum):
    SHARED = "shared"
    DEDICATED = "dedicated"


class ScorerKind(StrEnum):
    EXACT_MATCH = "exactMatch"
    TOP1 = "top1"
    NUMERIC_TOLERANCE = "numericTolerance"
    PLUGIN = "plugin"


class TargetSpec(SpecModel):
    inference_service: str = Field(
        alias="inferenceService", max_length=253, pattern=DNS_LABEL, description="InferenceService in the same namespace."
    )
    model: str | None = Field(
        default=None, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$", description="Model name; default: the service's model."
    )
    version: str | None = Field(default=None, max_length=32, pattern=r"^[0-9]*$", description="Model version; empty = latest.")
    revision: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description=(
            "Evaluate only the pods of this revision of the InferenceService (their label foresail.dev/revision): the "
            "workers call a Service <job>-target the job owns, selecting those pods; empty = every ready pod of the service."
        ),
    )


class ConfigMapDataset(SpecModel):
    name: str = Field(min_length=1, max_length=253, pattern=DNS_LABEL, description="ConfigMap in the same namespace.")
    key: str = Field(
        default="dataset.jsonl", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key holding the JSONL."
    )


class PvcPath(SpecModel):
    claim_name: str = Field(
        alias="claimName", min_length=1, max_length=253, pattern=DNS_LABEL, description="PersistentVolumeClaim in the same namespace."
    )
    path: str = Field(
        min_length=1,
        max_length=1024,
        pattern=RELATIVE_PATH,
        description="Path inside the claim (relative: no leading or trailing '/', no '.' or '..' segments).",
    )


class DatasetSource(SpecModel):
    """JSONL, one item per line: {"id", "inputs": {tensor: values}, "expected": {tensor: values} or "label"}."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "has(self.configMap) != has(self.pvc)", "message": "set exactly one of configMap or pvc"}
            ]
        },
    )
    config_map: ConfigMapDataset | None = Field(default=None, alias="configMap", description="A ConfigMap key (small datasets).")
    pvc: PvcPath | None = Field(default=None, description="A file on a PersistentVolumeClaim.")
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="Expected sha256 of the file; the job fails on a mismatch."
    )

    @model_validator(mode="after")
    def _one(self) -> DatasetSource:
        if (self.config_map is None) == (self.pvc is None):
            raise ValueError("set exactly one of configMap or pvc")
        return self


class ScorerSpec(SpecModel):
    kind: ScorerKind = Field(default=ScorerKind.EXACT_MATCH, description="exactMatch, top1, numericTolerance or plugin.")
    output: str | None = Field(
        default=None, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$", description="Output tensor to score; default: the first."
    )
    atol: float = Field(default=1e-6, ge=0, le=1e12, description="numericTolerance: absolute tolerance.")
    rtol: float = Field(default=1e-5, ge=0, le=1e6, description="numericTolerance: relative tolerance.")
    plugin: str | None = Field(
        default=None,
        max_length=256,
        pattern=r"^[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*)?$",
        description="plugin: an entry point name (group foresail.scorers) or module:function in the worker image.",
    )

    @model_validator(mode="after")
    def _plugin(self) -> ScorerSpec:
        if (self.kind == ScorerKind.PLUGIN) != (self.plugin is not None):
            raise ValueError("scorer.plugin is required with kind plugin, and only then")
        return self


class PrometheusAuthRef(SpecModel):
    """Credentials of the workers' Prometheus queries (the production signals they yield to)."""

    secret_name: str = Field(
        alias="secretName",
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description=(
            "A Secret in the job's namespace, mounted read-only into the workers at /etc/foresail/prometheus. Keys, "
            "each optional: token (bearer token) or username and password (basic auth), ca.crt (CA bundle of "
            "Prometheus' serving certificate), tls.crt and tls.key (client certificate), header.<Name> (an extra "
            "request header, e.g. header.X-Scope-OrgID). Whoever creates the job must be allowed to get the Secret."
        ),
    )


class TrafficSpec(SpecModel):
    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minConcurrency <= self.maxConcurrency",
                    "message": "traffic.minConcurrency must be <= traffic.maxConcurrency",
                }
            ]
        },
    )
    max_concurrency: int = Field(default=32, alias="maxConcurrency", ge=1, le=4096, description="Most requests in flight per worker.")
    min_concurrency: int = Field(default=1, alias="minConcurrency", ge=1, le=4096, description="Fewest requests in flight per worker.")
    max_requests_per_second: float | None = Field(
        default=None, alias="maxRequestsPerSecond", gt=0, le=1_000_000, description="Cap per worker; empty = none."
    )
    batch_size: int = Field(
        default=1, alias="batchSize", ge=1, le=4096, description="Items per request (capped by the model's max batch size)."
    )
    request_timeout_seconds: float = Field(default=30, alias="requestTimeoutSeconds", gt=0, le=3600, description="Per request.")
    retries: int = Field(default=3, ge=0, le=100, description="Retries of a failed request, with exponential back-off.")
    backoff_seconds: float = Field(default=0.5, alias="backoffSeconds", gt=0, le=600, description="First back-off.")
    target_latency_ms: float | None = Field(
        default=None,
        alias="targetLatencyMs",
        gt=0,
        le=600_000,
        description="Adaptive concurrency backs off above this latency; default: the target's SLO in shared mode, none in dedicated.",
    )
    yield_to_production: bool = Field(
        default=True,
        alias="yieldToProduction",
        description="shared mode: slow down as production queue depth or p99 approach the target's SLO.",
    )
    prometheus_auth: PrometheusAuthRef | None = Field(
        default=None,
        alias="prometheusAuth",
        description=(
            "Credentials for a secured Prometheus, for the yield signals: only with mode shared and "
            "yieldToProduction true; empty = query without credentials."
        ),
    )

    @model_validator(mode="after")
    def _bounds(self) -> TrafficSpec:
        if self.min_concurrency > self.max_concurrency:
            raise ValueError("traffic.minConcurrency must be <= traffic.maxConcurrency")
        return self


class OutputSpec(SpecModel):
    pvc: PvcPath | None = Field(
        default=None, description="Where per-item results go; default: a PVC <name>-results the job owns, path results."
    )
    storage: str = Field(default="1Gi", pattern=QUANTITY, description="Size of the default PVC.")
    record_outputs: bool = Field(
        default=False,
        alias="recordOutputs",
        description=(
            "Keep the raw output tensors in the per-item results. Floating-point outputs can differ in their last "
            "bits with the batch a request landed in, so such files are not byte-identical across runs."
        ),
    )


class BaselineSpec(SpecModel):
    """What the job's per-item results are compared with once it has succeeded (``status.baseline``, the ``Regressed``
    condition): another EvalJob's results, or a results directory. Not part of the run: changing it never re-evaluates."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "has(self.evalJob) != has(self.pvc)", "message": "baseline: set exactly one of evalJob or pvc"}
            ]
        },
    )
    eval_job: str | None = Field(
        default=None,
        alias="evalJob",
        max_length=253,
        pattern=DNS_LABEL,
        description="An EvalJob of the same namespace, of the same dataset and scorer; compared once it has succeeded.",
    )
    pvc: PvcPath | None = Field(
        default=None,
        description=(
            "A results directory on a PersistentVolumeClaim of the namespace (holding results.jsonl, e.g. another job's "
            "status.results.location); the dataset and scorer are then not checked."
        ),
    )
    alpha: float = Field(
        default=0.05,
        gt=0,
        le=0.5,
        description="Significance level of the one-sided test that the job is worse than the baseline.",
    )

    @model_validator(mode="after")
    def _one(self) -> BaselineSpec:
        if (self.eval_job is None) == (self.pvc is None):
            raise ValueError("baseline: set exactly one of evalJob or pvc")
        return self


class DedicatedSpec(SpecModel):
    replicas: int = Field(default=1, ge=1, le=1000, description="Eval replicas of the target (batch priority) for the job.")


class WorkerSpec(SpecModel):
    image: str | None = Field(default=None, min_length=1, pattern=IMAGE, description="Worker image; default: the operator's image.")
    cpu: str = Field(default="500m", pattern=QUANTITY, description="CPU request of a worker.")
    memory: str = Field(default="512Mi", pattern=QUANTITY, description="Memory request and limit of a worker.")


PROMETHEUS_AUTH_RULE = (
    "spec.traffic.prometheusAuth is only for jobs that yield to production (mode shared, traffic.yieldToProduction "
    "true): no other job queries Prometheus"
)


REVISION_RULE = (
    "spec.target.revision is only for mode shared: dedicated replicas are a copy of the service's current spec, of one revision"
)


class EvalJobSpec(SpecModel):
    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.traffic) || !has(self.traffic.prometheusAuth) || "
                    "((!has(self.mode) || self.mode == 'shared') && "
                    "(!has(self.traffic.yieldToProduction) || self.traffic.yieldToProduction))",
                    "message": PROMETHEUS_AUTH_RULE,
                    "fieldPath": ".traffic.prometheusAuth",
                },
                {
                    "rule": "!has(self.target.revision) || !has(self.mode) || self.mode == 'shared'",
                    "message": REVISION_RULE,
                    "fieldPath": ".target.revision",
                },
            ]
        },
    )
    target: TargetSpec = Field(description="The served model to evaluate.")
    mode: EvalMode = Field(
        default=EvalMode.SHARED,
        description="shared: production replicas, yielding to production traffic; dedicated: extra batch-priority replicas.",
    )
    dedicated: DedicatedSpec = Field(default_factory=DedicatedSpec, description="dedicated mode: the eval replicas.")
    dataset: DatasetSource = Field(description="The items to evaluate.")
    scorer: ScorerSpec = Field(default_factory=ScorerSpec, description="How outputs are scored.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed of sharding and of any per-item randomness.")
    shards: int = Field(default=4, ge=1, le=10_000, description="Shards = indexes of the Indexed Job.")
    parallelism: int = Field(default=2, ge=1, le=1000, description="Shards running at once.")
    traffic: TrafficSpec = Field(default_factory=TrafficSpec, description="Request shape, concurrency bounds and retries.")
    outputs: OutputSpec = Field(default_factory=OutputSpec, description="Where per-item results are written.")
    worker: WorkerSpec = Field(default_factory=WorkerSpec, description="The eval-worker pods.")
    priority: Priority = Field(default=Priority.BATCH, description="PriorityClass of workers and dedicated replicas.")
    tenant: str | None = Field(default=None, max_length=253, pattern=DNS_LABEL, description="Tenant (default: the namespace's).")
    suspend: bool = Field(default=False, description="Pause the job (workers stop; progress is kept) and resume later.")
    active_deadline_seconds: int | None = Field(
        default=None, alias="activeDeadlineSeconds", ge=1, le=30 * 86_400, description="Fail the job after this long running."
    )
    backoff_limit_per_index: int = Field(
        default=3, alias="backoffLimitPerIndex", ge=0, le=100, description="Restarts of one shard before it counts as failed."
    )
    baseline: BaselineSpec | None = Field(
        default=None, description="Compare the per-item results with a baseline's when the job has succeeded (a paired test)."
    )

    @model_validator(mode="after")
    def _prometheus_auth(self) -> EvalJobSpec:
        if self.target.revision is not None and self.mode != EvalMode.SHARED:
            raise ValueError(REVISION_RULE)
        yields = self.mode == EvalMode.SHARED and self.traffic.yield_to_production  # only then do workers query Prometheus
        if self.traffic.prometheus_auth is not None and not yields:
            raise ValueError(PROMETHEUS_AUTH_RULE)
        return self


class Progress(SpecModel):
    done: int = Field(default=0, description="Items evaluated.")
    total: int = Field(default=0, description="Items in the dataset.")
    percent: float = Field(default=0.0, description="done / total, percent.")
    eta_seconds: float | None = Field(default=None, alias="etaSeconds", description="Estimated seconds left.")


class Throughput(SpecModel):
    eps: float = Field(default=0.0, description="Evaluations per second, all workers (a finished job: the run's average).")
    p50_ms: float | None = Field(default=None, alias="p50Ms", description="Median request latency, ms.")
    p95_ms: float | None = Field(default=None, alias="p95Ms", description="p95 request latency, ms.")
    p99_ms: float | None = Field(default=None, alias="p99Ms", description="p99 request latency, ms.")
    error_rate: float = Field(default=0.0, alias="errorRate", description="Share of items that failed.")
    throttled_seconds: float = Field(default=0.0, alias="throttledSeconds", description="Worker-seconds spent yielding.")
    concurrency: int = Field(default=0, description="Requests in flight allowed now, all workers.")
    active_seconds: float | None = Field(
        default=None,
        alias="activeSeconds",
        description="A finished job: seconds some worker was evaluating (eps is then items / activeSeconds, the latencies the whole run's).",
    )


class ShardsStatus(SpecModel):
    total: int = Field(default=0, description="Shards.")
    completed: str = Field(default="", description="Completed indexes (e.g. 0-2,5).")
    failed: str = Field(default="", description="Failed indexes.")


class Provenance(SpecModel):
    model: str = Field(default="", description="Model name.")
    version: str = Field(default="", description="Model version ('' = latest).")
    repository_digest: str = Field(default="", alias="repositoryDigest", description="sha256 of the model repository source.")
    dataset_sha256: str = Field(default="", alias="datasetSha256", description="sha256 of the dataset file.")
    seed: int = Field(default=0, description="Seed.")
    worker_image: str = Field(default="", alias="workerImage", description="Worker image.")
    spec_hash: str = Field(default="", alias="specHash", description="sha256 of the whole spec.")


class Results(SpecModel):
    score: float | None = Field(
        default=None, description="Share of items scored correct (a finished job: from every shard's final report, or none)."
    )
    scored: int = Field(default=0, description="Items scored.")
    correct: int = Field(default=0, description="Items scored correct.")
    errors: int = Field(default=0, description="Items that failed.")
    per_shard: list[dict[str, Any]] = Field(
        default_factory=list, alias="perShard", description="Counts per shard (at most 100: shards with errors first)."
    )
    location: str = Field(default="", description="Where the per-item results are (pvc:<claim>/<path>).")


class BaselineStatus(SpecModel):
    """The comparison with ``spec.baseline`` (filled in when it has run; the Regressed condition says where it stands)."""

    eval_job: str = Field(default="", alias="evalJob", description="The baseline EvalJob (empty for a results directory).")
    location: str = Field(default="", description="Where the baseline's per-item results are (pvc:<claim>/<path>).")
    compared: str = Field(default="", description="Which comparison these figures are of (baseline, its run, this run, alpha).")
    paired: int = Field(default=0, description="Items scored in both.")
    unpaired: int = Field(default=0, description="Items scored in only one of them (absent or an error in the other).")
    baseline_score: float | None = Field(default=None, alias="baselineScore", description="The baseline's score on the paired items.")
    candidate_score: float | None = Field(default=None, alias="candidateScore", description="This job's score on the paired items.")
    delta: float | None = Field(default=None, description="candidateScore - baselineScore.")
    flipped_worse: int = Field(default=0, alias="flippedWorse", description="Items right in the baseline and wrong here.")
    flipped_better: int = Field(default=0, alias="flippedBetter", description="Items wrong in the baseline and right here.")
    flipped_sample: list[str] = Field(
        default_factory=list, alias="flippedSample", description="The first (by id) at most 20 flipped items; all are in flippedLocation."
    )
    flipped_location: str = Field(default="", alias="flippedLocation", description="Every flipped item: flipped.jsonl in this job's results.")
    test: str = Field(default="", description="mcnemar-exact (correct/incorrect scores) or paired-bootstrap (numeric scores).")
    p_value: float | None = Field(default=None, alias="pValue", description="McNemar's one-sided exact p-value.")
    interval: list[float] | None = Field(
        default=None, description="paired-bootstrap: the (1 - alpha) interval of the mean score difference."
    )
    alpha: float | None = Field(default=None, description="The significance level used.")


class EvalJobStatus(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    observed_generation: int = Field(default=0, alias="observedGeneration", description="Generation this status reflects.")
    phase: str = Field(default="", description="Pending, Running, Suspended, Succeeded or Failed.")
    start_time: str | None = Field(default=None, alias="startTime", description="When the job started running.")
    completion_time: str | None = Field(default=None, alias="completionTime", description="When it finished.")
    progress: Progress = Field(default_factory=Progress, description="Items done of total.")
    throughput: Throughput = Field(default_factory=Throughput, description="Live throughput and latency.")
    shards: ShardsStatus = Field(default_factory=ShardsStatus, description="Shard indexes by state.")
    provenance: Provenance = Field(default_factory=Provenance, description="What exactly was evaluated.")
    results: Results = Field(default_factory=Results, description="Scores.")
    baseline: BaselineStatus | None = Field(default=None, description="The comparison with spec.baseline.")
    conditions: list[Condition] = Field(default_factory=list, description="Admitted, Running, Suspended, Succeeded, Failed.")


class EvalJob(ServiceNamed):
    """A sharded, deterministic, resumable evaluation of a served model that yields to production."""

    name_max: ClassVar[int] = MAX_NAME_LENGTH
    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    api_version: str = Field(default="foresail.dev/v1alpha1", alias="apiVersion")
    kind: str = Field(default="EvalJob")
    spec: EvalJobSpec
    status: EvalJobStatus = Field(default_factory=EvalJobStatus)


def spec_hash(spec: EvalJobSpec) -> str:
    """sha256 of the canonical JSON of the spec (suspend excluded: pausing is not a different job; baseline too: the
    comparison is not the run; an unset traffic.prometheusAuth or target.revision too, so that jobs of before those
    fields keep their hash, their run and results)."""
    data = spec.model_dump(by_alias=True, mode="json", exclude={"suspend", "baseline"})
    if data["traffic"].get("prometheusAuth") is None:
        del data["traffic"]["prometheusAuth"]
    if data["target"].get("revision") is None:
        del data["target"]["revision"]
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
