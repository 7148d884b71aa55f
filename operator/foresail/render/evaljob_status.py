"""An EvalJob's status from its Job and its workers' progress reports (pure; ``now`` is an argument).

Each worker merge-patches one key ``shard-<index>`` of its progress ConfigMap (``render.evaljob.progress_name``:
at most ``SHARDS_PER_PROGRESS`` shards each) with a JSON report (``ShardReport``, at most ``MAX_REPORT_BYTES``);
the operator folds the reports and the Job's status into the EvalJob's status.

Live reports are best effort. The score of a finished job is not: it comes only from each shard's *final*
report (``final``: the counts of the shard's final results file, read at its exit, resumed items included),
which the worker writes before it exits 0, retrying, and exits non-zero when it cannot (the index is retried
and the next pod, finding nothing left to do, writes it again). So a Succeeded Job means every shard's final
report was accepted by the apiserver, and the operator reads the ConfigMaps after seeing the Job complete. A
final report of this run (``run``: the spec hash) missing for some shard anyway (a ConfigMap edited by hand,
a worker image of before this protocol) leaves no score, and ``Succeeded`` says why (``ScoreIncomplete``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from foresail.api.conditions import Condition, find_condition, set_condition
from foresail.api.evaljob import EvalJob, EvalJobStatus, Progress, Results, ShardsStatus, Throughput
from foresail.api.evalreport import LatencyHistogram, span_seconds
from foresail.api.objects import condition
from foresail.api.reasons import ConditionType, Problem, Reason

__all__ = ["ACTIVE_REPORT_AGE_S", "MAX_REPORT_BYTES", "PER_SHARD_MAX", "ShardReport", "finished", "observe_evaljob", "parse_reports", "run_id"]

ACTIVE_REPORT_AGE_S = 15.0  # a report older than this no longer counts towards live throughput
ADMITTED_MESSAGE = "target, dataset and outputs found"
MAX_REPORT_BYTES = 2048  # one report's JSON, at most (the error message is cut to fit)
PER_SHARD_MAX = 100  # status.results.perShard entries, at most (shards with errors first)


def run_id(spec_hash: str) -> str:
    """A run's name in its reports: the spec hash's first 12 characters (as in its results directory)."""
    return spec_hash[:12]


@dataclass(frozen=True)
class ShardReport:
    index: int
    done: int = 0
    total: int = 0
    errors: int = 0
    correct: int = 0
    scored: int = 0
    eps: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    limit: int = 0
    throttled_seconds: float = 0.0
    finished: bool = False
    dataset_sha256: str = ""
    dataset_items: int = 0
    error: str = ""
    time: float = 0.0
    run: str = ""  # run_id of the spec the worker ran
    final: bool = False  # the counts are the shard's final results file's (the score of a finished job)
    spans: tuple[tuple[float, float], ...] = ()  # wall-clock spans the shard evaluated (all its attempts)
    latency: tuple[int, ...] = ()  # LatencyHistogram.encode() of every request of the shard's run

    def to_json(self) -> str:
        text = self._json(self.error)
        over = len(text.encode()) - MAX_REPORT_BYTES
        if over > 0:  # only the message can be long; the rest is bounded by construction
            text = self._json(self.error.encode()[: max(0, len(self.error.encode()) - over - 3)].decode(errors="ignore") + "...")
        return text

    def _json(self, error: str) -> str:
        return json.dumps(
            {
                "index": self.index, "done": self.done, "total": self.total, "errors": self.errors,
                "correct": self.correct, "scored": self.scored, "eps": round(self.eps, 3),
                "p50Ms": self.p50_ms, "p95Ms": self.p95_ms, "p99Ms": self.p99_ms, "limit": self.limit,
                "throttledSeconds": round(self.throttled_seconds, 3), "finished": self.finished,
                "datasetSha256": self.dataset_sha256, "datasetItems": self.dataset_items, "error": error,
                "time": round(self.time, 3), "run": self.run, "final": self.final,
                "spans": [[round(a, 3), round(b, 3)] for a, b in self.spans], "latency": list(self.latency),
            },
            sort_keys=True,
            separators=(",", ":"),
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> ShardReport:
        d = json.loads(text)
        return cls(
            index=int(d["index"]), done=int(d.get("done", 0)), total=int(d.get("total", 0)), errors=int(d.get("errors", 0)),
            correct=int(d.get("correct", 0)), scored=int(d.get("scored", 0)), eps=float(d.get("eps", 0.0)),
            p50_ms=d.get("p50Ms"), p95_ms=d.get("p95Ms"), p99_ms=d.get("p99Ms"), limit=int(d.get("limit", 0)),
            throttled_seconds=float(d.get("throttledSeconds", 0.0)), finished=bool(d.get("finished", False)),
            dataset_sha256=str(d.get("datasetSha256", "")), dataset_items=int(d.get("datasetItems", 0)),
            error=str(d.get("error", "")), time=float(d.get("time", 0.0)), run=str(d.get("run", "")),
            final=bool(d.get("final", False)), spans=tuple((float(a), float(b)) for a, b in d.get("spans") or []),
            latency=tuple(int(c) for c in d.get("latency") or []),
        )  # fmt: skip


def parse_reports(*datas: dict[str, str] | None) -> dict[int, ShardReport]:
    """The progress ConfigMaps' data -> reports by shard; unreadable entries are skipped."""
    out: dict[int, ShardReport] = {}
    for key, text in (kv for data in datas for kv in (data or {}).items()):
        if not key.startswith("shard-"):
            continue
        try:
            r = ShardReport.from_json(text)
        except (ValueError, KeyError, TypeError):
            continue
        out[r.index] = r
    return out


