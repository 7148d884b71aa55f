"""The JSON log lines: every field, and the object they are about from kopf's reference or the message."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from foresail.controllers.logs import JsonFormatter

CASES: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
    ("the operator's own prefix", "team-a/resnet: ScaledUp 1 -> 3", {}, {"namespace": "team-a", "name": "resnet"}),
    ("a dotted name", "team-a/bert.v2: warm", {}, {"namespace": "team-a", "name": "bert.v2"}),
    ("kopf's per-object logger", "Handler succeeded.", {"k8s_ref": {"namespace": "team-b", "name": "nightly", "kind": "EvalJob"}}, {"namespace": "team-b", "name": "nightly", "kind": "EvalJob"}),
    ("a cluster-scoped object", "arbitrated", {"k8s_ref": {"name": "a", "kind": "Tenant"}}, {"name": "a", "kind": "Tenant"}),
    ("about no object", "autoscaler pass failed: x", {}, {}),
    ("a path is not an object", "loaded /etc/foresail/x: ok", {}, {}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "message", "extra", "want"), CASES, ids=[c[0] for c in CASES])
def test_json_lines(name: str, message: str, extra: dict[str, Any], want: dict[str, str]) -> None:
    record = logging.LogRecord("foresail.autoscaler", logging.INFO, __file__, 1, message, (), None)
    record.created = 1_800_000_000.25
    for k, v in extra.items():
        setattr(record, k, v)
    line = json.loads(JsonFormatter().format(record))
    assert line == {"time": "2027-01-15T08:00:00.250Z", "level": "INFO", "logger": "foresail.autoscaler", "message": message, **want}, name


def test_an_exception_is_one_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("foresail", logging.ERROR, __file__, 1, "team-a/x: failed", (), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["exception"].endswith("ValueError: boom") and "\n" not in JsonFormatter().format(record)
