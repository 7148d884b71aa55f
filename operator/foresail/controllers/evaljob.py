"""EvalJob reconciler: spec -> worker RBAC + progress ConfigMap + results PVC + Indexed Job (and
dedicated eval replicas) -> status from the Job and the workers' progress reports.

Level-triggered: it runs on create/update/resume, every few seconds while the job is not finished
(live progress), and when its Job changes. Problems become conditions with reasons and Events, never
exceptions: a missing target, dataset or outputs PVC waits (Admitted=False) and is retried; a dataset
whose sha256 differs from the spec fails the job; editing a finished job changes nothing and says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from foresail.api.conditions import find_condition, set_condition
from foresail.api.evaljob import EvalJob, EvalJobStatus, EvalMode, spec_hash
from foresail.api.inferenceservice import InferenceService
from foresail.api.meta import validation_message
from foresail.api.objects import condition
from foresail.api.reasons import ConditionType, Problem, Reason
from foresail.api.repository import pvc_ref
from foresail.clients.kube import ApiException, Kube, api_message
from foresail.controllers.evaljob_baseline import baseline_pending, reconcile_baseline
from foresail.controllers.handlers import kube, object_lock, settings, utcnow
from foresail.render.evaljob import (
    LABEL_EVALJOB,
    EvalPlan,
    Names,
    eval_plan,
    progress_names,
    render_eval_isvc,
    render_job,
    render_progress,
    render_results_pvc,
    render_target_service,
    render_worker_rbac,
)
from foresail.render.evaljob_status import finished, observe_evaljob, parse_reports, run_id
from foresail.render.meta import controlled_by, name_taken

__all__ = ["EVALJOB", "FINISHED_RESYNC_S", "finished_job", "in_progress", "reconcile_evaljob"]

EVALJOB = ("foresail.dev", "v1alpha1", "evaljobs")
FINISHED_RESYNC_S = 60.0  # finished jobs are resynced too (their cleanup is level-triggered), less often


def _dataset(kube: Kube, ej: EvalJob) -> tuple[str, int, Problem | None]:
    """(sha256, items) of a ConfigMap dataset, checked against the spec; ("", 0) for a PVC (the workers
    hash it and fail the job on a mismatch)."""
    ds = ej.spec.dataset
    ns = ej.namespace
    if ds.pvc is not None:
        if kube.get("PersistentVolumeClaim", ns, ds.pvc.claim_name) is None:
            return (
                "",
                0,
                Problem(Reason.DATASET_NOT_FOUND, f"PersistentVolumeClaim {ns}/{ds.pvc.claim_name} (spec.dataset.pvc) not found"),
            )
        return ds.sha256 or "", 0, None
    assert ds.config_map is not None
    cm = kube.get("ConfigMap", ns, ds.config_map.name)
    if cm is None:
        return "", 0, Problem(Reason.DATASET_NOT_FOUND, f"ConfigMap {ns}/{ds.config_map.name} (spec.dataset.configMap) not found")
    key = ds.config_map.key
    if key in (cm.get("data") or {}):
        data = cm["data"][key].encode()
    elif key in (cm.get("binaryData") or {}):
        import base64

        data = base64.b64decode(cm["binaryData"][key])
    else:
        return (
            "",
            0,
            Problem(Reason.DATASET_NOT_FOUND, f"ConfigMap {ns}/{ds.config_map.name} has no key {key!r} (spec.dataset.configMap.key)"),
        )
    sha = hashlib.sha256(data).hexdigest()
    if ds.sha256 and ds.sha256 != sha:
        return (
            sha,
            0,
            Problem(Reason.DATASET_HASH_MISMATCH, f"spec.dataset.sha256 is {ds.sha256} but the dataset's is {sha}", terminal=True),
        )
    return sha, sum(1 for line in data.splitlines() if line.strip()), None


PENDING_DIGEST = "pending:"  # a storageUri or pvc whose content digest no replica has reported yet


def _repository_digest(kube: Kube, isvc: InferenceService) -> str:
    """sha256 of what the model repository is made of: a ConfigMap's data, or for a storageUri or a pvc the
    content digest its newest replica's init container reported (``status.model``; ``pending:<uri>`` or
    ``pending:pvc:<claim>[/<subPath>]`` until one did)."""
    repo = isvc.spec.model.repository
    reported = isvc.status.model
    if reported is not None and reported.describes(repo) and reported.digest:
        return reported.digest
    if repo.storage_uri is not None:
        return PENDING_DIGEST + repo.storage_uri
    if repo.pvc is not None:
        return PENDING_DIGEST + "pvc:" + pvc_ref(repo.pvc)
    h = hashlib.sha256()
    assert repo.config_map is not None  # the API admits exactly one of pvc, configMap and storageUri
    cm = kube.get("ConfigMap", isvc.namespace, repo.config_map.name) or {}
    for k, v in sorted((cm.get("data") or {}).items()):
        h.update(k.encode() + b"\0" + v.encode() + b"\0")
    return "sha256:" + h.hexdigest()


def _evaluated(kube: Kube, ej: EvalJob, isvc: InferenceService, eval_isvc: str) -> InferenceService:
    """The service whose replicas the workers evaluate, for its repository digest: the target in shared mode;
    in dedicated mode the job's own InferenceService, whose replicas fetched the model themselves (a bucket
    changed since the target's fetch is what they serve), with no digest until it reported one."""
    if ej.spec.mode != EvalMode.DEDICATED:
        return isvc
    body = kube.get("InferenceService", ej.namespace, eval_isvc)
    if body is not None and controlled_by(body, ej):
        try:
            return InferenceService.model_validate(body)
        except ValidationError:
            pass
    return isvc.model_copy(update={"status": isvc.status.model_copy(update={"model": None})})


