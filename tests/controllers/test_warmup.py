"""The warm-up gate's writes against a fake apiserver: a warm replica, a failing one, its replacement."""

from __future__ import annotations

import json
from typing import Any

from foresail.api.inferenceservice import InferenceService
from foresail.api.reasons import Reason
from foresail.controllers.warmup import WarmupFailed, WarmupManager
from tests.controllers.objects import isvc, pod
from tests.fakes.apiserver import FakeApiServer


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
