"""The warm-up gate against a fake apiserver and a fake Triton: a warm replica, a failing one, its replacement,
a restarted one warmed again, and spec.triton.queuePolicy loaded into Triton before the replica serves."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from foresail.api.inferenceservice import InferenceService
from foresail.api.reasons import Reason
from foresail.clients.triton import TritonReplica
from foresail.controllers.warmup import WarmupFailed, WarmupManager, needs_warmup
from tests.controllers.objects import isvc, pod
from tests.fakes.apiserver import FakeApiServer
from tests.fakes.triton import FakeTriton


def setup(api: FakeApiServer) -> tuple[WarmupManager, dict[str, Any], dict[str, Any]]:
    p = pod("resnet", "team-a", 0, warm=False)
    p["metadata"]["creationTimestamp"] = "2027-01-15T08:00:00Z"
    api.put(isvc(warmup__maxFailures=2), p)
    body = api.get("InferenceService", "team-a", "resnet")
    listed = api.get("Pod", "team-a", "resnet-0")
    assert body is not None and listed is not None
    return WarmupManager(api.kube()), body, listed


def gate(api: FakeApiServer) -> tuple[str, str]:
    p = api.get("Pod", "team-a", "resnet-0")
    assert p is not None
    c = next(c for c in p["status"]["conditions"] if c["type"] == "foresail.dev/warm")
    return c["status"], c["reason"]


def test_a_warm_replica_opens_its_gate_and_feeds_the_cold_start_estimate(api: FakeApiServer) -> None:
    w, body, p = setup(api)
    w._succeed(p, body, "warm after 40 requests")
    assert gate(api) == ("True", "WarmedUp")
    annotations = api.get("Pod", "team-a", "resnet-0")["metadata"]["annotations"]  # type: ignore[index]
    assert annotations["controller.kubernetes.io/pod-deletion-cost"] == "1000"
    assert set(json.loads(annotations["foresail.dev/cold-start"])) == {"scheduled_s", "containers_ready_s", "warm_s"}
    cold = api.get("InferenceService", "team-a", "resnet")["status"]["coldStart"]  # type: ignore[index]
    assert cold["samples"] == 1 and cold["p90Seconds"] == cold["recentSeconds"][0]


def test_a_failing_replica_is_marked_then_replaced_after_max_failures(api: FakeApiServer) -> None:
    w, body, p = setup(api)
    svc = InferenceService.model_validate(body)
    w._fail(p, svc, body, WarmupFailed(Reason.WARMUP_TIMEOUT, "not steady"), max_failures=2)
    assert gate(api) == ("False", "WarmupTimeout")
    after = api.get("Pod", "team-a", "resnet-0")
    assert after is not None and after["metadata"]["annotations"]["foresail.dev/warmup-failures"] == "1"
    assert after["metadata"]["annotations"]["controller.kubernetes.io/pod-deletion-cost"] == "-1000"
    failing = next(c for c in api.get("InferenceService", "team-a", "resnet")["status"]["conditions"] if c["type"] == "WarmupFailing")  # type: ignore[index]
    assert (failing["status"], failing["reason"]) == ("True", "ReplicasFailedWarmup")
    assert [(e["reason"], e["involvedObject"]["kind"]) for e in api.events()] == [("WarmupTimeout", "Pod")]

    w._fail(after, svc, body, WarmupFailed(Reason.WARMUP_TIMEOUT, "not steady"), max_failures=2)
    assert api.get("Pod", "team-a", "resnet-0") is None, "replaced: the Deployment makes a new one"
    assert ("ReplicaReplaced", "InferenceService") in [(e["reason"], e["involvedObject"]["kind"]) for e in api.events()]


def test_the_warm_restart_count_is_recorded_and_a_re_warm_is_no_cold_start(api: FakeApiServer) -> None:
    w, body, p = setup(api)
    p["status"]["containerStatuses"] = [{"name": "triton", "restartCount": 0}]
    w._succeed(p, body, "warm")
    again = api.get("Pod", "team-a", "resnet-0")
    assert again is not None and again["metadata"]["annotations"]["foresail.dev/warm-restarts"] == "0"
    again["status"]["containerStatuses"] = [{"name": "triton", "restartCount": 1}]
    w._succeed(again, body, "warm again")
    cold = api.get("InferenceService", "team-a", "resnet")["status"]["coldStart"]  # type: ignore[index]
    assert cold["samples"] == 1, "only a pod's first warm-up measures a cold start"


def gated(warm: str | None, restarts: int, recorded: str | None) -> dict[str, Any]:
    conds = [{"type": "ContainersReady", "status": "True"}]
    if warm is not None:
        conds.append({"type": "foresail.dev/warm", "status": warm})
    md: dict[str, Any] = {"name": "p", "namespace": "ns", "annotations": {} if recorded is None else {"foresail.dev/warm-restarts": recorded}}
    return {
        "metadata": md,
        "spec": {"readinessGates": [{"conditionType": "foresail.dev/warm"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": conds, "containerStatuses": [{"restartCount": restarts}]},
    }


@pytest.mark.parametrize(
    ("name", "pod", "want"),
    [
        ("new and ready: warm it", gated(None, 0, None), True),
        ("warm: leave it", gated("True", 0, "0"), False),
        ("warm before this operator recorded restarts: leave it", gated("True", 3, None), False),
        ("Triton restarted after its warm-up: cold again, warm it", gated("True", 1, "0"), True),
        ("restarted before its warm-up: leave it", gated("True", 2, "2"), False),
        ("a failed warm-up is retried", gated("False", 0, None), True),
    ],
)
def test_needs_warmup(name: str, pod: dict[str, Any], want: bool) -> None:
    assert needs_warmup(pod) is want, name


def apply(triton: FakeTriton, policy: str) -> None:
    async def go() -> None:
        replica = TritonReplica(triton.address)
        try:
            await WarmupManager._apply_queue_policy(replica, "m", policy, time.monotonic() + 10, 10)
        finally:
            await replica.close()

    asyncio.run(go())


def test_the_queue_policy_is_loaded_into_triton_before_the_replica_serves() -> None:
    triton = FakeTriton()
    try:
        apply(triton, '{"timeoutMs": 500, "maxQueueSize": 64}')
        (loaded,) = triton.loads
        assert loaded["dynamic_batching"] == {
            "max_queue_delay_microseconds": 100,
            "default_queue_policy": {"timeout_action": "REJECT", "default_timeout_microseconds": 500_000, "allow_timeout_override": False, "max_queue_size": 64},
        }  # fmt: skip
        assert loaded["max_batch_size"] == 8, "the rest of the model's config is kept"
    finally:
        triton.close()


@pytest.mark.parametrize(
    ("name", "dynamic", "policy", "error"),
    [
        ("a model without dynamic batching", False, '{"timeoutMs": 500}', "spec.triton.queuePolicy: model 'm' has no dynamic_batching"),
        ("a bad annotation", True, '{"timeoutMs": -1}', "timeoutMs"),
    ],
)
def test_a_queue_policy_that_cannot_apply_fails_the_warm_up(name: str, dynamic: bool, policy: str, error: str) -> None:
    triton = FakeTriton(dynamic_batching=dynamic)
    try:
        with pytest.raises(WarmupFailed, match=error) as e:
            apply(triton, policy)
        assert e.value.reason == Reason.QUEUE_POLICY_FAILED and triton.loads == [], name
    finally:
        triton.close()