def reconcile_evaljob(kube: Kube, body: dict[str, Any], now: datetime) -> None:
    md = body["metadata"]
    ns, name = md["namespace"], md["name"]
    with object_lock(f"{ns}/{name}"):
        fresh = kube.get("EvalJob", ns, name)
        if fresh is None or fresh["metadata"].get("deletionTimestamp"):
            return
        _reconcile(kube, fresh, now)


@dataclass(frozen=True)
class _Admission:
    """What admitting a job found: its target, dataset and outputs, or the problem with them."""

    isvc: InferenceService | None = None
    sha: str = ""  # the dataset's sha256 (ConfigMap datasets; workers hash PVC datasets)
    total: int = 0  # items in the dataset, when known here
    results_claim: str = ""
    problem: Problem | None = None


def _admit(kube: Kube, ej: EvalJob) -> _Admission:
    ns, target = ej.namespace, ej.spec.target.inference_service
    body = kube.get("InferenceService", ns, target)
    if body is None:
        return _Admission(problem=Problem(Reason.TARGET_NOT_FOUND, f"InferenceService {ns}/{target} (spec.target.inferenceService) not found"))
    try:
        isvc = InferenceService.model_validate(body)
    except ValidationError:
        return _Admission(problem=Problem(Reason.TARGET_INVALID, f"InferenceService {ns}/{target} has an invalid spec"))
    sha, total, problem = _dataset(kube, ej)
    if problem is not None:
        return _Admission(isvc, sha, total, problem=problem)
    claim = Names.of(ej.name).results_pvc
    if ej.spec.outputs.pvc is not None:
        claim = ej.spec.outputs.pvc.claim_name
        if kube.get("PersistentVolumeClaim", ns, claim) is None:
            return _Admission(isvc, sha, total, claim, Problem(Reason.OUTPUTS_NOT_FOUND, f"PersistentVolumeClaim {ns}/{claim} (spec.outputs.pvc) not found"))
    return _Admission(isvc, sha, total, claim)


