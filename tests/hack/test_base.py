"""Shared helpers of hack/ and e2e/: waiting for a state, the API helper's manifests, log lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hack.base.kube import Credentials, Kube, KubeError, _text
from hack.base.log import logger
from hack.base.netns import black_hole
from hack.base.wait import WaitTimeout, wait_for


def test_wait_returns_the_first_truthy_value_and_remembers_errors() -> None:
    answers = iter([None, ValueError("not yet"), 0, "done"])

    def fn() -> str | None:
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a  # type: ignore[return-value]

    assert wait_for("x", fn, timeout=5, interval=0) == "done"


def test_wait_names_what_and_the_last_answer() -> None:
    with pytest.raises(WaitTimeout, match=r"waiting for the thing; last: ValueError\('nope'\)"):
        wait_for("the thing", lambda: (_ for _ in ()).throw(ValueError("nope")), timeout=0.05, interval=0.01)


def test_wait_gives_up_when_told_why() -> None:
    with pytest.raises(RuntimeError, match="gave up waiting for etcd health: etcd exited"):
        wait_for("etcd health", lambda: False, timeout=60, abort=lambda: "etcd exited")


def test_manifests_go_to_kubectl_as_json() -> None:
    assert json.loads(_text({"kind": "ConfigMap"})) == {"kind": "ConfigMap"}
    assert json.loads(_text([{"kind": "A"}, {"kind": "B"}])) == {
        "apiVersion": "v1",
        "kind": "List",
        "items": [{"kind": "A"}, {"kind": "B"}],
    }
    assert _text("kind: X\n") == "kind: X\n"


def test_api_errors_carry_the_code_and_the_apiserver_message() -> None:
    e = KubeError("GET", "/api/v1/x", 404, json.dumps({"message": 'configmaps "x" not found'}))
    assert e.code == 404 and e.message == 'configmaps "x" not found' and "HTTP 404" in str(e)
    assert KubeError("GET", "/x", 500, "plain text").message == "plain text"


def test_kubectl_command_line() -> None:
    k = Kube(Credentials("https://h:1", Path("ca"), Path("c"), Path("k")), Path("/run/kc"), Path("/tools/kubectl"))
    assert k.kubectl_cmd("get", "pods") == ["/tools/kubectl", "--kubeconfig=/run/kc", "get", "pods"]


def test_log_lines_name_the_program(capsys: pytest.CaptureFixture[str]) -> None:
    logger("cluster")("up")
    logger("bench", stderr=True)("note")
    out, err = capsys.readouterr()
    assert out.startswith("[cluster ") and out.endswith("] up\n")
    assert err.startswith("[bench ") and err.endswith("] note\n")


def test_the_black_hole_touches_only_the_testbeds_namespaces() -> None:
    with pytest.raises(ValueError, match="not the testbed's"):
        black_hole("some-host-netns", "10.0.0.1", 6443)
