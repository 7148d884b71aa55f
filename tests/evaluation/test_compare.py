"""Baseline comparison: named cases (clearly better, clearly worse, too few to decide, identical, unpaired,
numeric scores), McNemar's exact p against hand-computed values, a deterministic bootstrap."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from foresail.evaluation.compare import BOOTSTRAP, MCNEMAR, Comparison, compare, flipped_records, mcnemar_p
from foresail.evaluation.results import canonical


def results(spec: str, prefix: str = "i", start: int = 0) -> list[dict[str, Any]]:
    """One record per character: '1' correct, '0' wrong, 'e' an error, '.' absent."""
    out: list[dict[str, Any]] = []
    for k, ch in enumerate(spec, start):
        rid = f"{prefix}{k:04d}"
        if ch in "01":
            out.append({"id": rid, "shard": 0, "correct": ch == "1", "value": float(ch)})
        elif ch == "e":
            out.append({"id": rid, "shard": 0, "error": "boom"})
    return out


def numeric(values: list[float]) -> list[dict[str, Any]]:
    return [{"id": f"i{k:04d}", "correct": v >= 0.99, "value": v} for k, v in enumerate(values)]


GOOD = "1" * 90 + "0" * 10
# (name, baseline, candidate, test, regressed, worse, better, paired)
CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], str, bool | None, int, int, int]] = [
    ("identical", results(GOOD), results(GOOD), MCNEMAR, False, 0, 0, 100),
    ("clearly worse", results(GOOD), results("1" * 75 + "0" * 25), MCNEMAR, True, 15, 0, 100),
    ("clearly better", results("1" * 75 + "0" * 25), results(GOOD), MCNEMAR, False, 0, 15, 100),
    ("worse and better balance", results(GOOD), results("0" * 10 + "1" * 80 + "1" * 10), MCNEMAR, False, 10, 10, 100),
    ("too few samples to decide", results("1111"), results("1100"), MCNEMAR, None, 2, 0, 4),
    ("four flips worse cannot decide at 0.05", results("1" * 50), results("0" * 4 + "1" * 46), MCNEMAR, None, 4, 0, 50),
    ("five flips worse decide at 0.05", results("1" * 50), results("0" * 5 + "1" * 45), MCNEMAR, True, 5, 0, 50),
    ("nothing paired", results("111"), results("111", prefix="j"), MCNEMAR, None, 0, 0, 0),
    ("unpaired and errors are left out", results("1111e1.1"), results("11.1110e"), MCNEMAR, False, 0, 0, 4),
    ("numeric: same", numeric([0.5] * 40), numeric([0.5] * 40), BOOTSTRAP, False, 0, 0, 40),
    ("numeric: clearly worse", numeric([0.9] * 40), numeric([0.7, 0.8] * 20), BOOTSTRAP, True, 0, 0, 40),
    ("numeric: noise around zero", numeric([0.5] * 40), numeric([0.4, 0.6] * 20), BOOTSTRAP, False, 0, 0, 40),
    ("numeric: too few pairs", numeric([0.9] * 5), numeric([0.1] * 5), BOOTSTRAP, None, 0, 0, 5),
]


@pytest.mark.parametrize(
    ("name", "base", "cand", "test", "regressed", "worse", "better", "paired"), CASES, ids=[c[0] for c in CASES]
)
def test_compare(
    name: str,
    base: list[dict[str, Any]],
    cand: list[dict[str, Any]],
    test: str,
    regressed: bool | None,
    worse: int,
    better: int,
    paired: int,
) -> None:
    c = compare(base, cand)
    assert (c.test, c.regressed, c.flipped_worse, c.flipped_better, c.paired) == (test, regressed, worse, better, paired), (
        c.message
    )
    assert c.message
    json.dumps(c.summary(), allow_nan=False)  # a report is always valid JSON


def test_scores_delta_and_sample() -> None:
    c = compare(results(GOOD), results("1" * 75 + "0" * 25), sample=3)
    assert (c.baseline_score, c.candidate_score) == (0.9, 0.75)
    assert c.delta == pytest.approx(-0.15)
    assert c.flipped_sample == ("i0075", "i0076", "i0077")  # the first by id
    assert len(c.flips) == 15 and all(f.worse for f in c.flips)
    assert c.p_value == pytest.approx(2.0**-15)
    assert "McNemar" in c.message and "15 item(s) flipped worse" in c.message


def test_unpaired_counts() -> None:
    c = compare(results("1111e1.1"), results("11.1110e"))
    # paired: 0, 1, 3, 5; only the baseline scored 2 (absent) and 7 (an error); only the candidate 4 (an error) and 6
    assert (c.paired, c.only_baseline, c.only_candidate, c.errors) == (4, 2, 2, 2)


def test_too_few_says_so() -> None:
    c = compare(results("1111"), results("1100"))
    assert c.regressed is None and "too few" in c.message and "at least 5" in c.message


@pytest.mark.parametrize(
    ("worse", "better", "want"),
    [(0, 0, 1.0), (1, 0, 0.5), (3, 0, 0.125), (0, 3, 1.0), (2, 1, 0.5), (5, 5, 638 / 1024), (8, 2, 56 / 1024)],
)
def test_mcnemar_exact(worse: int, better: int, want: float) -> None:
    assert mcnemar_p(worse, better) == pytest.approx(want)


def test_mcnemar_large_counts_stay_finite() -> None:
    assert 0 < mcnemar_p(6000, 5000) < 1e-15
    assert mcnemar_p(5000, 6000) == pytest.approx(1.0)


def test_bootstrap_is_deterministic_and_seeded() -> None:
    base, cand = numeric([0.5] * 40), numeric([0.3, 0.6, 0.55, 0.45] * 10)
    a, b = compare(base, cand, seed=7), compare(base, cand, seed=7)
    assert a.interval == b.interval and a.interval is not None
    assert a.p_value is None and a.interval[0] <= a.delta <= a.interval[1]  # type: ignore[operator]
    assert compare(base, cand, seed=8).interval != a.interval


def test_bootstrap_non_finite_value_is_undecided() -> None:
    cand = numeric([0.5] * 40)
    cand[3]["value"] = "NaN"
    c = compare(numeric([0.5] * 40), cand)
    assert c.regressed is None and "finite" in c.message


def test_flipped_records_are_canonical_json() -> None:
    c: Comparison = compare(results("10"), results("01"))
    recs = flipped_records(c)
    assert [r["flip"] for r in recs] == ["worse", "better"]
    assert recs[0] == {
        "id": "i0000",
        "flip": "worse",
        "baseline": {"correct": True, "value": 1.0},
        "candidate": {"correct": False, "value": 0.0},
    }
    for r in recs:
        canonical(r)


def test_bad_alpha() -> None:
    with pytest.raises(ValueError, match="alpha"):
        compare([], [], alpha=1.0)
    assert math.isclose(compare([], []).alpha, 0.05)
