"""InferenceService reconciler: spec -> Deployment + Service + PDB (server-side apply) -> status; with the
operator's ``FORESAIL_GATEWAY`` set and the HTTPRoute CRD served, also the per-revision Services and the
weighted HTTPRoute of the rollout's split (``render.httproute``), ``status.trafficSplit`` saying which split
is in force.

Level-triggered and idempotent: every run renders the whole desired state and applies it; applying
what is already there changes nothing. It runs on create/update/resume, every 30 s (``resync``: one loop,
not a per-object timer, so no finalizer blocks deletion), and whenever a child it owns changes or
disappears (drift repair).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from foresail.api.conditions import set_condition
from foresail.api.inferenceservice import InferenceService, InferenceServiceStatus
from foresail.api.meta import validation_message
from foresail.api.objects import LABEL_ISVC
from foresail.api.reasons import ConditionType, Problem, Reason
from foresail.api.rollout import Slot, TrafficSplit
from foresail.clients.kube import ApiException, Kube
from foresail.controllers import coalesce, telemetry
from foresail.controllers.gateway import HTTPRouteDiscovery, SplitWatch
from foresail.controllers.handlers import forget_lock, kube, object_lock, settings, utcnow
from foresail.controllers.liveness import HEARTBEAT
from foresail.render.httproute import GatewayRef, split_children
from foresail.render.isvc_status import observe
from foresail.render.meta import controlled_by, name_taken, stamp
from foresail.render.slots import SlotPlan, plan_slots
from foresail.render.storage import fetch_signature
from foresail.render.triton import render_pdb, render_service, slot_name
from foresail.scaling.pause import pause_of

__all__ = ["ISVC", "forget", "reconcile", "reconcile_owner"]

ISVC = ("foresail.dev", "v1alpha1", "inferenceservices")
RECONCILER_FIELDS = {
    "observed_generation", "replicas", "ready_replicas", "warm_replicas", "starting_replicas", "desired_replicas", "selector", "conditions", "model",
    "traffic_split",
}  # fmt: skip
HTTPROUTES = HTTPRouteDiscovery()


def gateway_of(kube: Kube) -> GatewayRef | None:
    """The Gateway routes attach to: FORESAIL_GATEWAY's, when it is set and the HTTPRoute CRD is served."""
    ref = settings().gateway_ref()
    return ref if ref is not None and HTTPROUTES.served(kube) else None


def check_repository(kube: Kube, isvc: InferenceService) -> Problem | None:
    repo = isvc.spec.model.repository
    ns = isvc.namespace
    if repo.config_map is not None and kube.get("ConfigMap", ns, repo.config_map.name) is None:
        return Problem(
            Reason.REPOSITORY_NOT_FOUND, f"ConfigMap {ns}/{repo.config_map.name} (spec.model.repository.configMap) not found"
        )
    if repo.pvc is not None and kube.get("PersistentVolumeClaim", ns, repo.pvc.claim_name) is None:
        return Problem(
            Reason.REPOSITORY_NOT_FOUND,
            f"PersistentVolumeClaim {ns}/{repo.pvc.claim_name} (spec.model.repository.pvc) not found",
        )
    return None


def slot_deployments(kube: Kube, isvc: InferenceService) -> dict[Slot, dict[str, Any] | None]:
    """The service's slot Deployments that it controls (None: absent, or someone else's)."""
    out: dict[Slot, dict[str, Any] | None] = {}
    for slot in Slot:
        dep = kube.get_managed("Deployment", isvc.namespace, slot_name(isvc.name, slot))
        out[slot] = dep if controlled_by(dep, isvc) else None
    return out


def combined(deps: dict[Slot, dict[str, Any] | None]) -> dict[str, Any] | None:
    """Both slots as one Deployment for the status (replicas summed); None when neither exists."""
    found = [d for d in deps.values() if d is not None]
    if not found:
        return None
    spec = sum(int((d.get("spec") or {}).get("replicas", 1)) for d in found)
    status = sum(int((d.get("status") or {}).get("replicas", 0) or 0) for d in found)
    return {"metadata": found[0]["metadata"], "spec": {"replicas": spec}, "status": {"replicas": status}}