def _apply_children(kube: Kube, ej: EvalJob, isvc: InferenceService, job: dict[str, Any] | None, h: str) -> Problem | None:
    """Worker RBAC, progress ConfigMap, results PVC and dedicated replicas, when the job starts or its spec
    changes (not on every progress tick); a child admission refuses is a problem, not an exception."""
    settled = (
        job is not None
        and (job["metadata"].get("annotations") or {}).get("foresail.dev/spec-hash") == h
        and ej.status.observed_generation == ej.generation
    )
    if settled:
        return None
    n = Names.of(ej.name)
    children: list[dict[str, Any]] = [*render_worker_rbac(ej), *render_progress(ej)]
    if ej.spec.outputs.pvc is None:
        results = kube.get("PersistentVolumeClaim", ej.namespace, n.results_pvc)
        if (taken := name_taken(ej, results)) is not None:
            return taken  # never write results into someone else's volume
        if results is None:
            children.append(render_results_pvc(ej))
    if ej.spec.mode == EvalMode.DEDICATED:
        children.append(render_eval_isvc(ej, isvc))
    elif ej.spec.target.revision is not None:
        children.append(render_target_service(ej))
    # server-side apply would adopt and overwrite whatever holds a child's name (a RoleBinding, a production
    # InferenceService named <job>-eval): an object the job does not control is left alone and reported
    for child in children:
        if (taken := name_taken(ej, kube.get(child["kind"], ej.namespace, child["metadata"]["name"]))) is not None:
            return taken
    for child in children:
        try:
            kube.apply(child)
        except ApiException as e:
            if e.status in (403, 422):  # e.g. the tenant admission policy refuses the eval replicas
                return Problem(Reason.CHILD_REJECTED, f"{child['kind']} {ej.namespace}/{child['metadata']['name']}: {api_message(e)}")
            raise
    return None


def _reconcile(kube: Kube, fresh: dict[str, Any], now: datetime) -> None:
    md = fresh["metadata"]
    ns, name = md["namespace"], md["name"]
    try:
        ej = EvalJob.model_validate(fresh)
    except ValidationError as e:
        _invalid(kube, fresh, validation_message(e), now)
        return
    if finished(ej.status):
        _finished(kube, ej, fresh, now)
        return
    n = Names.of(name)
    adm = _admit(kube, ej)
    problem = adm.problem
    job = kube.get("Job", ns, n.job)
    if problem is None and (taken := name_taken(ej, job)) is not None:
        problem = taken
    if not controlled_by(job, ej):
        job = None  # another's Job of that name is neither observed, suspended nor deleted
    h = spec_hash(ej.spec)
    results_dir = f"{ej.spec.outputs.pvc.path if ej.spec.outputs.pvc else 'results'}/{name}-{h[:12]}"
    suspend_reason: Reason | None = None
    if problem is None:
        assert adm.isvc is not None
        problem = _apply_children(kube, ej, adm.isvc, job, h)
    if problem is None:
        assert adm.isvc is not None
        if ej.spec.suspend:
            suspend_reason = Reason.USER_SUSPENDED
        elif ej.spec.mode == EvalMode.DEDICATED:
            suspend_reason = _dedicated_state(kube, ej, n.eval_isvc)
        s = settings()
        plan = eval_plan(ej, adm.isvc, adm.results_claim, results_dir, h, suspend_reason is not None, s.worker_image, s.prometheus_url)
        job = _ensure_job(kube, ej, fresh, plan, job)
        pending = ej.status.provenance.repository_digest.startswith(PENDING_DIGEST)
        evaluated = _evaluated(kube, ej, adm.isvc, n.eval_isvc)
        if ej.status.provenance.spec_hash != h or (pending and not _repository_digest(kube, evaluated).startswith(PENDING_DIGEST)):
            _provenance(kube, ej, evaluated, plan, adm.sha)
    else:
        prev = find_condition(ej.status.conditions, ConditionType.FAILED if problem.terminal else ConditionType.ADMITTED)
        if prev is None or prev.reason != problem.reason:  # once per new problem, not every few seconds
            kube.event(fresh, problem.reason, problem.message, "Warning")
    # read after the Job: a Job seen complete means every shard's final report is in (evaljob_status)
    reports = parse_reports(*((kube.get("ConfigMap", ns, cm) or {}).get("data") for cm in progress_names(ej)))
    location = f"pvc:{adm.results_claim or n.results_pvc}/{results_dir}"

    def build(latest: dict[str, Any]) -> dict[str, Any] | None:
        try:
            cur = EvalJob.model_validate(latest)
        except ValidationError:
            return None
        st = observe_evaljob(cur, job, reports, adm.total, location, problem, suspend_reason, now, now.timestamp(), run_id(h))
        new = st.model_dump(by_alias=True, exclude_none=True, exclude={"provenance"})
        old = latest.get("status") or {}
        return new if any(old.get(k) != v for k, v in new.items()) else None

    kube.update_status("EvalJob", ns, name, build)
    if _announce_finish(kube, ej):
        _cleanup(kube, ej)  # a job that cannot succeed stops its workers; the eval replicas go
    if ej.spec.baseline is not None and (after := kube.get("EvalJob", ns, name)) is not None:
        reconcile_baseline(kube, after, now)


