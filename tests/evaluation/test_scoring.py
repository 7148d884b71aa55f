"""Scorers: named cases per kind, plugins by module path and by entry point, and the summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from foresail.evaluation.dataset import Item
from foresail.evaluation.scoring import ItemScore, Outputs, make_scorer, summarize


def item(expected: dict[str, Any] | None = None, label: int | str | None = None, item_id: str = "i1") -> Item:
    return Item(id=item_id, inputs={"x": [0]}, expected=expected, label=label)


def outs(**tensors: Any) -> Outputs:
    return {k: np.asarray(v) for k, v in tensors.items()}


B = np.array([b"cat", b"dog"], dtype=object)

CASES: list[tuple[str, str, dict[str, Any], Item, Outputs, ItemScore]] = [
    ("exact: equal", "exactMatch", {}, item({"y": [1, 2, 3]}), outs(y=[1, 2, 3]), ItemScore(True, 1.0)),
    ("exact: shape-insensitive", "exactMatch", {}, item({"y": [1, 2, 3, 4]}), outs(y=[[1, 2], [3, 4]]), ItemScore(True, 1.0)),
    ("exact: one differs", "exactMatch", {}, item({"y": [1, 2, 3]}), outs(y=[1, 2, 4]), ItemScore(False, 0.0)),
    ("exact: length differs", "exactMatch", {}, item({"y": [1, 2]}), outs(y=[1, 2, 3]), ItemScore(False, 0.0)),
    ("exact: first output by default", "exactMatch", {}, item({"a": [1]}), outs(a=[1], b=[2]), ItemScore(True, 1.0)),
    ("exact: named output", "exactMatch", {"output": "b"}, item({"b": [2]}), outs(a=[1], b=[2]), ItemScore(True, 1.0)),
    ("exact: BYTES as text", "exactMatch", {}, item({"y": ["cat", "dog"]}), {"y": B}, ItemScore(True, 1.0)),
    ("top1: label", "top1", {}, item(label=2), outs(y=[[0.1, 0.2, 0.7]]), ItemScore(True, 1.0)),
    ("top1: wrong label", "top1", {}, item(label=0), outs(y=[0.1, 0.2, 0.7]), ItemScore(False, 0.0)),
    ("top1: label as digits", "top1", {}, item(label="1"), outs(y=[0.1, 0.8, 0.1]), ItemScore(True, 1.0)),
    ("top1: argmax of expected", "top1", {}, item({"y": [0, 0, 1]}), outs(y=[0.1, 0.2, 0.7]), ItemScore(True, 1.0)),
    ("top1: label wins over expected", "top1", {}, item({"y": [1, 0, 0]}, label=2), outs(y=[0, 0, 1]), ItemScore(True, 1.0)),
    (
        "tol: within atol",
        "numericTolerance",
        {"atol": 0.01, "rtol": 0},
        item({"y": [1.0, 2.0]}),
        outs(y=[1.005, 1.995]),
        ItemScore(True, 1.0),
    ),
    (
        "tol: rtol scales",
        "numericTolerance",
        {"atol": 0, "rtol": 0.1},
        item({"y": [100.0, 1.0]}),
        outs(y=[109.0, 1.2]),
        ItemScore(False, 0.5),
    ),
    ("tol: NaN is never close", "numericTolerance", {}, item({"y": [1.0]}), outs(y=[math.nan]), ItemScore(False, 0.0)),
    ("tol: shape-insensitive", "numericTolerance", {}, item({"y": [[1.0], [2.0]]}), outs(y=[1.0, 2.0]), ItemScore(True, 1.0)),
]


@pytest.mark.parametrize(("name", "kind", "kw", "it", "o", "want"), CASES, ids=[c[0] for c in CASES])
def test_builtin_scorers(name: str, kind: str, kw: dict[str, Any], it: Item, o: Outputs, want: ItemScore) -> None:
    assert make_scorer(kind, **kw)(it, o) == want


@pytest.mark.parametrize(
    ("name", "kind", "kw", "it", "o", "message"),
    [
        ("exact without expected", "exactMatch", {}, item(), outs(y=[1]), r"item 'i1': no expected value"),
        ("expected lacks the output", "exactMatch", {}, item({"z": [1]}), outs(y=[1]), r"expected has no 'y' \(it has: z\)"),
        (
            "unknown output",
            "exactMatch",
            {"output": "q"},
            item({"q": [1]}),
            outs(y=[1]),
            r"no output tensor 'q' \(the model returned: y\)",
        ),
        ("no outputs", "top1", {}, item(label=1), {}, r"the model returned no outputs"),
        ("top1 without label or expected", "top1", {}, item(), outs(y=[1, 2]), r"no expected value"),
        (
            "top1 with a class name",
            "top1",
            {},
            item(label="cat"),
            outs(y=[1, 2]),
            r"top1 needs an integer class label, got 'cat'",
        ),
        ("tol sizes differ", "numericTolerance", {}, item({"y": [1.0, 2.0]}), outs(y=[1.0]), r"has 1 values, expected has 2"),
        ("tol on text", "numericTolerance", {}, item({"y": ["a"]}), outs(y=["a"]), r"is not numeric"),
    ],
)
def test_items_a_scorer_cannot_score(name: str, kind: str, kw: dict[str, Any], it: Item, o: Outputs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_scorer(kind, **kw)(it, o)


@pytest.mark.parametrize(
    ("name", "kind", "kw", "message"),
    [
        ("unknown kind", "bleu", {}, r"unknown scorer kind 'bleu', must be one of: exactMatch, top1, numericTolerance, plugin"),
        ("negative atol", "numericTolerance", {"atol": -1.0}, r"atol = -1.0, must be a finite number >= 0"),
        ("NaN rtol", "numericTolerance", {"rtol": math.nan}, r"rtol = nan"),
        ("plugin without a name", "plugin", {}, r"scorer kind plugin needs plugin"),
        ("plugin with a built-in kind", "top1", {"plugin": "a:b"}, r"only used with scorer kind plugin"),
        ("no such module", "plugin", {"plugin": "tests.evaluation.nope:f"}, r"cannot import 'tests.evaluation.nope'"),
        ("no such function", "plugin", {"plugin": "tests.evaluation.plugin_scorers:nope"}, r"has no 'nope'"),
        ("not callable", "plugin", {"plugin": "tests.evaluation.plugin_scorers:NOT_A_FUNCTION"}, r"is a int, not a function"),
        ("half a reference", "plugin", {"plugin": "tests.evaluation.plugin_scorers:"}, r"expected 'module:function'"),
        ("no entry point", "plugin", {"plugin": "no-such-scorer"}, r"no entry point of that name in group 'foresail.scorers'"),
    ],
)
def test_scorers_that_cannot_be_built(name: str, kind: str, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_scorer(kind, **kw)


@pytest.mark.parametrize(
    ("name", "ref", "it", "o", "want"),
    [
        ("returns an ItemScore", "tests.evaluation.plugin_scorers:first_positive", item(), outs(y=[2.5]), ItemScore(True, 2.5)),
        ("returns a bool", "tests.evaluation.plugin_scorers:even_label", item(label=4), outs(y=[0]), ItemScore(True, 1.0)),
        ("dotted attribute", "tests.evaluation.plugin_scorers:Nested.always", item(), outs(y=[0]), ItemScore(True, 1.0)),
    ],
)
def test_plugin_by_module_path(name: str, ref: str, it: Item, o: Outputs, want: ItemScore) -> None:
    assert make_scorer("plugin", plugin=ref)(it, o) == want


def test_a_plugin_returning_something_else_is_a_clear_error() -> None:
    scorer = make_scorer("plugin", plugin="tests.evaluation.plugin_scorers:wrong_type")
    with pytest.raises(TypeError, match=r"returned str; it must return an ItemScore or a bool"):
        scorer(item(), outs(y=[0]))


def test_plugin_by_installed_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "foresail_test_scorers-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: foresail-test-scorers\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[foresail.scorers]\npositive = tests.evaluation.plugin_scorers:first_positive\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    scorer = make_scorer("plugin", plugin="positive")
    assert scorer(item(), outs(y=[-1.0])) == ItemScore(False, -1.0)
    with pytest.raises(ValueError, match=r"\(installed: .*positive.*\)"):
        make_scorer("plugin", plugin="negative")


@pytest.mark.parametrize(
    ("name", "kind", "items", "message"),
    [
        ("all fine", "top1", [item(label=1), item({"y": [1]}, item_id="i2")], None),
        (
            "exact needs expected",
            "exactMatch",
            [item(label=1), item({"y": [1]}, item_id="i2")],
            r"needs expected on every item; 1 item\(s\) have none: 'i1'",
        ),
        (
            "top1 needs one of them",
            "top1",
            [item(item_id=f"n{i}") for i in range(7)],
            r"7 item\(s\) have none: 'n0', 'n1', 'n2', 'n3', 'n4' and 2 more",
        ),
    ],
)
def test_check_finds_unscorable_items_up_front(name: str, kind: str, items: list[Item], message: str | None) -> None:
    scorer = make_scorer(kind)
    if message is None:
        scorer.check(items)
    else:
        with pytest.raises(ValueError, match=message):
            scorer.check(items)


@pytest.mark.parametrize(
    ("name", "scores", "want"),
    [
        ("nothing scored", [], {"scored": 0, "correct": 0, "accuracy": None, "mean": None}),
        (
            "mixed",
            [ItemScore(True, 1.0), ItemScore(False, 0.0), ItemScore(True, 0.5), ItemScore(False, 0.5)],
            {"scored": 4, "correct": 2, "accuracy": 0.5, "mean": 0.5},
        ),
    ],
)
def test_summarize(name: str, scores: list[ItemScore], want: dict[str, Any]) -> None:
    assert summarize(scores) == want


def test_summary_mean_does_not_depend_on_order() -> None:
    values = [0.1] * 10 + [1e16, -1e16]
    a = summarize(ItemScore(True, v) for v in values)
    b = summarize(ItemScore(True, v) for v in reversed(values))
    assert a == b
