"""The Kubernetes client's status writes against the fake apiserver: no read when the pass listed the
object, nothing sent when nothing changes, a conflict re-read; and the merge-patch no-op test."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.clients.kube import merge_noop
from tests.controllers.objects import isvc
from tests.fakes.apiserver import FakeApiServer


@pytest.mark.parametrize(
    ("name", "current", "patch", "want"),
    [
        ("equal scalars", {"a": 1}, {"a": 1}, True),
        ("a changed scalar", {"a": 1}, {"a": 2}, False),
        ("a new key", {"a": 1}, {"b": 1}, False),
        ("keys the patch does not name are left", {"a": 1, "b": 2}, {"a": 1}, True),
        ("null deletes a key that is there", {"a": 1}, {"a": None}, False),
        ("null of an absent key", {}, {"a": None}, True),
        ("nested: equal", {"o": {"x": 1, "y": 2}}, {"o": {"x": 1}}, True),
        ("nested: changed", {"o": {"x": 1}}, {"o": {"x": 3}}, False),
        ("lists are replaced whole", {"l": [1, 2]}, {"l": [1]}, False),
        ("equal lists", {"l": [{"type": "Ready"}]}, {"l": [{"type": "Ready"}]}, True),
        ("an object over a scalar", {"o": 1}, {"o": {"x": 1}}, False),
    ],
)
def test_merge_noop(name: str, current: dict[str, Any], patch: dict[str, Any], want: bool) -> None:
    assert merge_noop(current, patch) is want, name


def test_a_status_write_on_the_listed_object_sends_only_what_changes(api: FakeApiServer) -> None:
    api.put(isvc("resnet", "team-a"))
    kube = api.kube()
    (listed,) = kube.list("InferenceService", "team-a")
    sent = kube.sent.copy()
    assert kube.update_status("InferenceService", "team-a", "resnet", lambda fresh: {"desiredReplicas": 3}, listed=listed)
    assert kube.sent - sent == {"PATCH": 1}, "no read: the listed object's resourceVersion guards the write"
    (listed,) = kube.list("InferenceService", "team-a")
    sent = kube.sent.copy()
    assert kube.update_status("InferenceService", "team-a", "resnet", lambda fresh: {"desiredReplicas": 3}, listed=listed)
    assert kube.sent - sent == {}, "nothing changes: nothing is sent"


def test_a_stale_listed_object_is_read_again_on_conflict(api: FakeApiServer) -> None:
    api.put(isvc("resnet", "team-a"))
    kube = api.kube()
    (stale,) = kube.list("InferenceService", "team-a")
    kube.update_status("InferenceService", "team-a", "resnet", lambda fresh: {"replicas": 1})  # another writer
    sent = kube.sent.copy()
    assert kube.update_status("InferenceService", "team-a", "resnet", lambda fresh: {"desiredReplicas": 2}, listed=stale)
    assert kube.sent - sent == {"PATCH": 2, "GET": 1}
    st = api.get("InferenceService", "team-a", "resnet")["status"]  # type: ignore[index]
    assert (st["replicas"], st["desiredReplicas"]) == (1, 2)
