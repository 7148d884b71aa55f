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
from foresail.controllers.warmup import ByteBudget, WarmupFailed, WarmupManager, needs_warmup
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


def test_warm_up_memory_is_a_budget_of_bytes_shared_in_order() -> None:
    """Holds that fit run together; one that does not waits, and later small ones queue behind it (no
    starvation of a big request); more than the whole budget is refused at once."""

    async def go() -> list[str]:
        budget = ByteBudget(100)
        log: list[str] = []

        async def worker(name: str, n: int, seconds: float) -> None:
            async with budget.hold(n):
                assert budget.used <= budget.total
                log.append(f"{name}+")
                await asyncio.sleep(seconds)
            log.append(f"{name}-")

        a = asyncio.create_task(worker("a", 60, 0.05))
        b = asyncio.create_task(worker("b", 40, 0.1))  # fits beside a
        await asyncio.sleep(0.01)
        c = asyncio.create_task(worker("c", 70, 0.01))  # waits for a and b
        await asyncio.sleep(0.01)
        d = asyncio.create_task(worker("d", 10, 0.01))  # would fit after a, but queues behind c
        await asyncio.gather(a, b, c, d)
        with pytest.raises(ValueError, match="more than the whole warm-up memory"):
            async with budget.hold(101):
                pass
        assert budget.used == 0
        return log

    assert asyncio.run(go()) == ["a+", "b+", "a-", "b-", "c+", "d+", "c-", "d-"]


def test_a_wait_for_warm_up_memory_gives_up_at_the_deadline() -> None:
    async def go() -> None:
        budget = ByteBudget(10)
        async with budget.hold(10):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05), budget.hold(5):
                    pass
        assert budget.used == 0
        async with asyncio.timeout(0.05), budget.hold(10):  # the one that gave up left no claim behind
            pass

    asyncio.run(go())


@pytest.mark.parametrize(
    ("inputs", "request_bytes", "sizes", "seen", "note"),
    [
        pytest.param([{"name": "INPUT", "datatype": "FP32", "shape": [-1, 4]}], 1_000_000, [1, 2, 4, 8], ("FP32", (8, 4)), "", id="fits: every size the model serves"),
        pytest.param([{"name": "INPUT", "datatype": "FP32", "shape": [-1, 4]}], 64, [1, 2, 4], ("FP32", (4, 4)), "largest batch 8 -> 4", id="batch reduced to fit the request cap"),
        pytest.param([{"name": "IMAGE", "datatype": "FP16", "shape": [-1, 3, 4, 4]}], 1_000_000, [1, 2, 4, 8], ("FP16", (8, 3, 4, 4)), "", id="FP16 model: FP16 inputs"),
        pytest.param([{"name": "TEXT", "datatype": "BYTES", "shape": [-1, 2]}], 1_000_000, [1, 2, 4, 8], ("BYTES", (8, 2)), "", id="BYTES input"),
    ],
)  # fmt: skip
def test_a_replica_is_warmed_in_its_models_datatype_within_the_byte_cap(
    api: FakeApiServer, monkeypatch: pytest.MonkeyPatch, inputs: list[dict[str, Any]], request_bytes: int, sizes: list[int], seen: tuple[str, tuple[int, ...]], note: str
) -> None:
    triton = FakeTriton(base_ms=0.5, per_item_ms=0.0, inputs=inputs)
    try:
        monkeypatch.setattr("foresail.controllers.warmup.HTTP", int(triton.address.rsplit(":", 1)[1]))
        p = pod("resnet", "team-a", 0, warm=False)
        p["status"]["podIP"] = "127.0.0.1"
        p["spec"]["readinessGates"] = [{"conditionType": "foresail.dev/warm"}]
        api.put(isvc(model__name="m", warmup__requests=5, warmup__steadinessPercent=100), p)
        listed = api.get("Pod", "team-a", "resnet-0")
        assert listed is not None
        w = WarmupManager(api.kube(), memory_bytes=16 * request_bytes, request_bytes=request_bytes)
        asyncio.run(w.warm(listed))
        c = next(c for c in api.get("Pod", "team-a", "resnet-0")["status"]["conditions"] if c["type"] == "foresail.dev/warm")  # type: ignore[index]
        assert (c["status"], c["reason"]) == ("True", "WarmedUp"), c["message"]
        assert f"for batch sizes {sizes}" in c["message"]
        assert note in c["message"]
        assert max(triton.seen, key=lambda s: s[0][1][0])[0] == seen
        assert w.memory.used == 0
    finally:
        triton.close()
