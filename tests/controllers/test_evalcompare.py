"""foresail eval-compare: the two results files -> flipped.jsonl, compare.json and the report (a fake Kube)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from foresail.controllers.evalcompare import run
from foresail.evaluation.results import canonical


class FakeKube:
    def __init__(self, fail: int = 0) -> None:
        self.patches: list[tuple[str, str, str, dict[str, Any]]] = []
        self.fail = fail

    def merge_patch(self, kind: str, ns: str, name: str, patch: dict[str, Any]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("apiserver away")
        self.patches.append((kind, ns, name, patch))


def _write(d: Path, spec: str) -> None:
    d.mkdir(parents=True)
    (d / "results.jsonl").write_bytes(b"".join(canonical({"id": f"i{k}", "correct": c == "1", "value": float(c)}) for k, c in enumerate(spec)))


def config(tmp_path: Path) -> dict[str, Any]:
    return {"namespace": "ns", "progressConfigMap": "cand-progress", "key": "compare", "id": "cid", "alpha": 0.05, "seed": 0,
            "baselineDir": str(tmp_path / "base"), "candidateDir": str(tmp_path / "cand")}  # fmt: skip


def test_writes_the_flipped_items_and_reports_the_summary(tmp_path: Path) -> None:
    _write(tmp_path / "base", "1111111111")
    _write(tmp_path / "cand", "0111111110")
    kube = FakeKube(fail=1)
    assert run(config(tmp_path), kube, sleep=lambda s: None) == 0  # type: ignore[arg-type]
    flipped = [json.loads(line) for line in (tmp_path / "cand/flipped.jsonl").read_text().splitlines()]
    assert [(r["id"], r["flip"]) for r in flipped] == [("i0", "worse"), ("i9", "worse")]
    assert json.loads((tmp_path / "cand/compare.json").read_text())["flippedWorse"] == 2
    ((kind, ns, name, patch),) = kube.patches
    assert (kind, ns, name) == ("ConfigMap", "ns", "cand-progress")
    report = json.loads(patch["data"]["compare"])
    assert report["id"] == "cid" and report["summary"]["flippedWorse"] == 2 and report["summary"]["regressed"] is None


def test_a_baseline_without_results_is_reported_as_missing(tmp_path: Path) -> None:
    _write(tmp_path / "cand", "1")
    (tmp_path / "base").mkdir()
    kube = FakeKube()
    assert run(config(tmp_path), kube) == 0  # type: ignore[arg-type]
    report = json.loads(kube.patches[0][3]["data"]["compare"])
    assert report["missing"] == "baseline" and "results.jsonl" in report["error"]
    assert not (tmp_path / "cand/flipped.jsonl").exists()


def test_an_unwritable_report_exits_non_zero(tmp_path: Path) -> None:
    _write(tmp_path / "base", "1")
    _write(tmp_path / "cand", "1")
    assert run(config(tmp_path), FakeKube(fail=99), sleep=lambda s: None) == 1  # type: ignore[arg-type]