def _invalid(kube: Kube, fresh: dict[str, Any], msg: str, now: datetime) -> None:
    md = fresh["metadata"]
    old = EvalJobStatus.model_validate(fresh.get("status") or {})
    gen = int(md.get("generation", 0))
    conds = set_condition(old.conditions, ConditionType.ADMITTED, False, Reason.INVALID_SPEC, msg[:1000], gen, now)
    kube.patch_status(
        "EvalJob", md["namespace"], md["name"], {"conditions": [c.model_dump(by_alias=True, mode="json") for c in conds], "phase": "Pending"}
    )
    kube.event(fresh, Reason.INVALID_SPEC, msg, "Warning")


def _announce_finish(kube: Kube, ej: EvalJob) -> bool:
    """The Event of a job that has just finished (edge-triggered: once; the cleanup is not, see ``_cleanup``);
    whether the job is finished now."""
    after = kube.get("EvalJob", ej.namespace, ej.name)
    if after is None or not finished(st := EvalJobStatus.model_validate(after.get("status") or {})):
        return False
    if finished(ej.status):
        return True
    verb = Reason.SUCCEEDED if st.phase == "Succeeded" else Reason.FAILED
    score = f", score {st.results.score:.4f}" if st.results.score is not None else ""
    kube.event(after, verb, f"{st.progress.done}/{st.progress.total} items{score}", "Normal" if verb == Reason.SUCCEEDED else "Warning")
    return True


def _cleanup(kube: Kube, ej: EvalJob) -> None:
    """What must not outlive a finished job, removed on every reconcile of one (level-triggered: an operator
    killed between the status write and these deletes, or a delete that failed, is repaired by the next
    resume or resync): the dedicated eval replicas (their GPUs), and a Job still running for a job the
    operator failed (its workers). Deleted only when this job controls them, with the UID read as a
    precondition (an object recreated under the name meanwhile is not deleted); whatever is already gone
    costs one read. The progress ConfigMap and the results stay (status and the user's results)."""
    ns, n = ej.namespace, Names.of(ej.name)
    # regardless of spec.mode: a finished job's spec may have been edited since (edits are ignored)
    replicas = kube.get("InferenceService", ns, n.eval_isvc)
    if controlled_by(replicas, ej):
        assert replicas is not None
        kube.delete("InferenceService", ns, n.eval_isvc, replicas["metadata"]["uid"])
    job = kube.get("Job", ns, n.job)
    if controlled_by(job, ej) and not _job_finished(job):
        assert job is not None
        kube.delete("Job", ns, n.job, job["metadata"]["uid"])


def _job_finished(job: dict[str, Any] | None) -> bool:
    return any((c := condition(job, t)) is not None and c.get("status") == "True" for t in ("Complete", "Failed"))


def _dedicated_state(kube: Kube, ej: EvalJob, eval_isvc: str) -> Reason | None:
    """Suspend the workers while the eval replicas are not there (not yet warm, or taken back; another's
    InferenceService of that name is not them)."""
    obj = kube.get("InferenceService", ej.namespace, eval_isvc)
    if not controlled_by(obj, ej):
        obj = None
    st = (obj or {}).get("status") or {}
    quota = st.get("quota") or {}
    if quota and int(quota.get("grantedReplicas", 1)) == 0 and int(quota.get("requestedReplicas", 0)) > 0:
        return Reason.PREEMPTED
    if int(st.get("readyReplicas", 0) or 0) == 0:
        return Reason.WAITING_FOR_EVAL_REPLICAS
    return None


