"""What the local runtime reports of a pod: phase, readiness with gates, restarts with back-off, probe results."""

from __future__ import annotations

from typing import Any

import pytest

from hack.testbed.runtime.containers import BACKOFF_INITIAL_S, BACKOFF_MAX_S, Container, exit_code
from hack.testbed.runtime.probes import Probe, container_port
from hack.testbed.runtime.status import Conditions, pod_phase, pod_status
from hack.testbed.runtime.worker import pre_stop_sleep

NOW = "2026-01-02T03:04:05Z"


def container(state: dict[str, Any] | None = None, done: bool = False, restarts: int = 0, probe: bool = False) -> Container:
    spec: dict[str, Any] = {"name": "triton", "image": "nvcr.io/nvidia/tritonserver:24.08-py3"}
    if probe:
        spec["readinessProbe"] = {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "failureThreshold": 2}
    c = Container(spec)
    if state is not None:
        c.state = state
    c.done, c.restart_count = done, restarts
    return c


def pod(gates: list[str] = (), conditions: dict[str, str] | None = None) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "0123456789"},
        "spec": {"containers": [], "readinessGates": [{"conditionType": g} for g in gates]},
        "status": {"conditions": [{"type": t, "status": s} for t, s in (conditions or {}).items()]},
    }


RUNNING = {"running": {"startedAt": NOW}}


@pytest.mark.parametrize(
    ("name", "containers", "phase"),
    [
        ("nothing started yet", [container()], "Pending"),
        ("one running", [container(RUNNING)], "Running"),
        (
            "crash-looping after a restart counts as running",
            [container({"waiting": {"reason": "CrashLoopBackOff"}}, restarts=1)],
            "Running",
        ),
        ("all done with exit 0", [container({"terminated": {"exitCode": 0}}, done=True)], "Succeeded"),
        (
            "one done with exit 3",
            [container({"terminated": {"exitCode": 0}}, done=True), container({"terminated": {"exitCode": 3}}, done=True)],
            "Failed",
        ),
        ("one done, one still running", [container({"terminated": {"exitCode": 0}}, done=True), container(RUNNING)], "Running"),
    ],
)
def test_phase(name: str, containers: list[Container], phase: str) -> None:
    assert pod_phase(containers) == phase, name


