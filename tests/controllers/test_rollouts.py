"""Rollouts in the autoscaler's pass against a fake apiserver and a fake Prometheus: what a pass writes when a
new revision appears, when its step's gates fail, and when a service has no rollout."""

from __future__ import annotations

from typing import Any

from foresail.api.inferenceservice import InferenceService
from foresail.api.objects import LABEL_REVISION, LABEL_SLOT, format_rfc3339
from foresail.api.rollout import Slot
from foresail.render.triton import render_deployment, revision
from tests.controllers.objects import NOW, isvc, node, pod
from tests.controllers.test_autoscaler import one_pass
from tests.fakes.apiserver import FakeApiServer
from tests.fakes.counters import steady
from tests.fakes.prometheus import answer, matrix

ROLLOUT = {"steps": [{"percent": 50, "minSeconds": 10, "minRequests": 50}]}
NEW_ENV = [{"name": "FORESAIL_EMULATED_COLD_REQUESTS", "value": "3"}]


def _service(**spec: Any) -> dict[str, Any]:
    base = {
        "scaling__capacityPerReplicaRps": 20,
        "scaling__maxReplicas": 8,
        "scaling__overrides": {"forecastEnabled": False},
        "rollout": ROLLOUT,
    }
    return isvc("resnet", "team-a", **{**base, **spec})


def _slot(body: dict[str, Any], slot: Slot, replicas: int) -> dict[str, Any]:
    dep = render_deployment(InferenceService.model_validate(body), slot)
    dep["spec"]["replicas"] = replicas
    return dep


def _pod(i: int, rev: str, slot: Slot = Slot.A, started: str = "2027-01-01T00:00:00Z") -> dict[str, Any]:
    p = pod("resnet", "team-a", i, started=started)
    p["metadata"]["name"] = f"resnet-{slot.value}{i}"
    p["metadata"]["labels"][LABEL_REVISION] = rev
    if slot is Slot.B:
        p["metadata"]["labels"][LABEL_SLOT] = "b"
    return p


def _rollout(api: FakeApiServer) -> dict[str, Any]:
    obj = api.get("InferenceService", "team-a", "resnet")
    assert obj is not None
    out: dict[str, Any] = obj["status"]["rollout"]
    return out


def _condition(api: FakeApiServer, type_: str) -> dict[str, Any]:
    obj = api.get("InferenceService", "team-a", "resnet")
    assert obj is not None
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


async def test_a_new_revision_starts_a_canary_in_slot_b(api: FakeApiServer) -> None:
    old, new = _service(), _service(triton__env=NEW_ENV)
    old_rev = revision(InferenceService.model_validate(old))
    new_rev = revision(InferenceService.model_validate(new))
    api.put(new, _slot(old, Slot.A, 2), _slot(new, Slot.B, 0), _pod(0, old_rev), _pod(1, old_rev), node("n1"))
    samples = {("team-a", "resnet", f"resnet-a{i}"): steady(NOW - 75, NOW - 1, 10.0) for i in range(2)}
    await one_pass(api, answer(matrix(samples, model="resnet50")))
    st = _rollout(api)
    assert (st["phase"], st["stableRevision"], st["canaryRevision"], st["stableSlot"], st["canaryPercent"]) == (
        "Progressing",
        old_rev,
        new_rev,
        "a",
        50,
    )
    scales = {w.path.split("/")[-2]: w.body["spec"]["replicas"] for w in api.writes("Deployment", sub="scale")}
    assert scales == {"resnet-b": 1}, "the canary gets its share; the stable slot keeps its replicas until the canary is ready"
    assert (st["stableReplicas"], st["canaryReplicas"]) == (2, 1)
    assert _condition(api, "RolloutProgressing")["status"] == "True"
    assert "RolloutStarted" in [e["reason"] for e in api.events()]


async def test_a_slow_canary_is_rolled_back_with_its_p99_in_the_condition(api: FakeApiServer) -> None:
    old, new = _service(), _service(triton__env=NEW_ENV)
    old_rev = revision(InferenceService.model_validate(old))
    new_rev = revision(InferenceService.model_validate(new))
    started = format_rfc3339(NOW - 120)
    new["status"] = {
        "rollout": {
            "phase": "Progressing", "stableRevision": old_rev, "stableSlot": "a", "canaryRevision": new_rev,
            "step": 0, "stepStarted": started, "canaryPercent": 50,
        }
    }  # fmt: skip
    api.put(
        new,
        _slot(old, Slot.A, 1),
        _slot(new, Slot.B, 1),
        _pod(0, old_rev),
        _pod(0, new_rev, Slot.B, started=format_rfc3339(NOW - 110)),
        node("n1"),
    )
    samples = {
        ("team-a", "resnet", "resnet-a0"): steady(NOW - 119, NOW - 1, 10.0, p99_ms=40.0),
        ("team-a", "resnet", "resnet-b0"): steady(NOW - 109, NOW - 1, 10.0, p99_ms=150.0),
    }
    await one_pass(api, answer(matrix(samples, model="resnet50")))
    st = _rollout(api)
    assert (st["phase"], st.get("canaryRevision"), st["failedRevision"]) == ("RolledBack", None, new_rev)
    cond = _condition(api, "RolloutProgressing")
    assert (cond["status"], cond["reason"]) == ("False", "RolledBack")
    assert "latency gate failed" in cond["message"] and "150 ms" in cond["message"], cond["message"]
    scales = {w.path.split("/")[-2]: w.body["spec"]["replicas"] for w in api.writes("Deployment", sub="scale")}
    assert scales["resnet-b"] == 0, "the canary goes at once"
    assert any(e["reason"] == "RolledBack" and e["type"] == "Warning" for e in api.events())


