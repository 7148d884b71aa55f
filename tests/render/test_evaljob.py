"""EvalJob rendering and status (pure): named cases."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from foresail.api.crd import crds
from foresail.api.evaljob import EvalJob, EvalJobSpec, spec_hash
from foresail.api.evalreport import HIST_BUCKETS, MAX_SPANS, LatencyHistogram
from foresail.api.inferenceservice import InferenceService
from foresail.api.podtemplate import DNS_SUBDOMAIN
from foresail.api.reasons import Problem, Reason
from foresail.render.evaljob import (
    PROM_AUTH_KEYS,
    PROM_AUTH_MOUNT,
    WORKER_CONFIG_ENV,
    EvalPlan,
    eval_plan,
    progress_name,
    progress_names,
    render_eval_isvc,
    render_job,
    render_progress,
    render_target_service,
    render_worker_rbac,
    worker_config,
)
from foresail.render.evaljob_status import MAX_REPORT_BYTES, PER_SHARD_MAX, ShardReport, finished, observe_evaljob, parse_reports

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WALL = NOW.timestamp()


def evaljob(**spec: Any) -> EvalJob:
    base: dict[str, Any] = {
        "target": {"inferenceService": "classifier"},
        "dataset": {"configMap": {"name": "iris"}},
        "scorer": {"kind": "top1", "output": "PROBS"},
        "shards": 4,
        "parallelism": 2,
    }
    base.update(spec)
    return EvalJob.model_validate(
        {"metadata": {"name": "iris-eval", "namespace": "team-a", "uid": "u-1", "generation": 1}, "spec": base}
    )


def plan(**kw: Any) -> EvalPlan:
    base: dict[str, Any] = dict(
        service="classifier", production="classifier", model="classifier", version="", slo_ms=100.0,
        dataset_path="/data/dataset.jsonl", dataset_sha256="", results_claim="iris-eval-results",
        results_dir="results/iris-eval-abc", image="ghcr.io/foresail/foresail:0.1.0", prometheus_url="http://prom:9090",
        spec_hash="abc", suspend=False,
    )  # fmt: skip
    base.update(kw)
    return EvalPlan(**base)


def test_job_is_indexed_with_per_index_backoff_and_a_failure_policy() -> None:
    job = render_job(evaljob(), plan())
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimitPerIndex"]) == (
        "Indexed",
        4,
        2,
        3,
    )
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob" and rules[0]["onExitCodes"]["values"] == [3]
    assert rules[1]["action"] == "Ignore" and rules[1]["onExitCodes"]["values"] == [143]
    assert rules[2] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["priorityClassName"] == "foresail-batch"
    assert pod["serviceAccountName"] == "iris-eval-worker"
    assert pod["volumes"][0]["configMap"] == {"name": "iris", "items": [{"key": "dataset.jsonl", "path": "dataset.jsonl"}]}
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    cfg = json.loads(env[WORKER_CONFIG_ENV]["value"])
    assert cfg["plan"]["service"] == "classifier" and cfg["yield"] is True and cfg["shards"] == 4
    assert {"datasetPath", "datasetSha256", "resultsDir", "prometheusUrl", "sloMs", "production", "model"} <= set(cfg["plan"])
    assert job["metadata"]["annotations"] == {"foresail.dev/spec-hash": "abc"}
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_worker_may_patch_only_its_own_progress() -> None:
    sa, role, binding = render_worker_rbac(evaljob())
    assert sa["kind"] == "ServiceAccount" and binding["subjects"][0]["name"] == "iris-eval-worker"
    cm_rule = role["rules"][0]
    assert cm_rule == {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["iris-eval-progress"],
        "verbs": ["get", "patch"],
    }


def test_dedicated_eval_replicas_are_batch_with_a_fixed_count() -> None:
    target = InferenceService.model_validate(
        {
            "metadata": {"name": "classifier", "namespace": "team-a"},
            "spec": {
                "model": {"name": "classifier", "repository": {"configMap": {"name": "models"}}},
                "slo": {"p99LatencyMs": 100},
                "priority": "critical",
                "tenant": "team-a",
                "scaling": {"minReplicas": 2, "maxReplicas": 8},
            },
        }
    )
    ej = evaljob(mode="dedicated", dedicated={"replicas": 3})
    child = render_eval_isvc(ej, target)
    assert child["metadata"]["name"] == "iris-eval-eval"
    assert child["spec"]["priority"] == "batch" and child["spec"]["tenant"] == "team-a"
    assert child["spec"]["scaling"]["minReplicas"] == child["spec"]["scaling"]["maxReplicas"] == 3
    InferenceService.model_validate(child)  # a valid InferenceService
    assert worker_config(ej, plan(production=""))["yield"] is False


@pytest.mark.parametrize(
    ("name", "spec", "error"),
    [
        (
            "both dataset sources",
            {"dataset": {"configMap": {"name": "a"}, "pvc": {"claimName": "b", "path": "d.jsonl"}}},
            "exactly one of configMap or pvc",
        ),
        ("plugin without a name", {"scorer": {"kind": "plugin"}}, "scorer.plugin is required"),
        ("concurrency bounds", {"traffic": {"minConcurrency": 8, "maxConcurrency": 4}}, "minConcurrency must be <="),
        ("absolute results path", {"outputs": {"pvc": {"claimName": "r", "path": "/abs"}}}, "String should match pattern"),
        ("prometheusAuth: a Secret name with capitals", {"traffic": {"prometheusAuth": {"secretName": "Prom_Creds"}}}, "String should match pattern"),
        ("prometheusAuth: a Secret name of 254 characters", {"traffic": {"prometheusAuth": {"secretName": "a" * 254}}}, "at most 253 characters"),
        ("prometheusAuth: an empty Secret name", {"traffic": {"prometheusAuth": {"secretName": ""}}}, "at least 1 character"),
        ("prometheusAuth: no Secret name", {"traffic": {"prometheusAuth": {}}}, "secretName"),
        ("prometheusAuth: an unknown key", {"traffic": {"prometheusAuth": {"secretName": "p", "key": "token"}}}, "Extra inputs are not permitted"),
        ("prometheusAuth in dedicated mode", {"mode": "dedicated", "traffic": {"prometheusAuth": {"secretName": "p"}}}, "only for jobs that yield to production"),
        ("prometheusAuth without yielding", {"traffic": {"yieldToProduction": False, "prometheusAuth": {"secretName": "p"}}}, "only for jobs that yield to production"),
    ],
)  # fmt: skip
def test_invalid_specs(name: str, spec: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        evaljob(**spec)


@pytest.mark.parametrize(
    ("name", "secret"),
    [("a DNS-1123 subdomain", "prom.creds-1"), ("one character", "p"), ("253 characters", ".".join(["a" * 63] * 4)[:253].rstrip("."))],
)
def test_prometheus_auth_names_a_secret_of_a_yielding_job(name: str, secret: str) -> None:
    ej = evaljob(traffic={"prometheusAuth": {"secretName": secret}})
    assert ej.spec.traffic.prometheus_auth is not None and ej.spec.traffic.prometheus_auth.secret_name == secret, name


def test_the_crd_refuses_prometheus_auth_where_nothing_yields() -> None:
    """The same rule at admission (CEL on the spec, the error on the field), for the apiserver's 422."""
    spec = crds()["foresail.dev_evaljobs.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    (rule,) = [r for r in spec["x-kubernetes-validations"] if "prometheusAuth" in r["rule"]]
    assert rule["fieldPath"] == ".traffic.prometheusAuth"
    assert "self.mode == 'shared'" in rule["rule"] and "self.traffic.yieldToProduction" in rule["rule"]
    assert rule["message"].startswith("spec.traffic.prometheusAuth is only for jobs that yield to production")
    secret = spec["properties"]["traffic"]["properties"]["prometheusAuth"]["properties"]["secretName"]
    assert (secret["minLength"], secret["maxLength"], secret["pattern"]) == (1, 253, DNS_SUBDOMAIN)


def _auth_parts(job: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    cfg = json.loads(next(e["value"] for e in container["env"] if e["name"] == WORKER_CONFIG_ENV))
    vols = [v for v in pod["volumes"] if v["name"] == "prometheus-auth"]
    mounts = [m for m in container["volumeMounts"] if m["name"] == "prometheus-auth"]
    return vols, mounts, cfg, pod["securityContext"]


@pytest.mark.parametrize(
    ("name", "traffic", "secret"),
    [
        ("no prometheusAuth: nothing mounted, no paths", {}, None),
        ("no yielding, no prometheusAuth", {"yieldToProduction": False}, None),
        ("prometheusAuth: the Secret mounted, the paths configured", {"prometheusAuth": {"secretName": "prom-creds"}}, "prom-creds"),
    ],
)
def test_the_prometheus_auth_secret_is_mounted_and_its_paths_configured(name: str, traffic: dict[str, Any], secret: str | None) -> None:
    job = render_job(evaljob(traffic=traffic), plan())
    vols, mounts, cfg, security = _auth_parts(job)
    volume_names = [v["name"] for v in job["spec"]["template"]["spec"]["volumes"]]
    if secret is None:
        assert (vols, mounts, "prometheusAuth" in cfg) == ([], [], False), name
        assert volume_names == ["dataset", "results"] and "fsGroup" not in security
        return
    assert vols == [{"name": "prometheus-auth", "secret": {"secretName": secret, "defaultMode": 0o440, "optional": False}}], name
    assert mounts == [{"name": "prometheus-auth", "mountPath": PROM_AUTH_MOUNT, "readOnly": True}]
    # 0440: readable through the pod's fsGroup, which is the user the workers run as
    assert security["fsGroup"] == security["runAsUser"] == 65532 and security["runAsNonRoot"] is True
    auth = cfg["prometheusAuth"]
    assert auth["secret"] == secret
    assert auth["bearerTokenFile"] == f"{PROM_AUTH_MOUNT}/token" and auth["keyFile"] == f"{PROM_AUTH_MOUNT}/tls.key"
    assert {auth[k].rsplit("/", 1)[1] for k in PROM_AUTH_KEYS} == {"token", "username", "password", "ca.crt", "tls.crt", "tls.key"}
    assert (auth["headersDir"], auth["headersPrefix"]) == (PROM_AUTH_MOUNT, "header.")
    assert cfg["yield"] is True


def test_the_workers_role_never_reads_secrets() -> None:
    _, role, _ = render_worker_rbac(evaljob(traffic={"prometheusAuth": {"secretName": "prom-creds"}}))
    assert role["rules"] == render_worker_rbac(evaljob())[1]["rules"], "the kubelet mounts the Secret; the Role is the same"
    assert not [r for r in role["rules"] if "secrets" in r["resources"]]


def test_spec_hash_of_a_job_without_prometheus_auth_is_as_before_the_field() -> None:
    """An upgrade must not turn running jobs into new runs: an unset field is not in the hashed JSON (nor
    target.revision, nor the baseline, which is not part of the run at all)."""
    spec = evaljob().spec
    data = spec.model_dump(by_alias=True, mode="json", exclude={"suspend", "baseline"})
    del data["traffic"]["prometheusAuth"]
    del data["target"]["revision"]
    before = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert spec_hash(spec) == before
    assert spec_hash(evaljob(traffic={"prometheusAuth": {"secretName": "p"}}).spec) != before
    assert spec_hash(evaljob(baseline={"evalJob": "nightly"}).spec) == before
    assert spec_hash(evaljob(target={"inferenceService": "llm", "revision": "abc"}).spec) != before


def test_spec_hash_ignores_suspend_only() -> None:
    a = evaljob().spec
    assert spec_hash(a) == spec_hash(EvalJobSpec.model_validate({**a.model_dump(by_alias=True), "suspend": True}))
    assert spec_hash(a) != spec_hash(EvalJobSpec.model_validate({**a.model_dump(by_alias=True), "seed": 7}))


def job_status(**st: Any) -> dict[str, Any]:
    return {"status": st}


def report(index: int, **kw: Any) -> ShardReport:
    base: dict[str, Any] = {"index": index, "time": WALL - 1, "total": 25}
    base.update(kw)
    return ShardReport(**base)


CASES: list[tuple[str, dict[str, Any] | None, dict[int, ShardReport], Problem | None, Reason | None, str, dict[str, str]]] = [
    ("target missing: waits", None, {}, Problem(Reason.TARGET_NOT_FOUND, "InferenceService team-a/x not found"), None, "Pending", {"Admitted": "False/TargetNotFound"}),
    ("hash mismatch: fails", None, {}, Problem(Reason.DATASET_HASH_MISMATCH, "differs", terminal=True), None, "Failed", {"Failed": "True/DatasetHashMismatch"}),
    ("running", job_status(active=2, completedIndexes="0"), {0: report(0, done=25, finished=True), 1: report(1, done=10, eps=50.0, p99_ms=40.0, limit=8)}, None, None, "Running", {"Running": "True/Running", "Admitted": "True/Admitted"}),
    ("suspended by the user", job_status(), {}, None, Reason.USER_SUSPENDED, "Suspended", {"Suspended": "True/UserSuspended"}),
    ("eval replicas preempted", job_status(), {}, None, Reason.PREEMPTED, "Suspended", {"Suspended": "True/Preempted"}),
    ("complete", job_status(completedIndexes="0-3", conditions=[{"type": "Complete", "status": "True", "lastTransitionTime": "2026-11-30T12:00:00Z"}]), {i: report(i, done=25, correct=20, scored=25, finished=True, final=True) for i in range(4)}, None, None, "Succeeded", {"Succeeded": "True/AllShardsCompleted"}),
    ("failed by the pod failure policy", job_status(conditions=[{"type": "Failed", "status": "True", "reason": "PodFailurePolicy", "message": "exit code 3"}]), {2: report(2, error="dataset line 7: bad JSON")}, None, None, "Failed", {"Failed": "True/PodFailurePolicy"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "job", "reports", "problem", "suspend", "phase", "conds"), CASES, ids=[c[0] for c in CASES])
def test_observe(
    name: str,
    job: dict[str, Any] | None,
    reports: dict[int, ShardReport],
    problem: Problem | None,
    suspend: Reason | None,
    phase: str,
    conds: dict[str, str],
) -> None:
    st = observe_evaljob(evaljob(), job, reports, 100, "pvc:r/results", problem, suspend, NOW, WALL)
    assert st.phase == phase
    got = {c.type: f"{c.status}/{c.reason}" for c in st.conditions}
    for k, v in conds.items():
        assert got[k] == v, (k, got)
    assert finished(st) == (phase in ("Succeeded", "Failed"))


def test_observe_folds_progress_and_throughput() -> None:
    reports = {
        0: report(0, done=25, finished=True, correct=24, scored=25),
        1: report(1, done=10, eps=50.0, p50_ms=10.0, p95_ms=30.0, p99_ms=40.0, limit=8, throttled_seconds=2.0, errors=1),
        2: report(2, done=5, eps=150.0, p50_ms=20.0, p99_ms=60.0, limit=16, time=WALL - 60),  # stale: not live
    }
    st = observe_evaljob(evaljob(), job_status(active=2), reports, 100, "pvc:r/results", None, None, NOW, WALL)
    assert (st.progress.done, st.progress.total, st.progress.percent) == (40, 100, 40.0)
    assert st.progress.eta_seconds == pytest.approx(60 / 50.0)
    assert (st.throughput.eps, st.throughput.p99_ms, st.throughput.concurrency) == (50.0, 40.0, 8)
    assert st.throughput.error_rate == pytest.approx(1 / 40)
    assert (st.results.correct, st.results.scored, st.results.score) == (24, 25, 0.96)
    assert [s["index"] for s in st.results.per_shard] == [0, 1, 2]


def test_reports_round_trip_and_junk_is_skipped() -> None:
    r = report(3, done=7, p99_ms=12.5, error="x")
    data = {"shard-3": r.to_json(), "shard-9": "{not json", "other": "1"}
    assert parse_reports(data) == {3: r}


CLASSIFIER = InferenceService.model_validate(
    {
        "metadata": {"name": "classifier", "namespace": "team-a", "uid": "u-2"},
        "spec": {"model": {"name": "iris", "repository": {"configMap": {"name": "m"}}}, "slo": {"p99LatencyMs": 80}},
    }
)


@pytest.mark.parametrize(
    ("name", "spec", "want"),
    [
        ("shared: the target's Service, yielding to it", {}, {"service": "classifier", "production": "classifier", "model": "iris"}),
        ("dedicated: its own replicas, yielding to nobody", {"mode": "dedicated"}, {"service": "iris-eval-eval", "production": ""}),
        ("one revision: the job's Service of its pods, yielding to the whole service", {"target": {"inferenceService": "classifier", "revision": "0a1b2c3d4e"}}, {"service": "iris-eval-target", "production": "classifier"}),
        ("a model and version named by the job", {"target": {"inferenceService": "classifier", "model": "other", "version": "2"}}, {"model": "other", "version": "2"}),
        ("a dataset on a PVC", {"dataset": {"pvc": {"claimName": "d", "path": "sets/iris.jsonl"}}}, {"dataset_path": "/data/sets/iris.jsonl"}),
        ("the job's own worker image", {"worker": {"image": "me/worker:1"}}, {"image": "me/worker:1"}),
        ("the operator's image otherwise", {}, {"image": "ghcr.io/foresail/foresail:0.1.0", "slo_ms": 80.0}),
    ],
)
def test_eval_plan(name: str, spec: dict[str, Any], want: dict[str, Any]) -> None:
    p = eval_plan(evaljob(**spec), CLASSIFIER, "claim", "results/x", "h", False, "ghcr.io/foresail/foresail:0.1.0", "http://prom")
    got = {k: getattr(p, k) for k in want}
    assert got == want, name


@pytest.mark.parametrize(("case", "name"), [("a dot", "iris.v2"), ("a leading digit", "2iris")])
def test_an_evaljob_name_must_name_a_service(case: str, name: str) -> None:
    obj = evaljob().model_dump(by_alias=True)
    obj["metadata"]["name"] = name
    with pytest.raises(ValidationError, match="DNS-1035 label"):
        EvalJob.model_validate(obj)


RUN = "abcdef012345"
COMPLETE = job_status(completedIndexes="0-3", conditions=[{"type": "Complete", "status": "True", "lastTransitionTime": "2026-11-30T12:00:00Z"}])


def final(index: int, **kw: Any) -> ShardReport:
    return report(index, **{"done": 25, "correct": 20, "scored": 25, "finished": True, "final": True, "run": RUN, **kw})


SCORE_CASES = [
    ("every shard's final report: their score, whatever came live", {i: final(i) for i in range(4)}, 0.8, "AllShardsCompleted", ""),
    ("a final report with errors counts them (a resumed shard's file)", {**{i: final(i) for i in range(3)}, 3: final(3, errors=5, scored=20, correct=20)}, round(80 / 95, 6), "AllShardsCompleted", ""),
    ("shard 3's last report lost: no score rather than a wrong one", {**{i: final(i) for i in range(3)}, 3: report(3, done=10, correct=10, scored=10, run=RUN)}, None, "ScoreIncomplete", "no final report of shard 3"),
    ("shard 2's final report is an earlier run's (the spec changed)", {**{i: final(i) for i in range(4)}, 2: final(2, run="000000000000")}, None, "ScoreIncomplete", "no final report of shard 2"),
    ("no report at all", {}, None, "ScoreIncomplete", "no final report of shard 0, 1, 2, 3"),
    ("a shard beyond spec.shards (an earlier run's) counts for nothing", {**{i: final(i) for i in range(4)}, 7: final(7, correct=0)}, 0.8, "AllShardsCompleted", ""),
]  # fmt: skip


@pytest.mark.parametrize(("name", "reports", "score", "reason", "message"), SCORE_CASES, ids=[c[0] for c in SCORE_CASES])
def test_a_finished_jobs_score_comes_only_from_final_reports(
    name: str, reports: dict[int, ShardReport], score: float | None, reason: str, message: str
) -> None:
    st = observe_evaljob(evaljob(), COMPLETE, reports, 100, "pvc:r/results", None, None, NOW, WALL, RUN)
    assert st.phase == "Succeeded", name
    assert st.results.score == score, name
    cond = next(c for c in st.conditions if c.type == "Succeeded")
    assert cond.reason == reason and message in cond.message, (name, cond.message)
    if reason == "ScoreIncomplete":
        assert "the results are complete at pvc:r/results" in cond.message


def test_a_finished_job_keeps_the_runs_average_eps_and_latency_percentiles() -> None:
    """Was: EPS 0 and the live percentiles lost at the end. Now items / the union of the shards' active spans,
    and the percentiles of every request of the run (the shards' histograms merged)."""
    fast, slow = LatencyHistogram(), LatencyHistogram()
    for _ in range(90):
        fast.add(10.0)
    for _ in range(10):
        slow.add(200.0)
    t0 = WALL - 100
    reports = {
        0: final(0, spans=((t0, t0 + 20),), latency=tuple(fast.encode())),
        1: final(1, spans=((t0 + 10, t0 + 30),), latency=tuple(slow.encode())),  # overlaps shard 0: 30 s in all
        2: final(2, spans=((t0 + 50, t0 + 55), (t0 + 60, t0 + 65))),  # two attempts, suspended between
        3: final(3, spans=((t0 + 60, t0 + 62),)),
    }
    old = evaljob()
    old.status.throughput.eps, old.status.throughput.p99_ms = 80.0, 30.0  # the last live figures
    st = observe_evaljob(old, COMPLETE, reports, 100, "pvc:r/results", None, None, NOW, WALL, RUN)
    assert st.throughput.active_seconds == 40.0
    assert st.throughput.eps == 100 / 40.0
    assert st.throughput.concurrency == 0
    p50, p95, p99 = st.throughput.p50_ms, st.throughput.p95_ms, st.throughput.p99_ms
    assert p50 is not None and p95 is not None and p99 is not None
    assert p50 == pytest.approx(10.0, rel=0.1) and p95 == pytest.approx(200.0, rel=0.1) and p99 == pytest.approx(200.0, rel=0.1)


def test_a_run_shorter_than_a_tenth_of_a_second_keeps_its_average_eps() -> None:
    """Was (found by e2e/chaos/test_evaljob_cleanup.py): spans went over the wire rounded to 0.1 s, so a shard
    that evaluated its items in 40 ms reported no active time and the finished job EPS 0 (or 4,000 from 0.1 s)."""
    t0 = WALL - 100
    sent = {i: ShardReport.from_json(final(i, spans=((t0 + i * 0.01, t0 + i * 0.01 + 0.04),)).to_json()) for i in range(4)}
    st = observe_evaljob(evaljob(), COMPLETE, sent, 100, "pvc:r/results", None, None, NOW, WALL, RUN)
    assert st.throughput.active_seconds == pytest.approx(0.07, abs=1e-3), "the union of four overlapping 40 ms spans"
    assert st.throughput.eps == pytest.approx(100 / 0.07, rel=0.02)


def test_a_finished_job_of_workers_without_histograms_keeps_the_last_live_percentiles() -> None:
    old = evaljob()
    old.status.throughput.p50_ms, old.status.throughput.p95_ms, old.status.throughput.p99_ms = 5.0, 9.0, 12.0
    st = observe_evaljob(old, COMPLETE, {i: final(i) for i in range(4)}, 100, "pvc:r/results", None, None, NOW, WALL, RUN)
    assert (st.throughput.p50_ms, st.throughput.p95_ms, st.throughput.p99_ms) == (5.0, 9.0, 12.0)
    assert st.throughput.eps == 0.0 and st.throughput.active_seconds is None, "no spans: no average claimed"


def _worst_report(index: int) -> ShardReport:
    """The largest report a worker can send: every field at its widest, every histogram bucket, the most spans."""
    big = 10**9
    return ShardReport(
        index=index, done=big, total=big, errors=big, correct=big, scored=big, eps=123456.789, p50_ms=1e6 / 3,
        p95_ms=1e6 / 3, p99_ms=1e6 / 3, limit=4096, throttled_seconds=1e9 / 3, finished=True, dataset_sha256="f" * 64,
        dataset_items=big, error="\u00e9" * 2000, time=4e9 / 3, run="f" * 12, final=True,
        spans=tuple((4e9 / 3 + i, 4e9 / 3 + i + 0.5) for i in range(MAX_SPANS)), latency=(0, *([big] * HIST_BUCKETS)),
    )  # fmt: skip


def test_a_report_never_exceeds_its_bytes_and_keeps_its_meaning() -> None:
    r = _worst_report(9999)
    text = r.to_json()
    assert len(text.encode()) <= MAX_REPORT_BYTES
    back = ShardReport.from_json(text)
    assert back.error.endswith("...") and back.latency == r.latency and back.final and back.done == 10**9


def test_3000_shards_report_into_configmaps_under_1_mib_each() -> None:
    """Was: one ConfigMap of every shard's report, past the apiserver's 1 MiB from ~2,500 shards."""
    ej = evaljob(shards=3000)
    names = progress_names(ej)
    assert len(names) == 8 and names[:2] == ["iris-eval-progress", "iris-eval-progress-1"]
    assert [c["metadata"]["name"] for c in render_progress(ej)] == names
    _, role, _ = render_worker_rbac(ej)
    assert role["rules"][0]["resourceNames"] == names, "each worker may patch its own"
    data: dict[str, dict[str, str]] = {n: {} for n in names}
    for i in range(3000):
        data[progress_name("iris-eval-progress", i)][f"shard-{i}"] = _worst_report(i).to_json()
    sizes = [sum(len(k.encode()) + len(v.encode()) for k, v in d.items()) for d in data.values()]
    assert max(sizes) < 1024 * 1024, sizes
    assert parse_reports(*data.values()).keys() == set(range(3000))
    # the EvalJob's own status stays small too: at most PER_SHARD_MAX shards listed
    reports = {i: final(i, run="") for i in range(3000)}
    st = observe_evaljob(ej, COMPLETE, reports, 0, "pvc:r/results", None, None, NOW, WALL, "")
    assert len(st.results.per_shard) == PER_SHARD_MAX and st.results.score == 0.8
    assert len(json.dumps(st.model_dump(by_alias=True, mode="json"))) < 64 * 1024


def test_the_shard_count_has_an_admission_limit_named_with_its_maximum() -> None:
    with pytest.raises(ValidationError, match=r"shards\n  Input should be less than or equal to 10000"):
        evaljob(shards=10_001)
    spec = crds()["foresail.dev_evaljobs.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["shards"]["maximum"] == 10_000  # the apiserver's 422: spec.shards ... less than or equal to 10000
    assert len(progress_names(evaljob(shards=10_000))) == 25


def test_the_target_service_selects_one_revision_of_the_service() -> None:
    svc = render_target_service(evaljob(target={"inferenceService": "classifier", "revision": "0a1b2c3d4e"}))
    assert svc["metadata"]["name"] == "iris-eval-target"
    assert svc["metadata"]["ownerReferences"][0]["kind"] == "EvalJob"
    assert svc["spec"]["selector"] == {"foresail.dev/inferenceservice": "classifier", "foresail.dev/revision": "0a1b2c3d4e"}
    assert [p["name"] for p in svc["spec"]["ports"]] == ["http", "grpc"], "the workers look up the grpc port by name"


def test_a_revision_is_for_shared_mode_only() -> None:
    with pytest.raises(ValidationError, match="only for mode shared"):
        evaljob(mode="dedicated", target={"inferenceService": "classifier", "revision": "abc"})


@pytest.mark.parametrize(
    ("name", "baseline", "error"),
    [
        ("neither", {}, "exactly one of evalJob or pvc"),
        ("both", {"evalJob": "a", "pvc": {"claimName": "c", "path": "p"}}, "exactly one of evalJob or pvc"),
        ("alpha out of range", {"evalJob": "a", "alpha": 0.9}, "less than or equal to 0.5"),
        ("a path climbing out", {"pvc": {"claimName": "c", "path": "../x"}}, "should match pattern"),
    ],
)
def test_bad_baselines_are_refused(name: str, baseline: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        evaljob(baseline=baseline)
