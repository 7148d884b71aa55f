"""A second writer of replicas, from managedFields (pure): named cases, the clock passed in."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.scaling.writers import QUIET_S, Seen, contest_condition, keep_intent, replica_writers

OWN = ("foresail", "foresail-autoscaler")
REPLICAS: dict[str, Any] = {"f:spec": {"f:replicas": {}}}


def entry(manager: str, fields: dict[str, Any], subresource: str | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"manager": manager, "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": fields}
    if subresource:
        e["subresource"] = subresource
    return e


WRITERS: list[tuple[str, list[dict[str, Any]], list[str]]] = [
    ("no managedFields", [], []),
    ("only Foresail's managers", [entry("foresail", {"f:spec": {"f:template": {}}}), entry("foresail-autoscaler", REPLICAS, "scale")], []),
    ("kubectl scale", [entry("foresail", {"f:spec": {"f:template": {}}}), entry("kubectl", REPLICAS, "scale")], ["kubectl (/scale)"]),
    ("an HPA", [entry("kube-controller-manager", REPLICAS, "scale")], ["kube-controller-manager (/scale)"]),
    ("kubectl edit of the replicas", [entry("kubectl-edit", REPLICAS)], ["kubectl-edit"]),
    ("another manager of other fields only", [entry("kubectl-edit", {"f:spec": {"f:paused": {}}})], []),
    ("two writers, sorted", [entry("kubectl", REPLICAS, "scale"), entry("argocd", REPLICAS)], ["argocd", "kubectl (/scale)"]),
]


@pytest.mark.parametrize(("name", "managed", "want"), WRITERS, ids=[c[0] for c in WRITERS])
def test_replica_writers(name: str, managed: list[dict[str, Any]], want: list[str]) -> None:
    assert replica_writers({"metadata": {"managedFields": managed}}, OWN) == want, name


@pytest.mark.parametrize(
    ("name", "writers", "intent", "replicas"),
    [("sole writer: as it is", [], 3, 7), ("another writer: Foresail's intent", ["kubectl"], 3, 3), ("no intent yet", ["kubectl"], None, 7)],
)
def test_the_decision_reads_foresails_intent(name: str, writers: list[str], intent: int | None, replicas: int) -> None:
    assert keep_intent({"spec": {"replicas": 7}}, writers, intent)["spec"]["replicas"] == replicas, name


T = 1_800_000_000.0
CONTESTS: list[tuple[str, list[str], Seen | None, float, str, bool]] = [
    # name, writers now, seen before, now, condition, announced
    ("never contested: no condition", [], None, T, "", False),
    ("kubectl appears", ["kubectl (/scale)"], None, T, "True/OtherWriter", True),
    ("the same writer again", ["kubectl (/scale)"], (("kubectl (/scale)",), T - 30), T, "True/OtherWriter", False),
    ("another writer", ["argocd"], (("kubectl (/scale)",), T - 30), T, "True/OtherWriter", True),
    ("taken back, recently written", [], (("kubectl (/scale)",), T - 30), T, "True/OtherWriter", False),
    ("quiet for longer than QUIET_S", [], (("kubectl (/scale)",), T - QUIET_S - 1), T, "", False),
]


def test_the_condition_turns_false_once_quiet() -> None:
    contested = contest_condition([], ["kubectl"], None, 3, 1, T).conditions
    quiet = contest_condition(contested, [], (("kubectl",), T), 3, 1, T + QUIET_S + 1)
    assert [f"{x.status}/{x.reason}" for x in quiet.conditions] == ["False/SoleWriter"]
    assert quiet.seen is None and quiet.announce is None


@pytest.mark.parametrize(("name", "writers", "seen", "now", "want", "announced"), CONTESTS, ids=[c[0] for c in CONTESTS])
def test_contested_condition(name: str, writers: list[str], seen: Seen | None, now: float, want: str, announced: bool) -> None:
    c = contest_condition([], writers, seen, 3, 1, now)
    assert "/".join(f"{x.status}/{x.reason}" for x in c.conditions) == want, name
    assert (c.announce is not None) == announced, name
    if want.startswith("True"):
        assert "Foresail keeps its own (3)" in c.conditions[0].message