def apply_children(
    kube: Kube,
    isvc: InferenceService,
    fresh: dict[str, Any],
    gateway: GatewayRef | None = None,
    pods: list[dict[str, Any]] | None = None,
) -> Problem | None:
    """Apply the rendered children; a child the apiserver refuses as invalid (an overlay it rejects) is a
    problem to report, not an error to retry at once. A child's name held by an object this service does not
    control (a user's Deployment, a PDB of an earlier service of the name) is reported too, and no child is
    applied: server-side apply would adopt and overwrite it. With ``gateway``: the per-revision Services and
    the HTTPRoute too, and ``<name>-canary`` deleted while no canary runs."""
    ns = isvc.namespace
    created: set[str] = set()
    plan = plan_slots(isvc, slot_deployments(kube, isvc), settings().worker_image)
    children = [*plan.deployments, render_service(isvc), render_pdb(isvc)]
    stale: list[str] = []
    if gateway is not None:
        routed, stale = split_children(isvc, gateway, pods or [])
        children += routed
    children = [stamp(c) for c in children]  # a restarted operator applies nothing that is live already
    existing = [kube.get(child["kind"], ns, child["metadata"]["name"]) for child in children]
    for found in existing:
        if (taken := name_taken(isvc, found)) is not None:
            return taken
    for child, before in zip(children, existing, strict=True):
        cname = child["metadata"]["name"]
        if before is None and child["kind"] == "Deployment":
            created.add(cname)
        try:
            after = kube.apply(child)
        except ApiException as e:
            if e.status == 404 and child["kind"] == "HTTPRoute":
                HTTPROUTES.forget()  # the CRD went away: asked again on the next reconcile
                continue
            if e.status not in (400, 422):
                raise
            why = Reason.INVALID_POD_TEMPLATE if child["kind"] == "Deployment" else Reason.CHILD_REFUSED
            return Problem(why, f"{child['kind']} {ns}/{cname} refused: {_api_message(e)}"[:1000])
        if before is None:
            kube.event(fresh, Reason.CREATED, f"created {child['kind']} {ns}/{cname}")
        elif before.get("spec") != after.get("spec") or before["metadata"].get("labels") != after["metadata"].get("labels"):
            kube.event(fresh, Reason.UPDATED, f"brought {child['kind']} {ns}/{cname} to the desired state")
    for name in stale:
        svc = kube.get_managed("Service", ns, name)
        if svc is not None and controlled_by(svc, isvc):
            kube.delete("Service", ns, name, uid=svc["metadata"]["uid"])
            kube.event(fresh, Reason.DELETED, f"deleted Service {ns}/{name} (no canary runs)")
    ensure_replicas(kube, isvc, plan, created)
    return None


def _api_message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message") or e.reason)
    except ValueError:
        return str(e.body or e.reason)


def ensure_replicas(kube: Kube, isvc: InferenceService, plan: SlotPlan, created: set[str]) -> None:
    """A new stable Deployment starts at minReplicas, a new canary one at zero (the autoscaler sizes both
    slots from the total and the step's share); afterwards replicas are the autoscaler's, and this
    reconciler only keeps the stable slot inside [minReplicas, maxReplicas] while no canary runs (as the
    autoscaler's field manager), lowered to the tenant arbiter's grant when there is one."""
    if plan.canary is not None:
        canary = slot_name(isvc.name, plan.canary)
        if canary in created:
            kube.scale(isvc.namespace, canary, 0)
        return  # both slots' replicas follow the rollout's split: the autoscaler's alone
    name = slot_name(isvc.name, plan.stable)
    dep = kube.get("Deployment", isvc.namespace, name)
    if dep is None:
        return
    current = int(dep["spec"].get("replicas", 1))  # the apiserver defaults a Deployment's replicas to 1
    lo, hi = isvc.spec.scaling.min_replicas, isvc.spec.scaling.max_replicas
    quota = isvc.status.quota
    new = name in created
    if not new and pause_of(isvc.metadata.get("annotations")) is not None:
        return  # paused: the autoscaler holds the replicas where the annotation says
    want = bounded_replicas(current, new, lo, hi, quota.granted_replicas if quota is not None else None)
    if want != current or new:
        kube.scale(isvc.namespace, name, want)
    if want != current:
        kube.event(dict(isvc.model_dump(by_alias=True)), Reason.SCALED, f"replicas {current} -> {want} (bounds [{lo}, {hi}])")


