"""``foresail crds apply``: creates the missing CRDs, replaces the others keeping their metadata, and refuses
(writing nothing) CRDs that would break stored objects."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, cast

import pytest

from foresail.api.crd import crds
from foresail.cli.crds import Incompatible, apply_crds, established, load
from foresail.clients.kube import ApiException, Kube

REPO = Path(__file__).resolve().parents[2]


class FakeCrds:
    """The CRD endpoints of an apiserver: get, create (POST) and update (PUT, resourceVersion checked)."""

    def __init__(self, installed: list[dict[str, Any]], conflicts: int = 0) -> None:
        self.objs = {c["metadata"]["name"]: self._stored(c, 1) for c in installed}
        self.writes: list[tuple[str, str]] = []
        self.conflicts = conflicts

    @staticmethod
    def _stored(c: dict[str, Any], gen: int, rv: int = 1) -> dict[str, Any]:
        out = copy.deepcopy(c)
        out["metadata"] = {**out["metadata"], "generation": gen, "resourceVersion": str(rv)}
        return out

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objs.get(name))

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("POST", obj["metadata"]["name"]))
        self.objs[obj["metadata"]["name"]] = self._stored(obj, 1)
        return obj

    def request(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        name = path.rsplit("/", 1)[-1]
        cur = self.objs[name]
        if self.conflicts:
            self.conflicts -= 1
            cur["metadata"]["resourceVersion"] = str(int(cur["metadata"]["resourceVersion"]) + 1)
            raise ApiException(status=409, reason="Conflict")
        assert method == "PUT" and body["metadata"]["resourceVersion"] == cur["metadata"]["resourceVersion"]
        self.writes.append((method, name))
        gen = cur["metadata"]["generation"] + (body["spec"] != cur["spec"])
        self.objs[name] = self._stored(body, gen, int(cur["metadata"]["resourceVersion"]) + 1)
        return self.objs[name]


def _released() -> list[dict[str, Any]]:
    return load(REPO / "tests/fixtures/released/foresail/crds")


def test_the_chart_crds_replace_the_released_ones_keeping_metadata() -> None:
    old = _released()
    old[0]["metadata"]["labels"] = {"team": "platform"}
    fake = FakeCrds(old)
    lines: list[str] = []
    apply_crds(cast(Kube, fake), load(REPO / "charts/foresail/crds"), lines.append)
    assert sorted(fake.writes) == sorted(("PUT", c["metadata"]["name"]) for c in old)
    assert fake.objs[old[0]["metadata"]["name"]]["metadata"]["labels"] == {"team": "platform"}
    isvc = fake.objs["inferenceservices.foresail.dev"]
    assert "rollout" in isvc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert "inferenceservices.foresail.dev: replaced (generation 1 -> 2)" in lines
    assert "scalingpolicies.foresail.dev: unchanged (generation 1 -> 1)" in lines


def test_missing_crds_are_created_and_a_conflict_is_retried() -> None:
    fake = FakeCrds(_released()[1:], conflicts=1)
    apply_crds(cast(Kube, fake), list(crds().values()), lambda _: None)
    assert ("POST", "evaljobs.foresail.dev") in fake.writes
    assert len(fake.writes) == 4


def test_a_downgrade_is_refused_and_nothing_written() -> None:
    fake = FakeCrds(list(crds().values()))
    with pytest.raises(Incompatible, match=r"inferenceservices.foresail.dev v1alpha1: .spec.rollout: removed"):
        apply_crds(cast(Kube, fake), _released(), lambda _: None)
    assert fake.writes == []


def test_established_needs_the_condition_and_the_names() -> None:
    crd: dict[str, Any] = {"spec": {"names": {"kind": "Tenant"}}, "status": {"acceptedNames": {"kind": "Tenant"}, "conditions": [
        {"type": "Established", "status": "True"}, {"type": "NamesAccepted", "status": "True"}]}}  # fmt: skip
    assert established(crd)
    crd["status"]["conditions"][0]["status"] = "False"
    assert not established(crd)
