"""A TCP black-hole between the operator and kube-apiserver that the liveness probe sees (issue 15, defect 11).

With the chart's defaults the black-holed leader exits first: its Lease's renew deadline (10 s) passes long before
the liveness check's limits (60 s without a pass, 150 s for a status write the watch has not shown) and the probe's
six failures 10 s apart (``test_apiserver_faults.py``). Here the operator is upgraded to a patient lease (renew
deadline 120 s) and a quick liveness check (no pass for 3 loop periods and at least 15 s; a write unseen by the
watch for 30 s; a probe every 2 s, 3 failures), so that the probe fires first: the leader's status writes hang on
the dead link, its autoscaler pass does not complete, ``/healthz`` answers 503 with the reason, the local runtime
records the failed liveness probe (an ``Unhealthy`` Event), kills the container and restarts it (restartCount,
exit code 137) while the Lease is still the leader's. Once the DROP rules are gone a leader acts again and the
service follows a change. The chart's defaults are restored afterwards."""

from __future__ import annotations

import json
import time
from typing import Any

from e2e.chaos.test_apiserver_faults import _after_the_black_hole, _describe, _desired, _leader, _operator_pods, _restarts
from e2e.helpers import http_in_cluster, pause_isvc, pod_log
from hack.base.kube import Kube
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS, upgrade_foresail

QUICK = {
    "lease.durationSeconds": "150",
    "lease.renewDeadlineSeconds": "120",
    "lease.retrySeconds": "2",
    "liveness.stallPeriods": "3",
    "liveness.stallMinSeconds": "15",
    "liveness.watchStallMinSeconds": "30",
    "liveness.probePeriodSeconds": "2",
    "liveness.probeFailureThreshold": "3",
    "autoscaler.statusRefreshSeconds": "2",  # a status write every decision: one hangs soon after the black-hole
}
DEFAULTS = {
    "lease.durationSeconds": "15",
    "lease.renewDeadlineSeconds": "10",
    "lease.retrySeconds": "2",
    "liveness.stallPeriods": "12",
    "liveness.stallMinSeconds": "60",
    "liveness.watchStallMinSeconds": "150",
    "liveness.probePeriodSeconds": "10",
    "liveness.probeFailureThreshold": "6",
    "autoscaler.statusRefreshSeconds": "30",
}


def _pod(kube: Kube, name: str) -> dict[str, Any] | None:
    return next((p for p in _operator_pods(kube) if p["metadata"]["name"] == name), None)


def _liveness_events(kube: Kube, pod: str) -> list[str]:
    items = kube.get("events", "-n", SYSTEM_NS, "--field-selector", f"involvedObject.name={pod},reason=Unhealthy")["items"]
    return [str(e.get("message", "")) for e in items if str(e.get("message", "")).startswith("Liveness probe failed")]


def _last_exit(pod: dict[str, Any]) -> int | None:
    for c in (pod.get("status") or {}).get("containerStatuses") or []:
        if c["name"] == "operator":
            code = ((c.get("lastState") or {}).get("terminated") or {}).get("exitCode")
            return None if code is None else int(code)
    return None


def test_a_black_holed_leader_fails_liveness_and_is_restarted_by_the_probe(operator: Kube, cluster: Cluster, namespace: str) -> None:
    ns = namespace
    upgrade_foresail(cluster, QUICK)
    try:
        operator.kubectl("create", "configmap", "models", "-n", ns, "--from-literal=README=pause")
        operator.create(pause_isvc("kept", min_replicas=1, max_replicas=8), ns)
        wait_for("the service at 1 replica", lambda: _desired(operator, ns, "kept", 1), timeout=240)
        leader = wait_for("a leader among the upgraded operator pods", lambda: _leader(operator), timeout=300)
        pods = _operator_pods(operator)
        env = operator.get("deployment", "-n", SYSTEM_NS, "-l", "app.kubernetes.io/component=operator")["items"][0]
        values = {e["name"]: e.get("value", "") for e in env["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert values["FORESAIL_LEASE_RENEW_DEADLINE_SECONDS"] == "120" and values["FORESAIL_LIVENESS_STALL_MIN_SECONDS"] == "15", values
        print(f"\n[figure] operator pods before the black-hole: {_describe(operator)}")
        lp = _pod(operator, leader)
        assert lp is not None
        ip = lp["status"]["podIP"]
        before = {p["metadata"]["name"]: _restarts(p) for p in pods}
        logged = len(pod_log(cluster, SYSTEM_NS, leader, "operator"))
        events_before = len(_liveness_events(operator, leader))
        code, body = http_in_cluster(cluster, f"http://{ip}:8080/healthz")
        assert (code, body) == (200, "ok\n"), (code, body)

        t0 = time.monotonic()
        for p in pods:
            cluster.black_hole_apiserver(p)
        try:
            seen: dict[str, Any] = {}

            def unhealthy_then_restarted() -> int | None:
                if "body" not in seen:
                    try:
                        code, body = http_in_cluster(cluster, f"http://{ip}:8080/healthz", timeout=2.0)
                    except (OSError, TimeoutError):  # the container being killed
                        code, body = 0, ""
                    if code == 503:
                        seen["body"], seen["at"] = body, time.monotonic() - t0
                p = _pod(operator, leader)
                return _restarts(p) if p is not None and _restarts(p) > before[leader] else None

            wait_for(f"the black-holed leader {leader} unhealthy, then restarted", unhealthy_then_restarted, timeout=300, interval=0.5)
            restarted = time.monotonic() - t0
            print(f"\n[figure] /healthz of the black-holed leader failed after {seen.get('at', float('nan')):.1f}s "
                  f"({seen.get('body', '').strip()!r}); restarted after {restarted:.1f}s")  # fmt: skip
            assert "body" in seen, "the leader's /healthz never answered 503 before its restart"
            assert seen["body"].startswith(("unhealthy: autoscaler stalled:", "unhealthy: watch stalled:")), seen["body"]
            log = pod_log(cluster, SYSTEM_NS, leader, "operator")[logged:]
            assert "unhealthy: " in log and "stalled" in log, log[-4000:]
            assert "lost lease" not in log, f"the leader exited on its lease before the probe: {log[-4000:]}"
            events = wait_for("the runtime's Unhealthy event of the liveness probe",
                              lambda: _liveness_events(operator, leader)[events_before:] or None, timeout=60)  # fmt: skip
            print(f"[figure] events of {leader}: Unhealthy {events[-1]!r}")
            lp = _pod(operator, leader)
            assert lp is not None and _last_exit(lp) == 137, f"killed by the probe (137), not an exit: {lp and lp['status']}"
        finally:
            for p in _operator_pods(operator):
                cluster.black_hole_apiserver(p, on=False)
        recovered = _after_the_black_hole(operator, ns)
        print(f"[figure] black-hole to liveness failure {seen['at']:.1f}s, to restart {restarted:.1f}s; after the rules were removed a "
              f"leader and the service scaled in {recovered:.1f}s ({time.monotonic() - t0:.1f}s from the black-hole); restarts {before} -> "
              f"{ {p['metadata']['name']: _restarts(p) for p in _operator_pods(operator)} }")  # fmt: skip
    finally:
        upgrade_foresail(cluster, DEFAULTS)
        wait_for("a leader with the chart's defaults", lambda: _leader(operator), timeout=300)
        print(f"[figure] restored: {_describe(operator)}; {json.dumps(DEFAULTS)}")