def bounded_replicas(current: int, new: bool, lo: int, hi: int, granted: int | None) -> int:
    """The stable slot's replicas after a spec change: a new Deployment starts at minReplicas, an existing
    one is brought inside [minReplicas, maxReplicas]. The tenant arbiter's grant (as ``status.quota`` last
    recorded it) only keeps the raise to minReplicas from going past it; it never lowers: that grant may be
    older than the replicas the autoscaler has just written on a fresher one (a minReplicas raise granted
    this pass, recorded on the next), and a shrunk grant is the autoscaler's to apply, every pass."""
    floor = lo if granted is None else min(lo, granted)
    return floor if new else min(max(current, floor), hi)


def reconcile(kube: Kube, body: dict[str, Any], now: datetime) -> InferenceServiceStatus | None:
    md = body["metadata"]
    ns, name = md["namespace"], md["name"]
    with object_lock(f"{ns}/{name}"):
        fresh = kube.get("InferenceService", ns, name)  # act on the newest version, not the event's
        if fresh is None or fresh["metadata"].get("deletionTimestamp"):
            return None
        try:
            isvc = InferenceService.model_validate(fresh)
        except ValidationError as e:
            msg = validation_message(e)
            old = InferenceServiceStatus.model_validate(fresh.get("status") or {})
            gen = int(md.get("generation", 0))
            conds = set_condition(old.conditions, ConditionType.READY, False, Reason.INVALID_SPEC, msg[:1000], gen, now)
            kube.patch_status("InferenceService", ns, name, {"conditions": [c.model_dump(by_alias=True, mode="json") for c in conds]})
            kube.event(fresh, Reason.INVALID_SPEC, msg, "Warning")
            return None
        gateway = gateway_of(kube)
        split = TrafficSplit.GATEWAY_WEIGHTS if gateway is not None else TrafficSplit.REPLICA_SHARE
        pods = kube.list("Pod", ns, f"{LABEL_ISVC}={name}")
        problem = check_repository(kube, isvc) or apply_children(kube, isvc, fresh, gateway, pods)
        if problem is not None:
            prev = isvc.status.conditions
            if not any(c.type == ConditionType.READY and c.reason == problem.reason for c in prev):
                kube.event(fresh, problem.reason, problem.message, "Warning")
        # someone else's Deployment of a slot's name says nothing about this service
        dep = combined(slot_deployments(kube, isvc))
        result: list[InferenceServiceStatus] = []

        def build(latest: dict[str, Any]) -> dict[str, Any] | None:
            # write only the fields this reconciler owns (warm-up and the autoscaler write their own),
            # computed on the newest object so that conditions set by others survive
            try:
                current = InferenceService.model_validate(latest)
            except ValidationError:
                return None
            status = observe(current, dep, pods, now, problem).model_copy(update={"traffic_split": split})
            result.append(status)
            new = status.model_dump(by_alias=True, exclude_none=True, include=RECONCILER_FIELDS)
            old = latest.get("status") or {}
            return new if any(old.get(k) != v for k, v in new.items()) else None

        kube.update_status("InferenceService", ns, name, build)
        status = result[-1] if result else observe(isvc, dep, pods, now, problem).model_copy(update={"traffic_split": split})
        # a problem (repository missing, ...) is reported in status, not raised: no crash loop; the
        # resync timer and the next change retry at their own pace
        return status


