"""An EvalJob's comparison with its ``spec.baseline`` (pure): which results it is compared with, the compare Job
that does it, and the status and ``Regressed`` condition from its report.

The operator never mounts a volume, so the comparison runs in a pod: once this job has succeeded and the
baseline job has too, the operator creates a Job ``<job>-compare`` (one pod, the workers' image, ServiceAccount
and security) mounting this job's results volume and, read-only, the baseline's. The pod
(``foresail eval-compare``, ``controllers.evalcompare``) reads both ``results.jsonl``, runs
``evaluation.compare``, writes every flipped item to ``flipped.jsonl`` and the summary to ``compare.json`` in
this job's results directory, and reports the summary into this job's progress ConfigMap under the key
``compare`` (the only object its Role lets it write). Each comparison has an id (the baseline's results and
run, this job's results, alpha): a report or Job of another id counts for nothing and the Job is replaced.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from foresail.api.conditions import ConditionStatus
from foresail.api.evaljob import BaselineStatus, EvalJob, EvalJobStatus
from foresail.api.reasons import Reason
from foresail.render.evaljob import RESULTS_MOUNT, WORKER_CONFIG_ENV, WORKER_CONTAINER_SECURITY, WORKER_UID, Names, job_labels
from foresail.render.evaljob_status import finished
from foresail.render.meta import child_meta

__all__ = [
    "BASELINE_MOUNT",
    "COMPARE_KEY",
    "FLIPPED_FILE",
    "PENDING",
    "SUMMARY_FILE",
    "Baseline",
    "Outcome",
    "compare_id",
    "compare_name",
    "outcome",
    "parse_location",
    "render_compare_job",
    "resolve_baseline",
]

COMPARE_KEY = "compare"  # the progress ConfigMap's key of the compare pod's report
FLIPPED_FILE = "flipped.jsonl"
SUMMARY_FILE = "compare.json"
BASELINE_MOUNT = "/baseline"
# reasons while the comparison is still to come (the job is resynced every few seconds meanwhile)
PENDING = (Reason.AWAITING_RESULTS, Reason.BASELINE_INCOMPLETE, Reason.COMPARING)


def compare_name(job: str) -> str:
    return f"{job}-compare"


def parse_location(location: str) -> tuple[str, str] | None:
    """``pvc:<claim>/<path>`` -> (claim, path); None for anything else."""
    if not location.startswith("pvc:"):
        return None
    claim, _, path = location[4:].partition("/")
    if not claim or not path or path.startswith("/") or ".." in path.split("/"):
        return None
    return claim, path


@dataclass(frozen=True)
class Baseline:
    """Where the baseline's results are, or why there are none to compare with (yet)."""

    eval_job: str = ""
    location: str = ""  # pvc:<claim>/<path>
    run: str = ""  # the baseline job's spec hash ("" for a directory)
    problem: tuple[Reason, str] | None = None


def resolve_baseline(ej: EvalJob, baseline_body: dict[str, Any] | None, claim_found: bool) -> Baseline:
    """The baseline of ``ej.spec.baseline`` from what the controller read: the named EvalJob (None when absent),
    or whether the named PVC exists."""
    spec = ej.spec.baseline
    assert spec is not None
    ns = ej.namespace
    if spec.pvc is not None:
        where = f"pvc:{spec.pvc.claim_name}/{spec.pvc.path}"
        if not claim_found:
            msg = f"PersistentVolumeClaim {ns}/{spec.pvc.claim_name} (spec.baseline.pvc) not found"
            return Baseline(location=where, problem=(Reason.BASELINE_NOT_FOUND, msg))
        return Baseline(location=where)
    name = spec.eval_job or ""
    if name == ej.name:
        return Baseline(eval_job=name, problem=(Reason.BASELINE_INVALID, "spec.baseline.evalJob names this job itself"))
    if baseline_body is None:
        return Baseline(eval_job=name, problem=(Reason.BASELINE_NOT_FOUND, f"EvalJob {ns}/{name} (spec.baseline.evalJob) not found"))
    try:
        base = EvalJob.model_validate(baseline_body)
    except ValueError:
        return Baseline(eval_job=name, problem=(Reason.BASELINE_INVALID, f"EvalJob {ns}/{name} has an invalid spec"))
    st: EvalJobStatus = base.status
    if base.spec.scorer != ej.spec.scorer:
        return Baseline(
            eval_job=name,
            problem=(Reason.BASELINE_INVALID, f"EvalJob {ns}/{name} scores with another scorer (spec.scorer differs)"),
        )
    if base.spec.dataset != ej.spec.dataset and not (
        st.provenance.dataset_sha256 and st.provenance.dataset_sha256 == ej.status.provenance.dataset_sha256
    ):
        return Baseline(
            eval_job=name, problem=(Reason.BASELINE_INVALID, f"EvalJob {ns}/{name} evaluates another dataset (spec.dataset differs)")
        )
    if not finished(st) or st.phase != "Succeeded":
        state = st.phase or "Pending"
        why = "it will not succeed: create or name another baseline" if finished(st) else "waiting for it to succeed"
        return Baseline(eval_job=name, problem=(Reason.BASELINE_INCOMPLETE, f"EvalJob {ns}/{name} is {state}: {why}"))
    sha = ej.status.provenance.dataset_sha256
    if st.provenance.dataset_sha256 and sha and st.provenance.dataset_sha256 != sha:
        msg = f"EvalJob {ns}/{name} evaluated a dataset of sha256 {st.provenance.dataset_sha256}, this job {sha}"
        return Baseline(eval_job=name, problem=(Reason.BASELINE_INVALID, msg))
    if parse_location(st.results.location) is None:
        msg = f"EvalJob {ns}/{name} shows no results location ({st.results.location!r})"
        return Baseline(eval_job=name, problem=(Reason.BASELINE_INCOMPLETE, msg))
    return Baseline(eval_job=name, location=st.results.location, run=st.provenance.spec_hash)


