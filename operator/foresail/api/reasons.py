"""The words Foresail shows users: condition types, reasons of conditions and Events, the autoscaler's
decision reasons and limits (CamelCase, as the Kubernetes API conventions ask).

Each value is the exact string users see in ``kubectl get``/``describe`` and in status; code and tests
compare against these members, never against free strings or their prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ConditionType", "DecisionReason", "Limit", "Problem", "Reason"]


class ConditionType(StrEnum):
    # InferenceService
    READY = "Ready"
    WARMUP_FAILING = "WarmupFailing"
    METRICS_AVAILABLE = "MetricsAvailable"
    SCALING_ACTIVE = "ScalingActive"
    SCALING_LIMITED = "ScalingLimited"
    QUOTA_LIMITED = "QuotaLimited"
    REPLICAS_CONTESTED = "ReplicasContested"  # another manager writes the Deployment's replicas
    PAUSED = "Paused"  # the foresail.dev/paused(-replicas) annotation froze its replicas
    ROLLOUT_PROGRESSING = "RolloutProgressing"  # spec.rollout: a canary revision takes a share of the traffic
    # Tenant
    NAMESPACE_CONFLICT = "NamespaceConflict"
    # EvalJob
    ADMITTED = "Admitted"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SPEC_IGNORED = "SpecIgnored"
    REGRESSED = "Regressed"  # spec.baseline: worse than the baseline (a paired test)


class Reason(StrEnum):
    """Reasons of conditions and Events."""

    # every resource
    INVALID_SPEC = "InvalidSpec"
    CREATED = "Created"
    UPDATED = "Updated"
    DELETED = "Deleted"  # a child no longer wanted (a rollout's canary Service once no canary runs)
    NAME_TAKEN = "NameTaken"  # a child's name is held by an object this owner does not control: left alone
    # InferenceService: Ready, children, replicas
    RECONCILING = "Reconciling"
    REPOSITORY_NOT_FOUND = "RepositoryNotFound"
    MODEL_FETCH_FAILED = "ModelFetchFailed"  # the storage-init container could not fetch spec.model.repository.storageUri
    INVALID_POD_TEMPLATE = "InvalidPodTemplate"  # the apiserver refused the Deployment (spec.triton.podTemplate)
    CHILD_REFUSED = "ChildRefused"  # the apiserver refused another child (the Service, the PodDisruptionBudget)
    SCALED_TO_ZERO = "ScaledToZero"
    SERVING = "Serving"
    NO_READY_REPLICAS = "NoReadyReplicas"
    SCALED = "Scaled"  # the reconciler kept replicas within bounds
    SCALED_UP = "ScaledUp"
    SCALED_DOWN = "ScaledDown"
    # warm-up
    WARMED_UP = "WarmedUp"
    WARMUP_TIMEOUT = "WarmupTimeout"
    WARMUP_ERROR = "WarmupError"
    REPLICAS_FAILED_WARMUP = "ReplicasFailedWarmup"
    NO_FAILURES = "NoFailures"
    REPLICA_REPLACED = "ReplicaReplaced"
    QUEUE_POLICY_FAILED = "QueuePolicyFailed"  # spec.triton.queuePolicy could not be applied to the model
    RESTARTED = "Restarted"  # Triton restarted after its warm-up: cold again, warmed again
    # autoscaler: MetricsAvailable, ScalingActive, ScalingLimited
    METRICS_OK = "MetricsOK"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    OTHER_WRITER = "OtherWriter"  # ReplicasContested: a manager other than Foresail wrote spec.replicas
    SOLE_WRITER = "SoleWriter"
    AUTOSCALING_FAILED = "AutoscalingFailed"  # one service's decision raised (the others went on)
    NO_SERIES = "NoSeries"  # serving replicas, and no Triton series labelled for the service in Prometheus
    PAUSED = "Paused"
    INVALID_PAUSE = "InvalidPause"  # a pause annotation's value is not understood: frozen at the current count
    DECIDED = "Decided"
    HOLDING = "Holding"
    POLICY_NOT_FOUND = "PolicyNotFound"
    POLICY_INVALID = "PolicyInvalid"
    WITHIN_BOUNDS = "WithinBounds"
    # rollouts (spec.rollout): RolloutProgressing and Events
    ROLLOUT_STARTED = "RolloutStarted"  # a canary revision started its first step
    ROLLOUT_STEP = "RolloutStep"  # the canary passed a step's gates and moved to the next
    ROLLOUT_WAITING = "RolloutWaiting"  # the canary is in a step: gates not decided yet
    PROMOTED = "Promoted"  # the canary became the stable revision
    ROLLED_BACK = "RolledBack"  # a gate failed: the canary was scaled to zero
    ABORTED = "Aborted"  # spec.rollout.action=Abort
    NO_ROLLOUT = "NoRollout"  # one revision serves
    # tenants: QuotaLimited on services, Tenant conditions
    TENANT_NOT_FOUND = "TenantNotFound"
    QUOTA_EXCEEDED = "QuotaExceeded"
    WITHIN_QUOTA = "WithinQuota"
    ARBITRATED = "Arbitrated"
    NAMESPACE_OWNED_ELSEWHERE = "NamespaceOwnedElsewhere"
    NO_CONFLICT = "NoConflict"
    # EvalJob
    TARGET_NOT_FOUND = "TargetNotFound"
    TARGET_INVALID = "TargetInvalid"
    DATASET_NOT_FOUND = "DatasetNotFound"
    DATASET_HASH_MISMATCH = "DatasetHashMismatch"
    OUTPUTS_NOT_FOUND = "OutputsNotFound"
    CHILD_REJECTED = "ChildRejected"
    NOT_ADMITTED = "NotAdmitted"
    ADMITTED = "Admitted"
    STARTING = "Starting"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    USER_SUSPENDED = "UserSuspended"
    PREEMPTED = "Preempted"
    WAITING_FOR_EVAL_REPLICAS = "WaitingForEvalReplicas"
    COMPLETED = "Completed"
    ALL_SHARDS_COMPLETED = "AllShardsCompleted"
    SCORE_INCOMPLETE = "ScoreIncomplete"  # a succeeded EvalJob missing some shard's final report: no score
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    JOB_FAILED = "JobFailed"
    JOB_FINISHED = "JobFinished"
    SPEC_CHANGED = "SpecChanged"
    SPEC_IGNORED = "SpecIgnored"
    # EvalJob spec.baseline: the Regressed condition
    REGRESSED = "Regressed"
    NO_REGRESSION = "NoRegression"
    UNDECIDED = "Undecided"  # too few discordant items (or pairs) for the test to decide
    BASELINE_NOT_FOUND = "BaselineNotFound"
    BASELINE_INCOMPLETE = "BaselineIncomplete"  # the baseline job has not succeeded (yet), or has no results
    BASELINE_INVALID = "BaselineInvalid"  # itself, another dataset or scorer
    AWAITING_RESULTS = "AwaitingResults"  # this job has not succeeded yet
    COMPARING = "Comparing"  # the compare pod runs
    COMPARE_FAILED = "CompareFailed"


class DecisionReason(StrEnum):
    """What set the autoscaler's recommendation (``status.recommendation.reason``); the details are in its message."""

    METRICS_UNAVAILABLE = "MetricsUnavailable"  # metrics missing, NaN, infinite or stale: replicas held
    METRICS_FALLBACK = "MetricsFallback"  # ... for longer than fallback.afterSeconds: up to fallback.replicas
    NO_CAPACITY_ESTIMATE = "NoCapacityEstimate"  # neither a calibration nor a capacity per replica: feedback on p99 only
    BASE_DEMAND = "BaseDemand"  # sized for headroom x the base rate (forecast off)
    FORECAST_DEMAND = "ForecastDemand"  # sized for headroom x the forecast at now + lead
    FAST_PATH = "FastPath"  # the 2 s arrivals exceed what the ready and starting replicas serve
    BURST_ONSET = "BurstOnset"  # a burst after quiet: sized at once for the typical burst peak
    IDLE_HOLD = "IdleHold"  # capacity kept until it has been idle for the hold (rent or buy)
    NOT_DUE = "NotDue"  # between the service's decisions: only a shrunk quota grant applies
    PAUSED = "Paused"  # a pause annotation froze the replicas (at its count, or the current one)


class Limit(StrEnum):
    """What capped a recommendation (the ScalingLimited condition's reason)."""

    MAX_REPLICAS = "MaxReplicas"
    MIN_REPLICAS = "MinReplicas"
    MAX_SCALE_UP_RATE = "MaxScaleUpRate"
    MAX_SCALE_DOWN_RATE = "MaxScaleDownRate"
    QUOTA = "Quota"

    @property
    def is_bound(self) -> bool:
        """A bound the user or a tenant set (ScalingLimited=True), not a per-tick rate limit."""
        return self in (Limit.MAX_REPLICAS, Limit.MIN_REPLICAS, Limit.QUOTA)


@dataclass(frozen=True)
class Problem:
    """Why a resource cannot be reconciled now: the reason and message of its condition and Event."""

    reason: Reason
    message: str
    terminal: bool = False  # it cannot succeed (an EvalJob fails), rather than waiting for a fix