def _ensure_job(
    kube: Kube, ej: EvalJob, fresh: dict[str, Any], plan: EvalPlan, job: dict[str, Any] | None
) -> dict[str, Any] | None:
    ns, n = ej.namespace, Names.of(ej.name)
    if job is not None and (job["metadata"].get("annotations") or {}).get("foresail.dev/spec-hash") != plan.spec_hash:
        # a changed spec is a new run (its results go to a new directory); the old Job goes
        kube.delete("Job", ns, n.job, job["metadata"].get("uid"))
        kube.event(fresh, Reason.SPEC_CHANGED, "the spec changed: restarting the evaluation with the new spec")
        return None
    if job is None:
        created = kube.apply(render_job(ej, plan))
        kube.event(fresh, Reason.CREATED, f"created Job {ns}/{n.job}: {ej.spec.shards} shards, parallelism {ej.spec.parallelism}")
        return created
    if bool(job["spec"].get("suspend")) != plan.suspend:
        job = kube.merge_patch("Job", ns, n.job, {"spec": {"suspend": plan.suspend}})
        kube.event(
            fresh,
            Reason.SUSPENDED if plan.suspend else Reason.RESUMED,
            "workers stopped; progress is kept" if plan.suspend else "workers resume where they left off",
        )
    return job


def _provenance(kube: Kube, ej: EvalJob, isvc: InferenceService, plan: EvalPlan, sha: str) -> None:
    prov = {
        "model": plan.model,
        "version": plan.version,
        "repositoryDigest": _repository_digest(kube, isvc),
        "datasetSha256": sha or plan.dataset_sha256,
        "seed": ej.spec.seed,
        "workerImage": plan.image,
        "specHash": plan.spec_hash,
    }
    kube.patch_status("EvalJob", ej.namespace, ej.name, {"provenance": prov})


def _finished(kube: Kube, ej: EvalJob, fresh: dict[str, Any], now: datetime) -> None:
    """A finished job never runs again: what must go at its end goes (every time, ``_cleanup``); a later spec
    edit is reported, once per generation; the comparison with spec.baseline goes on (it is not the run)."""
    _cleanup(kube, ej)
    if ej.spec.baseline is not None:
        reconcile_baseline(kube, fresh, now)
    gen = ej.generation
    if ej.status.observed_generation >= gen:
        return
    if ej.status.provenance.spec_hash and spec_hash(ej.spec) == ej.status.provenance.spec_hash:
        # the run is the same (only spec.baseline or suspend changed): nothing is ignored
        kube.patch_status("EvalJob", ej.namespace, ej.name, {"observedGeneration": gen})
        return
    msg = "the job has finished: spec changes are ignored; create a new EvalJob to evaluate again"
    conds = set_condition(ej.status.conditions, ConditionType.SPEC_IGNORED, True, Reason.JOB_FINISHED, msg, gen, now)
    kube.patch_status(
        "EvalJob",
        ej.namespace,
        ej.name,
        {"observedGeneration": gen, "conditions": [c.model_dump(by_alias=True, mode="json") for c in conds]},
    )
    kube.event(fresh, Reason.SPEC_IGNORED, msg, "Warning")


# ------------------------------------------------------------------ kopf wiring

@kopf.on.resume(*EVALJOB)
@kopf.on.create(*EVALJOB)
@kopf.on.update(*EVALJOB, field="spec")
def on_evaljob(body: kopf.Body, **_: Any) -> None:
    reconcile_evaljob(kube(), dict(body), utcnow())


def in_progress(body: dict[str, Any]) -> bool:
    """A job the 3 s resync reconciles: not finished, or changed since, or its comparison with its baseline still to
    come (one loop, not a per-object timer, so no finalizer blocks deletion)."""
    status = EvalJobStatus.model_validate(body.get("status") or {})
    done = finished(status) and status.observed_generation >= int(body["metadata"].get("generation", 0))
    return not done or baseline_pending(body)


def finished_job(body: dict[str, Any]) -> bool:
    """A job the slow resync reconciles (``FINISHED_RESYNC_S``): finished, for its level-triggered cleanup."""
    return not in_progress(body)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_EVALJOB: kopf.PRESENT})
def on_eval_job_change(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    if event.get("type") not in ("MODIFIED", "DELETED"):
        return
    owner = (body.get("metadata", {}).get("labels") or {}).get(LABEL_EVALJOB)
    try:
        ej = kube().get("EvalJob", body["metadata"]["namespace"], str(owner))
    except ApiException:
        return
    if ej is not None:
        reconcile_evaljob(kube(), ej, utcnow())