def compare_id(baseline: Baseline, candidate_location: str, alpha: float) -> str:
    blob = json.dumps([baseline.location, baseline.run, candidate_location, alpha], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def render_compare_job(
    ej: EvalJob, image: str, candidate_location: str, baseline: Baseline, cid: str, alpha: float
) -> dict[str, Any]:
    """The one-pod Job comparing this job's results with the baseline's (both locations already valid)."""
    cand = parse_location(candidate_location)
    base = parse_location(baseline.location)
    assert cand is not None and base is not None
    n = Names.of(ej.name)
    volumes: list[dict[str, Any]] = [{"name": "results", "persistentVolumeClaim": {"claimName": cand[0]}}]
    mounts: list[dict[str, Any]] = [{"name": "results", "mountPath": RESULTS_MOUNT}]
    if base[0] == cand[0]:
        baseline_dir = f"{RESULTS_MOUNT}/{base[1]}"
    else:
        volumes.append({"name": "baseline", "persistentVolumeClaim": {"claimName": base[0], "readOnly": True}})
        mounts.append({"name": "baseline", "mountPath": BASELINE_MOUNT, "readOnly": True})
        baseline_dir = f"{BASELINE_MOUNT}/{base[1]}"
    config = {
        "job": ej.name,
        "namespace": ej.namespace,
        "progressConfigMap": n.progress,
        "key": COMPARE_KEY,
        "id": cid,
        "alpha": alpha,
        "seed": ej.spec.seed,
        "baselineDir": baseline_dir,
        "candidateDir": f"{RESULTS_MOUNT}/{cand[1]}",
    }
    container = {
        "name": "compare",
        "image": image,
        "args": ["eval-compare"],
        "env": [{"name": WORKER_CONFIG_ENV, "value": json.dumps(config, sort_keys=True)}],
        "resources": {"requests": {"cpu": ej.spec.worker.cpu, "memory": ej.spec.worker.memory}, "limits": {"memory": ej.spec.worker.memory}},
        "volumeMounts": mounts,
        "securityContext": copy.deepcopy(WORKER_CONTAINER_SECURITY),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": child_meta(ej, compare_name(ej.name), job_labels(ej), annotations={"foresail.dev/compare-id": cid}),
        "spec": {
            "backoffLimit": 2,
            "template": {
                "metadata": {"labels": job_labels(ej)},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": n.worker,
                    "priorityClassName": f"foresail-{ej.spec.priority.value}",
                    "terminationGracePeriodSeconds": 10,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": WORKER_UID, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


@dataclass(frozen=True)
class Outcome:
    """The Regressed condition and ``status.baseline`` of a comparison report (or of its absence)."""

    status: ConditionStatus
    reason: Reason
    message: str
    baseline: BaselineStatus | None = None


def outcome(report_text: str | None, cid: str, baseline: Baseline, candidate_location: str) -> Outcome | None:
    """The outcome of the compare pod's report, or None while there is no report of this comparison."""
    if not report_text:
        return None
    try:
        r = json.loads(report_text)
    except ValueError:
        return None
    if not isinstance(r, dict) or r.get("id") != cid:
        return None
    if r.get("error"):
        reason = Reason.BASELINE_INCOMPLETE if r.get("missing") == "baseline" else Reason.COMPARE_FAILED
        return Outcome(ConditionStatus.UNKNOWN, reason, str(r["error"])[:1000])
    s = r.get("summary") or {}
    cand = parse_location(candidate_location)
    st = BaselineStatus(
        eval_job=baseline.eval_job,
        location=baseline.location,
        compared=cid,
        paired=int(s.get("paired", 0)),
        unpaired=int(s.get("onlyBaseline", 0)) + int(s.get("onlyCandidate", 0)),
        baseline_score=s.get("baselineScore"),
        candidate_score=s.get("candidateScore"),
        delta=s.get("delta"),
        flipped_worse=int(s.get("flippedWorse", 0)),
        flipped_better=int(s.get("flippedBetter", 0)),
        flipped_sample=[str(i)[:253] for i in (s.get("flippedSample") or [])[:20]],
        flipped_location=f"pvc:{cand[0]}/{cand[1]}/{FLIPPED_FILE}" if cand else "",
        test=str(s.get("test", "")),
        p_value=s.get("pValue"),
        interval=s.get("interval"),
        alpha=s.get("alpha"),
    )
    regressed = s.get("regressed")
    message = str(s.get("message", ""))[:1000]
    if regressed is True:
        return Outcome(ConditionStatus.TRUE, Reason.REGRESSED, message, st)
    if regressed is False:
        return Outcome(ConditionStatus.FALSE, Reason.NO_REGRESSION, message, st)
    return Outcome(ConditionStatus.UNKNOWN, Reason.UNDECIDED, message, st)
