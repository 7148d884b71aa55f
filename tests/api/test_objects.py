"""Helpers on listed Kubernetes objects: named cases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from foresail.api.objects import (
    condition,
    condition_status,
    format_rfc3339,
    group_by_label,
    is_condition_true,
    parse_rfc3339,
    pod_is_live,
    pod_is_ready,
)


def pod(phase: str = "Running", ready: str | None = "True", deleting: bool = False, labels: dict[str, str] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": "p", "namespace": "ns", "labels": labels or {}}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    conds = [] if ready is None else [{"type": "Ready", "status": ready}]
    return {"metadata": md, "status": {"phase": phase, "conditions": conds}}


@pytest.mark.parametrize(
    ("name", "obj", "live", "ready"),
    [
        ("running and ready", pod(), True, True),
        ("running, not ready", pod(ready="False"), True, False),
        ("pending without conditions", pod("Pending", ready=None), True, False),
        ("being deleted", pod(deleting=True), False, True),
        ("succeeded", pod("Succeeded", ready="False"), False, False),
        ("failed", pod("Failed", ready="False"), False, False),
        ("no status at all", {"metadata": {}}, True, False),
    ],
)
def test_pod_states(name: str, obj: dict[str, Any], live: bool, ready: bool) -> None:
    assert pod_is_live(obj) is live, name
    assert pod_is_ready(obj) is ready, name


def test_condition_lookup() -> None:
    obj = {"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "Unknown"}]}}
    assert condition(obj, "A") == {"type": "A", "status": "True"}
    assert condition(obj, "C") is None
    assert condition(None, "A") is None
    assert condition_status(obj, "B") == "Unknown"
    assert is_condition_true(obj, "A") and not is_condition_true(obj, "B") and not is_condition_true(obj, "C")
    got = condition(obj, "A")
    assert got is not None
    got["status"] = "False"  # a copy: the object is untouched
    assert is_condition_true(obj, "A")


def test_group_by_label_keys_by_namespace_and_value() -> None:
    a1 = pod(labels={"svc": "a"})
    a2 = pod(labels={"svc": "a"})
    b = pod(labels={"svc": "b"})
    other = pod(labels={"x": "y"})
    got = group_by_label([a1, a2, b, other], "svc")
    assert got == {("ns", "a"): [a1, a2], ("ns", "b"): [b]}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("Z suffix", "2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()),
        ("fraction (MicroTime)", "2026-01-02T03:04:05.250000Z", datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC).timestamp()),
        ("offset", "2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()),
    ],
)
def test_parse_rfc3339(name: str, text: str, expected: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(expected), name


def test_rfc3339_round_trip_and_none() -> None:
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert format_rfc3339(t) == "2026-01-02T03:04:05Z"
    assert format_rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert parse_rfc3339(format_rfc3339(t)) == t
    assert parse_rfc3339(None) is None
