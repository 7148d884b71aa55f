"""The rollout gates (pure): named cases of the latency gate and of the error gate's exact test."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from fractions import Fraction

import pytest

from foresail.api.rollout import GateName
from foresail.rollout.gates import error_gate, fisher_greater, latency_gate, sequential_p

# name, canary p99, stable p99, SLO, margin %, canary requests, min requests -> passed, message
LATENCY: list[tuple[str, float | None, float | None, float, float, int, int, bool | None, str]] = [
    ("clearly better", 40.0, 60.0, 100.0, 20.0, 500, 200, True, "canary p99 40 ms <= stable 60 ms x 1.20 = 72 ms and <= SLO 100 ms"),
    ("within the margin", 70.0, 60.0, 100.0, 20.0, 500, 200, True, "canary p99 70 ms <= stable 60 ms x 1.20 = 72 ms and <= SLO 100 ms"),
    ("clearly worse: 3x the stable p99", 182.0, 61.0, 200.0, 20.0, 500, 200, False, "canary p99 182 ms > stable 61 ms x 1.20 = 73 ms"),
    ("SLO breach though near the stable p99", 120.0, 110.0, 100.0, 20.0, 500, 200, False, "canary p99 120 ms > SLO 100 ms"),
    ("margin 0: any excess fails", 61.0, 60.0, 100.0, 0.0, 500, 200, False, "canary p99 61 ms > stable 60 ms x 1.00 = 60 ms"),
    ("too few samples to decide", 500.0, 60.0, 100.0, 20.0, 199, 200, None, "canary served 199 of 200 requests needed to judge p99"),
    ("no p99 measured", None, 60.0, 100.0, 20.0, 500, 200, None, "no p99 measured for the canary yet"),
    ("NaN p99 is no measurement", math.nan, 60.0, 100.0, 20.0, 500, 200, None, "no p99 measured for the canary yet"),
    ("no stable p99: the SLO alone", 80.0, None, 100.0, 20.0, 500, 200, True, "canary p99 80 ms <= SLO 100 ms (no p99 of the stable revision to compare with)"),
    ("no stable p99, SLO breach", 130.0, None, 100.0, 20.0, 500, 200, False, "canary p99 130 ms > SLO 100 ms"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "canary", "stable", "slo", "margin", "requests", "minimum", "passed", "message"), LATENCY, ids=[c[0] for c in LATENCY]
)
def test_latency_gate(
    name: str,
    canary: float | None,
    stable: float | None,
    slo: float,
    margin: float,
    requests: int,
    minimum: int,
    passed: bool | None,
    message: str,
) -> None:
    g = latency_gate(canary, stable, slo, margin, requests, minimum)
    assert (g.gate, g.passed, g.message) == (GateName.LATENCY, passed, message), name


# name, canary errors/total, stable errors/total, alpha, min requests -> passed, words in the message
ERRORS: list[tuple[str, int, int, int, int, float, int, bool | None, str]] = [
    ("clearly better", 0, 1000, 50, 10000, 0.01, 200, True, "canary 0/1000 errors (0.00%), stable 50/10000 (0.50%): not higher, sequential p = 1 >= alpha 0.01"),
    ("same rate", 5, 1000, 50, 10000, 0.01, 200, True, "not higher"),
    ("clearly worse: 5% against 0.5%", 50, 1000, 50, 10000, 0.01, 200, False, "canary 50/1000 errors (5.00%), stable 50/10000 (0.50%): canary higher, sequential p = 7.4e-24 < alpha 0.01 (fixed-sample Fisher p = 3.2e-26)"),
    ("zero errors both sides", 0, 1000, 0, 10000, 0.01, 200, True, "canary 0/1000 errors (0.00%), stable 0/10000 (0.00%): not higher, sequential p = 1 >= alpha 0.01"),
    ("one error, only in the canary: not significant", 1, 1000, 0, 10000, 0.01, 200, True, "not higher, sequential p = 0.18 >= alpha 0.01"),
    ("two errors, only in the canary: Fisher alone would fail it, the sequential test waits", 2, 1000, 0, 10000, 0.01, 200, True,
     "not higher, sequential p = 0.025 >= alpha 0.01 (fixed-sample Fisher p = 0.0083)"),
    ("three errors, only in the canary: higher", 3, 1000, 0, 10000, 0.01, 200, False, "canary higher, sequential p = 0.003 < alpha 0.01"),
    ("a higher ratio on few samples is not enough", 3, 200, 1, 200, 0.01, 200, True, "canary 3/200 errors (1.50%), stable 1/200 (0.50%): not higher, sequential p = 1 >= alpha 0.01 (fixed-sample Fisher p = 0.31)"),
    ("too few samples to decide", 150, 150, 0, 10000, 0.01, 200, None, "canary served 150 of 200 requests needed to judge errors"),
    ("no stable requests to compare with", 0, 500, 0, 0, 0.01, 200, None, "no stable requests to compare with"),
    ("every request failing on both sides", 500, 500, 10000, 10000, 0.01, 200, True, "sequential p = 1"),
    ("large counts: canary 1.2% against 1.0% of a million", 1200, 100000, 10000, 1000000, 0.01, 200, False, "canary higher, sequential p = 5.8e-06"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "ce", "ct", "se", "st", "alpha", "minimum", "passed", "words"), ERRORS, ids=[c[0] for c in ERRORS]
)
def test_error_gate(name: str, ce: int, ct: int, se: int, st: int, alpha: float, minimum: int, passed: bool | None, words: str) -> None:
    g = error_gate(ce, ct, se, st, alpha, minimum)
    assert (g.gate, g.passed) == (GateName.ERRORS, passed), (name, g.message)
    assert words in g.message, (name, g.message)


def _exact(a: int, n1: int, c: int, n2: int) -> float:
    """P(X >= a) of the hypergeometric, in exact fractions (small tables only)."""
    n, k = n1 + n2, a + c
    tail = sum(Fraction(math.comb(k, x) * math.comb(n - k, n1 - x)) for x in range(a, min(k, n1) + 1))
    return float(tail / math.comb(n, n1))


TABLES = [(0, 10, 0, 10), (3, 10, 0, 10), (1, 10, 5, 10), (5, 20, 5, 20), (7, 30, 2, 40), (12, 50, 40, 200), (2, 3, 1, 300), (10, 10, 10, 10)]


@pytest.mark.parametrize("table", TABLES, ids=[str(t) for t in TABLES])
def test_fisher_matches_the_exact_sum(table: tuple[int, int, int, int]) -> None:
    assert fisher_greater(*table) == pytest.approx(_exact(*table), rel=1e-9, abs=1e-15)


def test_fisher_known_value() -> None:
    # the tea-tasting table [[3, 1], [1, 3]]: one-sided p = 17/70
    assert fisher_greater(3, 4, 1, 4) == pytest.approx(17 / 70)


@pytest.mark.parametrize("counts", [(-1, 10, 0, 10), (11, 10, 0, 10), (0, 10, 11, 10)], ids=["negative", "canary errors > total", "stable errors > total"])
def test_fisher_refuses_impossible_counts(counts: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="0 <= errors <= total"):
        fisher_greater(*counts)


def test_fisher_on_millions_stops_early() -> None:
    # far beyond the mode every term underflows: 0, at once, without walking half a million terms
    assert fisher_greater(500_000, 1_000_000, 4_000_000, 10_000_000) == 0.0
    assert fisher_greater(400_000, 1_000_000, 4_000_000, 10_000_000) == pytest.approx(0.5, abs=0.01)


def _false_rollbacks(p_value: Callable[[int, int, int, int], float], runs: int, looks: int, alpha: float) -> float:
    """Steps of a canary exactly as good as the stable revision (1% errors each, a 10% replica share),
    each judged at ``looks`` passes as the counts grow: the share of steps that fail at some pass."""
    rng = random.Random(19)
    failed = 0
    for _ in range(runs):
        a = n1 = c = n2 = 0
        for _ in range(looks):
            for _ in range(200):  # requests between two passes
                if rng.random() < 0.1:
                    n1 += 1
                    a += rng.random() < 0.01
                else:
                    n2 += 1
                    c += rng.random() < 0.01
            if p_value(a, n1, c, n2) < alpha:
                failed += 1
                break
    return failed / runs


def test_repeated_looks_keep_false_rollbacks_under_alpha() -> None:
    """The reason for the sequential test: looked at on every pass, the fixed-sample Fisher test rolls back
    a good canary several times more often than alpha; the anytime-valid test stays under it."""
    fisher = _false_rollbacks(fisher_greater, runs=300, looks=40, alpha=0.05)
    sequential = _false_rollbacks(sequential_p, runs=300, looks=40, alpha=0.05)
    assert sequential <= 0.05 < fisher, (sequential, fisher)


@pytest.mark.parametrize(
    ("counts", "p"),
    [((0, 10, 0, 10), 1.0), ((1, 10, 0, 0), 1.0), ((1, 1, 0, 1), 1.0), ((5, 100, 0, 900), 1 / (0.1**-5 / 6))],
    ids=["no errors", "no stable requests", "one error in two halves: the ratio stays under 1", "five errors, all the canary's"],
)
def test_sequential_p_values(counts: tuple[int, int, int, int], p: float) -> None:
    assert sequential_p(*counts) == pytest.approx(p)