def ready_condition(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


@pytest.mark.parametrize(
    ("name", "gates", "present", "ready", "reason"),
    [
        ("no gates: ready with its containers", [], {}, True, ""),
        ("a gate not set yet", ["foresail.dev/warm"], {}, False, "ReadinessGatesNotReady"),
        ("a gate False", ["foresail.dev/warm"], {"foresail.dev/warm": "False"}, False, "ReadinessGatesNotReady"),
        ("a gate True", ["foresail.dev/warm"], {"foresail.dev/warm": "True"}, True, ""),
    ],
)
def test_ready_needs_every_gate(name: str, gates: list[str], present: dict[str, str], ready: bool, reason: str) -> None:
    c = container(RUNNING)
    c.proc = object()  # type: ignore[assignment]  # a process runs
    st = pod_status(pod(gates, present), "0123456789", [c], Conditions(), sandbox=True, ip="10.1.32.1", host_ip="10.1.0.1",
                    start_time=NOW, now=NOW)  # fmt: skip
    r = ready_condition(st)
    assert (r["status"] == "True", r["reason"]) == (ready, reason), name
    assert st["podIP"] == "10.1.32.1" and st["containerStatuses"][0]["ready"] is True


def test_a_container_without_its_readiness_probe_passing_is_not_ready() -> None:
    c = container(RUNNING, probe=True)
    c.proc = object()  # type: ignore[assignment]
    st = pod_status(pod(), "0123456789", [c], Conditions(), sandbox=True, ip=None, host_ip="h", start_time=NOW, now=NOW)
    assert ready_condition(st)["reason"] == "ContainersNotReady" and "podIP" not in st


def test_transition_times_change_only_with_the_status() -> None:
    conds = Conditions()
    first = conds.make("Ready", False, "t1")
    assert conds.make("Ready", False, "t2")["lastTransitionTime"] == first["lastTransitionTime"] == "t1"
    assert conds.make("Ready", True, "t3")["lastTransitionTime"] == "t3"


@pytest.mark.parametrize(
    ("name", "policy", "rc", "restarts", "state"),
    [
        ("Always restarts even after success", "Always", 0, True, "waiting"),
        ("OnFailure restarts a failure", "OnFailure", 1, True, "waiting"),
        ("OnFailure ends on success", "OnFailure", 0, False, "terminated"),
        ("Never ends on failure", "Never", 3, False, "terminated"),
    ],
)
def test_exit_and_restart_policy(name: str, policy: str, rc: int, restarts: bool, state: str) -> None:
    c = container(RUNNING)
    assert c.exited(rc, policy, NOW, mono=100.0) == restarts, name
    assert state in c.state and c.done == (not restarts)
    assert c.restart_count == (1 if restarts else 0)


def test_back_off_doubles_to_its_maximum_and_starts_over_after_good_running() -> None:
    c = container(RUNNING)
    waits = []
    for _ in range(8):
        c.started_mono = 0.0
        c.exited(1, "Always", NOW, mono=10.0)
        waits.append(c.next_start - 10.0)
    assert waits[:3] == [BACKOFF_INITIAL_S, 2 * BACKOFF_INITIAL_S, 4 * BACKOFF_INITIAL_S]
    assert max(waits) == BACKOFF_MAX_S
    c.started_mono = 0.0
    c.exited(1, "Always", NOW, mono=10_000.0)  # ran for longer than the reset period
    assert c.next_start - 10_000.0 == BACKOFF_INITIAL_S
    assert c.last_state["terminated"]["exitCode"] == 1


@pytest.mark.parametrize(("rc", "code"), [(0, 0), (3, 3), (-9, 137), (-15, 143)])
def test_exit_codes_of_signals(rc: int, code: int) -> None:
    assert exit_code(rc) == code


def test_probe_thresholds_and_schedule() -> None:
    p = Probe({"periodSeconds": 2, "initialDelaySeconds": 5, "failureThreshold": 2, "successThreshold": 2})
    assert not p.due(now=4.0, started=0.0), "within the initial delay"
    assert p.due(now=5.0, started=0.0)
    assert not p.record(True, 5.0) and not p.ok, "one success of two"
    assert not p.due(now=6.0, started=0.0), "within the period"
    assert not p.record(True, 7.0) and p.ok
    assert not p.record(False, 9.0) and p.ok, "one failure of two"
    assert p.record(False, 11.0) and not p.ok
    p.reset()
    assert (p.successes, p.failures, p.ok, p.last) == (0, 0, False, 0.0)


def test_probe_ports_by_number_or_name() -> None:
    c = {"ports": [{"name": "http", "containerPort": 8000}]}
    assert container_port(c, 8002) == 8002 and container_port(c, "8001") == 8001 and container_port(c, "http") == 8000
    with pytest.raises(ValueError, match="no container port named 'grpc'"):
        container_port(c, "grpc")


def _init(state: dict[str, Any], done: bool) -> Container:
    c = Container({"name": "storage-init", "image": "ghcr.io/foresail/foresail:0.1.0"})
    c.state, c.done = state, done
    return c


@pytest.mark.parametrize(
    ("name", "init", "phase", "initialized"),
    [
        ("init running", _init(RUNNING, False), "Pending", "False"),
        ("init crash-looping", _init({"waiting": {"reason": "CrashLoopBackOff"}}, False), "Pending", "False"),
        ("init succeeded", _init({"terminated": {"exitCode": 0, "message": "digest=x"}}, True), "Running", "True"),
        ("init failed for good (Never)", _init({"terminated": {"exitCode": 1}}, True), "Failed", "False"),
    ],
)
def test_init_containers(name: str, init: Container, phase: str, initialized: str) -> None:
    main = container(RUNNING if init.succeeded else {"waiting": {"reason": "PodInitializing"}})
    st = pod_status(
        pod(), "0123456789", [main], Conditions(), sandbox=True, ip="10.0.0.2", host_ip="10.0.0.1",
        start_time=NOW, now=NOW, init_containers=[init],
    )  # fmt: skip
    assert st["phase"] == phase, name
    assert next(c for c in st["conditions"] if c["type"] == "Initialized")["status"] == initialized
    assert st["initContainerStatuses"][0]["name"] == "storage-init"
    assert st["initContainerStatuses"][0]["state"] == init.state


def test_termination_message_recorded() -> None:
    c = container(RUNNING)
    c.started_at = NOW
    assert c.exited(1, "OnFailure", NOW, 0.0, message="Forbidden: 403")  # restarts after the back-off
    assert c.last_state["terminated"]["message"] == "Forbidden: 403"
    assert c.exited(0, "OnFailure", NOW, 0.0, message="digest=x") is False
    assert c.state["terminated"]["message"] == "digest=x"
    assert c.succeeded


@pytest.mark.parametrize(
    ("name", "spec", "seconds"),
    [
        ("no lifecycle", {"name": "c"}, 0.0),
        ("a postStart only", {"lifecycle": {"postStart": {"sleep": {"seconds": 3}}}}, 0.0),
        ("a preStop sleep", {"lifecycle": {"preStop": {"sleep": {"seconds": 5}}}}, 5.0),
        ("a preStop exec is not run", {"lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}}}, 0.0),
    ],
)
def test_the_pre_stop_sleep_the_runtime_honours(name: str, spec: dict[str, Any], seconds: float) -> None:
    assert pre_stop_sleep(spec) == seconds, name