# ------------------------------------------------------------------ kopf wiring

@kopf.on.resume(*ISVC)
@kopf.on.create(*ISVC)
@kopf.on.update(*ISVC, field="spec")
def on_isvc(body: kopf.Body, **_: Any) -> None:
    HEARTBEAT.event(time.monotonic())  # kopf's InferenceService watch delivered this object: it is not stalled
    reconcile(kube(), dict(body), utcnow())


def forget(namespace: str, name: str) -> None:
    """The service is gone: nothing keyed by it stays (its lock, its metric label sets)."""
    forget_lock(f"{namespace}/{name}")
    telemetry.forget(namespace, name)


def _mark_owner(key: tuple[str, str]) -> None:
    coalesce.mark(key, lambda: reconcile_owner(kube(), *key))


SPLITS = SplitWatch(_mark_owner)  # with a gateway: a new split in status.rollout reconciles the route at once


@kopf.on.event(*ISVC)
async def on_isvc_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    # On the event loop, not kopf's thread pool: behind a startup's backlog of sync handlers (a thousand services
    # resumed) the echo would come minutes late and the liveness check would restart a healthy operator.
    HEARTBEAT.event(time.monotonic())  # the watch delivers: the liveness check's echo of the loop's writes
    if settings().gateway:
        SPLITS(str(event.get("type")), body)
    if event.get("type") == "DELETED":
        forget(body["metadata"]["namespace"], body["metadata"]["name"])


def reconcile_owner(client: Kube, ns: str, owner: str) -> None:
    try:
        isvc = client.get("InferenceService", ns, owner)
    except ApiException:
        return
    if isvc is not None:
        reconcile(client, isvc, utcnow())


def _owner_changed(body: kopf.Body) -> None:
    labels = body.get("metadata", {}).get("labels") or {}
    owner = labels.get(LABEL_ISVC)
    if not owner:
        return
    ns = body["metadata"]["namespace"]
    # a burst of child events is one reconcile (controllers.coalesce, on the cached client)
    coalesce.mark((ns, owner), lambda: reconcile_owner(kube(), ns, owner))


class FetchWatch:
    """Pod events of the pod cache -> a coalesced reconcile of the owner when a replica's storage-init
    container ends, fails or cannot start (``render.storage.fetch_signature`` changed): the digest or the
    ModelFetchFailed reason reaches the status at once, not at the 30 s resync. Other pod changes (readiness,
    the warm gate) mark nothing: the Deployment's events already follow the replicas."""

    def __init__(self, mark: Callable[[tuple[str, str]], None]) -> None:
        self.mark = mark
        self._seen: dict[str, tuple[Any, ...]] = {}
        self._lock = threading.Lock()

    def __call__(self, kind: str, pod: dict[str, Any]) -> None:
        md = pod.get("metadata") or {}
        owner = (md.get("labels") or {}).get(LABEL_ISVC)
        uid = str(md.get("uid") or md.get("name") or "")
        if not owner:
            return
        with self._lock:
            if kind == "DELETED":
                self._seen.pop(uid, None)
                return
            sig = fetch_signature(pod)
            if sig is None or self._seen.get(uid) == sig:
                return
            self._seen[uid] = sig
        self.mark((str(md.get("namespace") or ""), str(owner)))


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": "foresail", LABEL_ISVC: kopf.PRESENT})
@kopf.on.event("", "v1", "services", labels={"app.kubernetes.io/managed-by": "foresail", LABEL_ISVC: kopf.PRESENT})
@kopf.on.event(
    "policy", "v1", "poddisruptionbudgets", labels={"app.kubernetes.io/managed-by": "foresail", LABEL_ISVC: kopf.PRESENT}
)
def on_child(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    if event.get("type") in ("MODIFIED", "DELETED"):
        _owner_changed(body)
