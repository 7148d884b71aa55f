"""The operator gone when an EvalJob finishes (issue 15, defect 7 on the cluster): the operator is scaled to 0
while a dedicated job's workers run; they finish without it (results on the PVC, the batch Job complete), the
job's eval replicas still up. When the operator is back, the job is finished from its results files (score 0.9
exactly: see e2e/test_evaljob.py), the run's figures are kept in its status (its average EPS > 0), and the dedicated
``<job>-eval`` InferenceService is collected: what a kill between the job's end and its cleanup leaves is
cleaned up at the next start, not leaked."""

from __future__ import annotations

import time
from typing import Any

import pytest

from e2e.test_evaljob import _evaljob, _status, evalns  # noqa: F401  (the module's fixture)
from foresail.api.objects import pod_is_ready
from hack.base.kube import Kube
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS


def _batch_job(kube: Kube, ns: str, name: str) -> dict[str, Any] | None:
    jobs = kube.api("GET", f"/apis/batch/v1/namespaces/{ns}/jobs?labelSelector=foresail.dev/evaljob={name}")["items"]
    return jobs[0] if jobs else None


def _exists(kube: Kube, kind: str, ns: str, name: str) -> bool:
    return kube.kubectl("get", kind, "-n", ns, name, check=False).returncode == 0


def test_a_job_that_finished_while_the_operator_was_down_is_finished_and_cleaned_up(
    operator: Kube, cluster: Cluster, evalns: str  # noqa: F811
) -> None:
    ns = evalns
    operator.apply(_evaljob("gone", mode="dedicated", dedicated={"replicas": 1}), ns)
    wait_for("the job's workers running", lambda: (j := _batch_job(operator, ns, "gone")) and (j.get("status") or {}).get("active"),
             timeout=600, interval=1)  # fmt: skip
    operator.kubectl("scale", "deploy", "-n", SYSTEM_NS, "foresail", "--replicas=0")
    try:
        wait_for("no operator pods", lambda: not operator.pods(SYSTEM_NS, "app.kubernetes.io/name=foresail"), timeout=120)
        wait_for("the workers finished without the operator", lambda: ((_batch_job(operator, ns, "gone") or {}).get("status") or {}).get("succeeded"),
                 timeout=600, interval=1)  # fmt: skip
        assert _status(operator, ns, "gone").get("phase") not in ("Succeeded", "Failed"), "nobody recorded the end yet"
        assert _exists(operator, "fisvc", ns, "gone-eval"), "the eval replicas outlive the job while the operator is down"
    finally:
        operator.kubectl("scale", "deploy", "-n", SYSTEM_NS, "foresail", "--replicas=2")
    t0 = time.monotonic()

    def finished() -> dict[str, Any] | None:
        st = _status(operator, ns, "gone")
        return st if st.get("phase") in ("Succeeded", "Failed") else None

    st = wait_for("the job finished by the operator back", finished, timeout=300, interval=1)
    assert st["phase"] == "Succeeded" and st["results"]["score"] == pytest.approx(0.9), st
    wait_for("the eval replicas collected", lambda: not _exists(operator, "fisvc", ns, "gone-eval"), timeout=180)
    print(f"\n[figure] operator back: job finished and its eval replicas collected in {time.monotonic() - t0:.1f}s")
    print(f"[figure] the finished job's throughput: {st['throughput']}")
    wait_for("the operator back", lambda: len(ps := operator.pods(SYSTEM_NS, "app.kubernetes.io/name=foresail")) == 2 and all(map(pod_is_ready, ps)),
             timeout=180)  # fmt: skip
    # was: EPS 0 (the spans were sent rounded to 0.1 s and this job's 400 items take tens of milliseconds)
    assert st["throughput"]["eps"] > 0 and st["throughput"]["activeSeconds"] > 0, st["throughput"]