def _count(indexes: str) -> int:
    n = 0
    for part in filter(None, indexes.split(",")):
        a, _, b = part.partition("-")
        n += int(b or a) - int(a) + 1
    return n


def observe_evaljob(
    ej: EvalJob,
    job: dict[str, Any] | None,
    reports: dict[int, ShardReport],
    total_hint: int,
    location: str,
    problem: Problem | None,
    suspend_reason: Reason | None,
    now: datetime,
    wall: float,
    run: str = "",
) -> EvalJobStatus:
    """``now`` stamps conditions; ``wall`` (unix seconds) ages the workers' reports; ``run`` (``run_id``) is
    the run whose reports count (those of an earlier spec, or of shards beyond ``spec.shards``, do not)."""
    old = ej.status
    gen = ej.generation
    conds: list[Condition] = list(old.conditions)
    st = EvalJobStatus.model_validate(old.model_dump(by_alias=True))
    st.observed_generation = gen
    shards = ej.spec.shards
    reports = {i: r for i, r in reports.items() if i < shards and (not run or r.run in (run, ""))}
    complete, failed = (c if (c := condition(job, t)) and c.get("status") == "True" else None for t in ("Complete", "Failed"))
    ended = complete is not None or failed is not None or (problem is not None and problem.terminal)
    finals = {i: r for i, r in reports.items() if r.final and (r.run == run or not run)}
    missing = [i for i in range(shards) if i not in finals]
    # a completed job's figures are its final reports' (the counts of its results files), never the live ones
    counted = finals if complete is not None else reports

    # progress, throughput, results from the reports
    total = total_hint or sum(r.total for r in counted.values())
    done = sum(r.done for r in counted.values())
    active = [r for r in reports.values() if not r.finished and wall - r.time <= ACTIVE_REPORT_AGE_S]
    eps = sum(r.eps for r in active)
    st.progress = Progress(
        done=done,
        total=total,
        percent=round(100.0 * done / total, 2) if total else 0.0,
        eta_seconds=round((total - done) / eps, 1) if eps > 0 and total > done else (0.0 if total and done >= total else None),
    )
    errors = sum(r.errors for r in counted.values())
    weighted = [(r.p50_ms, r.eps) for r in active if r.p50_ms is not None]
    st.throughput = Throughput(
        eps=round(eps, 3),
        p50_ms=round(sum(p * w for p, w in weighted) / sum(w for _, w in weighted), 3)
        if weighted and sum(w for _, w in weighted) > 0
        else None,
        p95_ms=max((r.p95_ms for r in active if r.p95_ms is not None), default=None),
        p99_ms=max((r.p99_ms for r in active if r.p99_ms is not None), default=None),
        error_rate=round(errors / done, 4) if done else 0.0,
        throttled_seconds=round(sum(r.throttled_seconds for r in reports.values()), 3),
        concurrency=sum(r.limit for r in active),
    )
    if ended:
        # the run's figures, not the last live ones: items / the union of the shards' active spans, and the
        # percentiles of every request of the run (the shards' histograms merged)
        active_s = span_seconds([sp for r in reports.values() for sp in r.spans])
        hist = LatencyHistogram()
        for r in reports.values():
            hist = hist.merge(LatencyHistogram.decode(list(r.latency)))
        st.throughput.active_seconds = round(active_s, 3) if active_s > 0 else None
        st.throughput.eps = round(done / active_s, 3) if active_s > 0 else 0.0
        st.throughput.concurrency = 0
        if hist.total():
            st.throughput.p50_ms, st.throughput.p95_ms, st.throughput.p99_ms = (hist.percentile(q) for q in (50, 95, 99))
    if ended and st.throughput.p99_ms is None and old.throughput.p99_ms is not None:
        # no histogram (workers of before it): the last live latency figures rather than none
        st.throughput.p50_ms, st.throughput.p95_ms, st.throughput.p99_ms = (
            old.throughput.p50_ms,
            old.throughput.p95_ms,
            old.throughput.p99_ms,
        )
    scored = sum(r.scored for r in counted.values())
    correct = sum(r.correct for r in counted.values())
    incomplete = complete is not None and bool(missing)
    listed = sorted(counted.values(), key=lambda r: (not (r.errors or r.error), r.index))[:PER_SHARD_MAX]
    st.results = Results(
        score=round(correct / scored, 6) if scored and not incomplete else None,
        scored=scored,
        correct=correct,
        errors=errors,
        per_shard=[
            {"index": r.index, "done": r.done, "total": r.total, "correct": r.correct, "scored": r.scored, "errors": r.errors}
            for r in sorted(listed, key=lambda r: r.index)
        ],
        location=location,
    )
    js = (job or {}).get("status") or {}
    st.shards = ShardsStatus(total=shards, completed=js.get("completedIndexes", ""), failed=js.get("failedIndexes") or "")
    shas = {r.dataset_sha256 for r in reports.values() if r.dataset_sha256}
    if shas and not st.provenance.dataset_sha256:
        st.provenance.dataset_sha256 = sorted(shas)[0]

    # conditions and phase
    failed_shard = next((r for r in sorted(reports.values(), key=lambda r: r.index) if r.error), None)
    if problem is not None and problem.terminal:
        conds = set_condition(conds, ConditionType.FAILED, True, problem.reason, problem.message, gen, now)
        conds = set_condition(conds, ConditionType.RUNNING, False, problem.reason, problem.message, gen, now)
        st.phase = "Failed"
    elif problem is not None:
        conds = set_condition(conds, ConditionType.ADMITTED, False, problem.reason, problem.message, gen, now)
        conds = set_condition(conds, ConditionType.RUNNING, False, Reason.NOT_ADMITTED, problem.message, gen, now)
        st.phase = "Pending"
    elif complete is not None:
        conds = set_condition(conds, ConditionType.ADMITTED, True, Reason.ADMITTED, ADMITTED_MESSAGE, gen, now)
        if incomplete:
            named = ", ".join(str(i) for i in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            msg = (f"{shards} shards completed, but no final report of shard {named}: no score is shown rather than a "
                   f"wrong one; the results are complete at {location}")  # fmt: skip
            conds = set_condition(conds, ConditionType.SUCCEEDED, True, Reason.SCORE_INCOMPLETE, msg, gen, now)
        else:
            conds = set_condition(conds, ConditionType.SUCCEEDED, True, Reason.ALL_SHARDS_COMPLETED, f"{shards} shards, {done} items", gen, now)
        conds = set_condition(conds, ConditionType.RUNNING, False, Reason.COMPLETED, "all shards completed", gen, now)
        conds = set_condition(conds, ConditionType.SUSPENDED, False, Reason.COMPLETED, "the job completed", gen, now)
        st.phase = "Succeeded"
        st.completion_time = st.completion_time or str(complete.get("lastTransitionTime") or "")
    elif failed is not None:
        msg = f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}"
        if failed_shard is not None:
            msg += f"; shard {failed_shard.index}: {failed_shard.error}"
        conds = set_condition(conds, ConditionType.FAILED, True, str(failed.get("reason") or Reason.JOB_FAILED), msg[:1000], gen, now)
        conds = set_condition(conds, ConditionType.RUNNING, False, Reason.FAILED, msg[:1000], gen, now)
        st.phase = "Failed"
        st.completion_time = st.completion_time or str(failed.get("lastTransitionTime") or "")
    elif suspend_reason is not None:
        conds = set_condition(conds, ConditionType.ADMITTED, True, Reason.ADMITTED, ADMITTED_MESSAGE, gen, now)
        conds = set_condition(conds, ConditionType.SUSPENDED, True, suspend_reason, _suspend_message(suspend_reason), gen, now)
        conds = set_condition(conds, ConditionType.RUNNING, False, Reason.SUSPENDED, _suspend_message(suspend_reason), gen, now)
        st.phase = "Suspended"
    else:
        conds = set_condition(conds, ConditionType.ADMITTED, True, Reason.ADMITTED, ADMITTED_MESSAGE, gen, now)
        conds = set_condition(conds, ConditionType.SUSPENDED, False, Reason.RUNNING, "workers are running", gen, now)
        running = job is not None and (js.get("active", 0) or 0) > 0
        msg = f"{_count(js.get('completedIndexes', ''))}/{ej.spec.shards} shards done, {done}/{total} items"
        conds = set_condition(conds, ConditionType.RUNNING, True, Reason.RUNNING if running else Reason.STARTING, msg, gen, now)
        st.phase = "Running"
        if running and not st.start_time:
            st.start_time = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    st.conditions = conds
    return st


def _suspend_message(reason: Reason) -> str:
    return {
        Reason.USER_SUSPENDED: "spec.suspend is true: workers stopped; progress is kept and the job resumes when it is false",
        Reason.PREEMPTED: "the eval replicas were taken back for production (tenant arbiter or scheduler); resumes when they return",
        Reason.WAITING_FOR_EVAL_REPLICAS: "waiting for the dedicated eval replicas to be warm",
    }.get(reason, str(reason))


def finished(status: EvalJobStatus) -> bool:
    return any(
        (c := find_condition(status.conditions, t)) is not None and c.status == "True"
        for t in (ConditionType.SUCCEEDED, ConditionType.FAILED)
    )
