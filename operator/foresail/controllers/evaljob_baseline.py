"""An EvalJob's ``spec.baseline``: the Regressed condition and ``status.baseline`` (the thin IO around
``render.evaljob_baseline``).

On every reconcile of a job with a baseline: read the baseline (EvalJob or PVC), and once both jobs have
succeeded, the compare pod's report in the progress ConfigMap; without a report of this comparison, create
(or replace) the compare Job. Bad input (a baseline naming itself, missing, of another dataset or scorer) is the
condition's reason, never an exception. An Event when the job becomes Regressed, and when the baseline cannot be
used.
"""

from __future__ import annotations

from typing import Any

from foresail.api.conditions import ConditionStatus, find_condition, set_condition
from foresail.api.evaljob import EvalJob, EvalJobStatus
from foresail.api.reasons import ConditionType, Reason
from foresail.clients.kube import ApiException, Kube, api_message
from foresail.controllers.handlers import settings
from foresail.render.evaljob import Names
from foresail.render.evaljob_baseline import (
    COMPARE_KEY,
    PENDING,
    Baseline,
    Outcome,
    compare_id,
    compare_name,
    outcome,
    parse_location,
    render_compare_job,
    resolve_baseline,
)
from foresail.render.evaljob_status import finished
from foresail.render.meta import controlled_by

__all__ = ["baseline_pending", "reconcile_baseline"]

_WARN = (Reason.BASELINE_NOT_FOUND, Reason.BASELINE_INVALID, Reason.COMPARE_FAILED)


def baseline_pending(body: dict[str, Any]) -> bool:
    """A finished job whose comparison is still to come (resynced every few seconds, like a running job)."""
    if not (body.get("spec") or {}).get("baseline"):
        return False
    status = EvalJobStatus.model_validate(body.get("status") or {})
    if status.phase != "Succeeded":
        return False
    c = find_condition(status.conditions, ConditionType.REGRESSED)
    return c is None or c.reason in PENDING


def _resolve(kube: Kube, ej: EvalJob) -> Baseline:
    spec = ej.spec.baseline
    assert spec is not None
    ns = ej.namespace
    body = kube.get("EvalJob", ns, spec.eval_job) if spec.eval_job and spec.eval_job != ej.name else None
    claim = spec.pvc is not None and kube.get("PersistentVolumeClaim", ns, spec.pvc.claim_name) is not None
    return resolve_baseline(ej, body, claim)


def _compare(kube: Kube, ej: EvalJob, base: Baseline) -> Outcome:
    """This job has succeeded and the baseline is usable: the compare pod's report, or the Job that makes it."""
    spec = ej.spec.baseline
    assert spec is not None
    ns, location = ej.namespace, ej.status.results.location
    if parse_location(location) is None:
        return Outcome(ConditionStatus.UNKNOWN, Reason.COMPARE_FAILED, f"this job shows no results location ({location!r})")
    cid = compare_id(base, location, spec.alpha)
    progress = kube.get("ConfigMap", ns, Names.of(ej.name).progress) or {}
    done = outcome((progress.get("data") or {}).get(COMPARE_KEY), cid, base, location)
    if done is not None:
        return done
    name = compare_name(ej.name)
    job = kube.get("Job", ns, name)
    if job is not None and not controlled_by(job, ej):
        return Outcome(ConditionStatus.UNKNOWN, Reason.COMPARE_FAILED, f"Job {ns}/{name} exists and is not this job's: left alone")
    if job is not None and (job["metadata"].get("annotations") or {}).get("foresail.dev/compare-id") != cid:
        kube.delete("Job", ns, name, job["metadata"]["uid"])  # an earlier comparison (another baseline or alpha)
        return Outcome(ConditionStatus.UNKNOWN, Reason.COMPARING, "replacing the compare Job of an earlier baseline")
    if job is not None:
        failed = any(c.get("type") == "Failed" and c.get("status") == "True" for c in (job.get("status") or {}).get("conditions") or [])
        if failed:
            return Outcome(ConditionStatus.UNKNOWN, Reason.COMPARE_FAILED, f"Job {ns}/{name} failed without a report: see its pods' logs")
        return Outcome(ConditionStatus.UNKNOWN, Reason.COMPARING, f"comparing with {base.location} (Job {ns}/{name})")
    image = ej.spec.worker.image or settings().worker_image
    try:
        kube.apply(render_compare_job(ej, image, location, base, cid, spec.alpha))
    except ApiException as e:
        if e.status in (403, 422):
            return Outcome(ConditionStatus.UNKNOWN, Reason.COMPARE_FAILED, f"Job {ns}/{name}: {api_message(e)}")
        raise
    return Outcome(ConditionStatus.UNKNOWN, Reason.COMPARING, f"comparing with {base.location} (Job {ns}/{name} created)")


def reconcile_baseline(kube: Kube, body: dict[str, Any], now: Any) -> None:
    """Set the Regressed condition and ``status.baseline`` of the job ``body`` (freshly read) from its baseline."""
    ej = EvalJob.model_validate(body)
    spec = ej.spec.baseline
    if spec is None:
        return
    base = _resolve(kube, ej)
    st = ej.status
    if base.problem is not None:
        out = Outcome(ConditionStatus.UNKNOWN, base.problem[0], base.problem[1])
    elif st.phase != "Succeeded":
        why = "this job did not succeed: nothing to compare" if finished(st) else "comparing when this job has succeeded"
        out = Outcome(ConditionStatus.UNKNOWN, Reason.AWAITING_RESULTS, why)
    else:
        out = _compare(kube, ej, base)
    prev = find_condition(st.conditions, ConditionType.REGRESSED)
    conds = set_condition(st.conditions, ConditionType.REGRESSED, out.status, out.reason, out.message, ej.generation, now)
    patch: dict[str, Any] = {"conditions": [c.model_dump(by_alias=True, mode="json") for c in conds]}
    if out.baseline is not None:
        patch["baseline"] = out.baseline.model_dump(by_alias=True, mode="json", exclude_none=True)
    unchanged = prev is not None and (prev.status, prev.reason, prev.message) == (out.status, out.reason, out.message)
    if unchanged and (out.baseline is None or out.baseline == st.baseline):
        return
    kube.patch_status("EvalJob", ej.namespace, ej.name, patch)
    if out.status == ConditionStatus.TRUE and (prev is None or prev.status != ConditionStatus.TRUE):
        kube.event(body, Reason.REGRESSED, out.message, "Warning")
    elif out.reason in _WARN and (prev is None or prev.reason != out.reason):
        kube.event(body, out.reason, out.message, "Warning")
    elif out.reason == Reason.NO_REGRESSION and (prev is None or prev.reason != out.reason):
        kube.event(body, out.reason, out.message)