async def test_a_service_without_rollouts_gets_no_rollout_status(api: FakeApiServer) -> None:
    body = _service(rollout=None)
    api.put(body, _slot(body, Slot.A, 1), _pod(0, revision(InferenceService.model_validate(body))), node("n1"))
    await one_pass(api, answer(matrix({("team-a", "resnet", "resnet-a0"): steady(NOW - 75, NOW - 1, 30.0)}, model="resnet50")))
    obj = api.get("InferenceService", "team-a", "resnet")
    assert obj is not None and "rollout" not in obj["status"]
    assert all(c["type"] != "RolloutProgressing" for c in obj["status"]["conditions"])


async def test_a_good_canary_is_promoted_and_the_old_slot_drains_as_the_new_one_is_ready(api: FakeApiServer) -> None:
    old, new = _service(), _service(triton__env=NEW_ENV)
    old_rev = revision(InferenceService.model_validate(old))
    new_rev = revision(InferenceService.model_validate(new))
    new["status"] = {
        "rollout": {
            "phase": "Progressing", "stableRevision": old_rev, "stableSlot": "a", "canaryRevision": new_rev,
            "step": 0, "stepStarted": format_rfc3339(NOW - 120), "canaryPercent": 50,
        }
    }  # fmt: skip
    new["spec"]["scaling"]["minReplicas"] = 2
    api.put(
        new,
        _slot(old, Slot.A, 1),
        _slot(new, Slot.B, 1),
        _pod(0, old_rev),
        _pod(0, new_rev, Slot.B, started=format_rfc3339(NOW - 110)),
        node("n1"),
    )
    samples = {
        ("team-a", "resnet", "resnet-a0"): steady(NOW - 119, NOW - 1, 10.0, p99_ms=40.0),
        ("team-a", "resnet", "resnet-b0"): steady(NOW - 109, NOW - 1, 10.0, p99_ms=42.0),
    }
    await one_pass(api, answer(matrix(samples, model="resnet50")))
    st = _rollout(api)
    assert (st["phase"], st["stableRevision"], st["stableSlot"], st.get("canaryRevision")) == ("Promoted", new_rev, "b", None)
    scales = {w.path.split("/")[-2]: w.body["spec"]["replicas"] for w in api.writes("Deployment", sub="scale")}
    assert scales == {"resnet-b": 2}, "slot a keeps its replica until slot b has two ready"
    assert _condition(api, "RolloutProgressing")["reason"] == "Promoted"


async def test_abort_by_the_action_field_drops_the_canary_at_once(api: FakeApiServer) -> None:
    old, new = _service(), _service(triton__env=NEW_ENV, rollout={**ROLLOUT, "action": "Abort"})
    old_rev = revision(InferenceService.model_validate(old))
    new_rev = revision(InferenceService.model_validate(new))
    new["status"] = {
        "rollout": {
            "phase": "Progressing", "stableRevision": old_rev, "stableSlot": "a", "canaryRevision": new_rev,
            "step": 0, "stepStarted": format_rfc3339(NOW - 5), "canaryPercent": 50, "actionRevision": new_rev,
        }
    }  # fmt: skip
    api.put(new, _slot(old, Slot.A, 1), _slot(new, Slot.B, 1), _pod(0, old_rev), _pod(0, new_rev, Slot.B), node("n1"))
    await one_pass(api, answer(matrix({("team-a", "resnet", "resnet-a0"): steady(NOW - 75, NOW - 1, 10.0)}, model="resnet50")))
    st = _rollout(api)
    assert (st["phase"], st["failedRevision"], st.get("canaryRevision")) == ("Aborted", new_rev, None)
    scales = {w.path.split("/")[-2]: w.body["spec"]["replicas"] for w in api.writes("Deployment", sub="scale")}
    assert scales["resnet-b"] == 0
    assert _condition(api, "RolloutProgressing")["reason"] == "Aborted"
    assert any(e["reason"] == "Aborted" and e["type"] == "Warning" for e in api.events())
