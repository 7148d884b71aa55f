"""A candidate's per-item results against a baseline's (pure): is the candidate worse?

Both sides are result records as the workers write them (``evaluation.results``): ``{"id", "correct",
"value"}`` for a scored item, ``{"id", "error"}`` for one that failed. Only items scored on both sides are
*paired* and compared; the rest are counted (``only_baseline``, ``only_candidate``, ``errors``) and never
guessed at.

The test depends on the scores:

- **correct/incorrect** (every paired ``value`` is 0 or 1: exactMatch, top1, most plugins): McNemar's exact
  test, one-sided. Of the discordant pairs (``flipped_worse``: right in the baseline, wrong in the candidate;
  ``flipped_better``: the other way), under "the candidate is no worse" each is worse with probability 1/2, so
  ``p = P(Binomial(worse + better, 1/2) >= worse)``. Regressed when ``p < alpha``.
- **numeric** (some value strictly between 0 and 1, e.g. numericTolerance's share of close elements): a
  seeded paired bootstrap of the mean difference (candidate - baseline), ``resamples`` resamples of the
  pairs; the percentile interval ``[alpha/2, 1 - alpha/2]`` is reported and the candidate regressed when the
  whole interval is below zero. There is no p-value.

``regressed`` is None, *undecided*, when the data cannot decide: no paired items; for McNemar, items flipped
worse but too few discordant pairs for any outcome to reach ``alpha`` (``0.5 ** (worse + better) >= alpha``:
at alpha 0.05, fewer than 5); for the bootstrap, fewer than ``MIN_BOOTSTRAP_PAIRS`` pairs. Nothing flipped
worse is not a regression, however few the items (identical results are ``False``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from foresail.evaluation.results import jsonable

__all__ = [
    "BOOTSTRAP",
    "FLIPPED_SAMPLE",
    "MCNEMAR",
    "MIN_BOOTSTRAP_PAIRS",
    "Comparison",
    "Flip",
    "compare",
    "flipped_records",
    "mcnemar_p",
]

MCNEMAR = "mcnemar-exact"
BOOTSTRAP = "paired-bootstrap"
FLIPPED_SAMPLE = 20  # ids of flipped items in a Comparison (and in status), first by id
MIN_BOOTSTRAP_PAIRS = 20
RESAMPLES = 2000


@dataclass(frozen=True)
class Flip:
    """An item whose correctness differs between baseline and candidate."""

    id: str
    worse: bool  # right in the baseline, wrong in the candidate
    baseline_value: float
    candidate_value: float


@dataclass(frozen=True)
class Comparison:
    paired: int
    only_baseline: int  # scored in the baseline, absent (or an error) in the candidate
    only_candidate: int  # scored in the candidate, absent (or an error) in the baseline
    errors: int  # ids with an error result on either side
    baseline_score: float | None  # accuracy (McNemar) or mean value (bootstrap) over the paired items
    candidate_score: float | None
    delta: float | None  # candidate - baseline
    flipped_worse: int
    flipped_better: int
    flipped_sample: tuple[str, ...]  # the first FLIPPED_SAMPLE flipped ids, by id
    test: str  # MCNEMAR or BOOTSTRAP
    p_value: float | None  # McNemar's one-sided p; None for the bootstrap
    interval: tuple[float, float] | None  # the bootstrap's interval of the mean difference; None for McNemar
    alpha: float
    regressed: bool | None
    message: str  # one line for a condition: the numbers and why regressed is what it is
    flips: tuple[Flip, ...] = ()  # every flipped item, by id (for flipped.jsonl; not for status)

    def summary(self) -> dict[str, Any]:
        """camelCase, JSON-able, without the full flip list (for a report and the status)."""
        return {
            "paired": self.paired,
            "onlyBaseline": self.only_baseline,
            "onlyCandidate": self.only_candidate,
            "errors": self.errors,
            "baselineScore": self.baseline_score,
            "candidateScore": self.candidate_score,
            "delta": self.delta,
            "flippedWorse": self.flipped_worse,
            "flippedBetter": self.flipped_better,
            "flippedSample": list(self.flipped_sample),
            "test": self.test,
            "pValue": self.p_value,
            "interval": list(self.interval) if self.interval is not None else None,
            "alpha": self.alpha,
            "regressed": self.regressed,
            "message": self.message,
        }


def mcnemar_p(worse: int, better: int) -> float:
    """One-sided exact McNemar: P(X >= worse) for X ~ Binomial(worse + better, 1/2) (1.0 with no discordant pairs)."""
    if worse < 0 or better < 0:
        raise ValueError(f"worse = {worse}, better = {better}: counts must be >= 0")
    n = worse + better
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(worse, n + 1))
    return min(1.0, tail / (1 << n))  # exact integers; int / int is correctly rounded at any n


def _scored(records: Iterable[Mapping[str, Any]]) -> tuple[dict[str, tuple[bool, float]], set[str]]:
    """(id -> (correct, value)) of scored records, and the ids with only an error result."""
    scored: dict[str, tuple[bool, float]] = {}
    errors: set[str] = set()
    for r in records:
        item_id = r.get("id")
        if not isinstance(item_id, str):
            continue
        if "correct" in r and "error" not in r:
            try:
                value = float(r.get("value", 1.0 if r["correct"] else 0.0))
            except (TypeError, ValueError):
                value = math.nan
            scored[item_id] = (bool(r["correct"]), value)
            errors.discard(item_id)
        elif item_id not in scored:
            errors.add(item_id)
    return scored, errors


def _bootstrap(diffs: list[float], alpha: float, seed: int, resamples: int) -> tuple[float, float]:
    """Percentile interval [alpha/2, 1 - alpha/2] of the mean of ``diffs`` resampled with replacement (seeded)."""
    d = np.asarray(diffs, dtype=np.float64)
    n = d.size
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    chunk = max(1, 2_000_000 // n)  # bounded memory at any n
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return round(float(lo), 9), round(float(hi), 9)


def compare(
    baseline: Iterable[Mapping[str, Any]],
    candidate: Iterable[Mapping[str, Any]],
    alpha: float = 0.05,
    seed: int = 0,
    resamples: int = RESAMPLES,
    sample: int = FLIPPED_SAMPLE,
) -> Comparison:
    """Compare the candidate's results with the baseline's, item by item (see the module docstring)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha = {alpha}, must be in (0, 1)")
    if resamples < 1:
        raise ValueError(f"resamples = {resamples}, must be >= 1")
    base, base_err = _scored(baseline)
    cand, cand_err = _scored(candidate)
    ids = sorted(base.keys() & cand.keys())
    flips = tuple(Flip(i, base[i][0], base[i][1], cand[i][1]) for i in ids if base[i][0] != cand[i][0])
    worse = sum(f.worse for f in flips)
    better = len(flips) - worse
    n = len(ids)
    binary = all(base[i][1] in (0.0, 1.0) and cand[i][1] in (0.0, 1.0) for i in ids)
    common: dict[str, Any] = {
        "paired": n,
        "only_baseline": len(base.keys() - cand.keys()),
        "only_candidate": len(cand.keys() - base.keys()),
        "errors": len(base_err | cand_err),
        "flipped_worse": worse,
        "flipped_better": better,
        "flipped_sample": tuple(f.id for f in flips[:sample]),
        "alpha": alpha,
        "flips": flips,
    }
    flipped = f"{worse} item(s) flipped worse and {better} better of {n} paired"
    if binary:
        b_score = sum(base[i][0] for i in ids) / n if n else None
        c_score = sum(cand[i][0] for i in ids) / n if n else None
        p = mcnemar_p(worse, better)
        regressed: bool | None
        if n == 0:
            regressed, why = None, "no item was scored in both the baseline and the candidate: nothing to compare"
        elif worse == 0:
            regressed, why = False, f"no item flipped worse ({better} better of {n} paired)"
        elif 0.5 ** (worse + better) >= alpha:
            regressed = None
            why = (
                f"{flipped}: too few discordant items for McNemar's test to decide at alpha {alpha} "
                f"(it needs at least {math.ceil(math.log2(1 / alpha) + 1e-12)})"
            )
        else:
            regressed = p < alpha
            why = f"{flipped}, McNemar's exact one-sided p = {p:.3g} {'<' if regressed else '>='} alpha {alpha}"
        return Comparison(
            baseline_score=b_score,
            candidate_score=c_score,
            delta=None if b_score is None or c_score is None else c_score - b_score,
            test=MCNEMAR,
            p_value=p if n else None,
            interval=None,
            regressed=regressed,
            message=why,
            **common,
        )
    b_vals = [base[i][1] for i in ids]
    c_vals = [cand[i][1] for i in ids]
    diffs = [c - b for b, c in zip(b_vals, c_vals, strict=True)]
    if not all(math.isfinite(x) for x in diffs):
        bad = next(i for i, x in zip(ids, diffs, strict=True) if not math.isfinite(x))
        return Comparison(
            baseline_score=None, candidate_score=None, delta=None, test=BOOTSTRAP, p_value=None, interval=None,
            regressed=None, message=f"item {bad!r} has a value that is not a finite number: no interval", **common,
        )  # fmt: skip
    b_score, c_score = math.fsum(b_vals) / n, math.fsum(c_vals) / n
    delta = math.fsum(diffs) / n
    if n < MIN_BOOTSTRAP_PAIRS:
        return Comparison(
            baseline_score=b_score, candidate_score=c_score, delta=delta, test=BOOTSTRAP, p_value=None, interval=None,
            regressed=None, message=f"{n} paired item(s): too few for a bootstrap interval (at least {MIN_BOOTSTRAP_PAIRS})",
            **common,
        )  # fmt: skip
    lo, hi = _bootstrap(diffs, alpha, seed, resamples)
    regressed = hi < 0
    level = f"{100 * (1 - alpha):g}%"
    why = (
        f"mean score {c_score:.4g} vs {b_score:.4g} over {n} paired, difference {delta:+.4g}, "
        f"{level} bootstrap interval [{lo:+.4g}, {hi:+.4g}] {'below zero' if regressed else 'includes or exceeds zero'}; {flipped}"
    )
    return Comparison(
        baseline_score=b_score, candidate_score=c_score, delta=delta, test=BOOTSTRAP, p_value=None, interval=(lo, hi),
        regressed=regressed, message=why, **common,
    )  # fmt: skip


def flipped_records(c: Comparison) -> list[dict[str, Any]]:
    """Every flipped item as a record for ``flipped.jsonl`` (by id)."""
    return [
        {
            "id": f.id,
            "flip": "worse" if f.worse else "better",
            "baseline": {"correct": f.worse, "value": jsonable(f.baseline_value)},
            "candidate": {"correct": not f.worse, "value": jsonable(f.candidate_value)},
        }
        for f in c.flips
    ]
