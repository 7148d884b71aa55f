"""The metric gates of a rollout step (pure): the canary's latency and its errors, each judged against the
stable revision over the same step.

Each gate answers passed (True), failed (False) or not decided yet (None), and says the figures it judged
in its message, so that a rollback's reason carries the numbers.

* **latency**: the canary's p99 must be within the SLO and not above the stable revision's p99 by more than
  the margin. Undecided while the canary served fewer than ``min_requests`` or has no p99 measured; with no
  p99 of the stable revision it is judged against the SLO alone (and says so).
* **errors**: is the canary's error rate higher than the stable revision's? The gate runs on every pass of
  a step, on counts that grow, so a fixed-sample test looked at again and again would roll back a good
  canary far more often than ``alpha`` says. It uses an anytime-valid test instead (a mixture sequential
  probability ratio test): given the errors of both revisions, under "same error rate" each error is the
  canary's with probability ``p0``, its share of the requests; the likelihood ratio of "the canary's share of
  errors is theta" against ``p0``, averaged over a uniform prior on theta, is a nonnegative martingale under
  the null, so by Ville's inequality it ever reaches ``1/alpha`` with probability at most ``alpha``, however
  often it is looked at. The gate fails when the canary's share of errors is above ``p0`` and the ratio
  reaches ``1/alpha`` (its p-value ``min(1, 1/ratio)`` below ``alpha``). The one-sided Fisher exact test of
  this look's 2x2 table is reported beside it for reference (``fisher_greater``: computed with ``math``
  only, summing the tail from the observed count away from the mode until terms no longer matter, so
  counts in the millions cost a few hundred terms). Undecided while the canary served fewer than
  ``min_requests`` or the stable revision served nothing to compare with. The share ``p0`` is the step's
  replica share in practice, constant within a step.
"""

from __future__ import annotations

import math

from foresail.api.rollout import GateName, GateResult

__all__ = ["error_gate", "fisher_greater", "latency_gate", "sequential_p"]


def _ms(x: float) -> str:
    return f"{x:.0f}"


def latency_gate(
    canary_p99_ms: float | None,
    stable_p99_ms: float | None,
    slo_p99_ms: float,
    margin_percent: float,
    canary_requests: int,
    min_requests: int,
) -> GateResult:
    """The latency gate: fails when the canary's p99 is above the SLO or above the stable p99 x (1 + margin)."""
    if canary_requests < min_requests:
        return GateResult(
            gate=GateName.LATENCY, passed=None, message=f"canary served {canary_requests} of {min_requests} requests needed to judge p99"
        )
    if canary_p99_ms is None or not math.isfinite(canary_p99_ms):
        return GateResult(gate=GateName.LATENCY, passed=None, message="no p99 measured for the canary yet")
    canary = _ms(canary_p99_ms)
    if canary_p99_ms > slo_p99_ms:
        return GateResult(gate=GateName.LATENCY, passed=False, message=f"canary p99 {canary} ms > SLO {_ms(slo_p99_ms)} ms")
    if stable_p99_ms is None or not math.isfinite(stable_p99_ms):
        return GateResult(
            gate=GateName.LATENCY,
            passed=True,
            message=f"canary p99 {canary} ms <= SLO {_ms(slo_p99_ms)} ms (no p99 of the stable revision to compare with)",
        )
    factor = 1 + margin_percent / 100
    bound = stable_p99_ms * factor
    compared = f"stable {_ms(stable_p99_ms)} ms x {factor:.2f} = {_ms(bound)} ms"
    if canary_p99_ms > bound:
        return GateResult(gate=GateName.LATENCY, passed=False, message=f"canary p99 {canary} ms > {compared}")
    return GateResult(
        gate=GateName.LATENCY, passed=True, message=f"canary p99 {canary} ms <= {compared} and <= SLO {_ms(slo_p99_ms)} ms"
    )


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_greater(a: int, n1: int, c: int, n2: int) -> float:
    """One-sided Fisher exact test: the p-value of ``a`` errors in ``n1`` canary requests being at least
    this many, given ``c`` errors in ``n2`` stable requests and equal error rates (P(X >= a) for the
    hypergeometric X of the table's margins). 1.0 when the table has no errors or no requests."""
    if min(a, n1, c, n2) < 0 or a > n1 or c > n2:
        raise ValueError(f"counts must satisfy 0 <= errors <= total (got canary {a}/{n1}, stable {c}/{n2})")
    n, k = n1 + n2, a + c  # population, errors in it; X = canary errors of n1 drawn
    lo, hi = max(0, k - n2), min(k, n1)
    if a <= lo:
        return 1.0
    norm = _log_choose(n, n1)

    def log_pmf(x: int) -> float:
        return _log_choose(k, x) + _log_choose(n - k, n1 - x) - norm

    mode = (n1 + 1) * (k + 1) // (n + 2)
    # sum the smaller tail away from the mode, where terms only shrink, and stop once they no longer matter
    if a > mode:
        xs: range = range(a, hi + 1)
        upper = True
    else:
        xs = range(a - 1, lo - 1, -1)
        upper = False
    total = 0.0
    for x in xs:
        term = math.exp(log_pmf(x))
        total += term
        if term <= total * 1e-17:  # the terms only shrink from here (an underflowed first one too)
            break
    p = total if upper else 1.0 - total
    return min(1.0, max(0.0, p))


def sequential_p(a: int, n1: int, c: int, n2: int) -> float:
    """The anytime-valid p-value of the canary's errors being more than its share: ``min(1, 1/ratio)`` of the
    mixture likelihood ratio of the ``a + c`` errors' split (uniform prior on the canary's share of errors
    against its share of requests ``n1 / (n1 + n2)``). 1.0 when the canary's share of errors is not above
    its share of requests, or nothing was served."""
    if min(a, n1, c, n2) < 0 or a > n1 or c > n2:
        raise ValueError(f"counts must satisfy 0 <= errors <= total (got canary {a}/{n1}, stable {c}/{n2})")
    k = a + c
    if k == 0 or n1 == 0 or n2 == 0 or a * (n1 + n2) <= k * n1:
        return 1.0
    p0 = n1 / (n1 + n2)
    # log of B(1 + a, 1 + k - a) / B(1, 1) / (p0^a (1 - p0)^(k - a))
    log_ratio = math.lgamma(1 + a) + math.lgamma(1 + k - a) - math.lgamma(2 + k) - a * math.log(p0) - (k - a) * math.log1p(-p0)
    return 1.0 if log_ratio <= 0 else math.exp(-log_ratio)


def _rate(errors: int, total: int) -> str:
    return f"{100 * errors / total:.2f}%" if total else "n/a"


def error_gate(
    canary_errors: int,
    canary_total: int,
    stable_errors: int,
    stable_total: int,
    alpha: float,
    min_requests: int,
) -> GateResult:
    """The error gate: fails when the anytime-valid test finds the canary's error rate higher than the
    stable revision's at significance ``alpha`` (``sequential_p`` < alpha), however many times it is
    asked over a step. Totals count errors too."""
    counts = (
        f"canary {canary_errors}/{canary_total} errors ({_rate(canary_errors, canary_total)}), "
        f"stable {stable_errors}/{stable_total} ({_rate(stable_errors, stable_total)})"
    )
    if canary_total < min_requests:
        return GateResult(
            gate=GateName.ERRORS, passed=None, message=f"canary served {canary_total} of {min_requests} requests needed to judge errors"
        )
    if stable_total == 0:
        return GateResult(gate=GateName.ERRORS, passed=None, message=f"{counts}: no stable requests to compare with")
    p = sequential_p(canary_errors, canary_total, stable_errors, stable_total)
    fisher = f"fixed-sample Fisher p = {fisher_greater(canary_errors, canary_total, stable_errors, stable_total):.2g}"
    if p < alpha:
        return GateResult(
            gate=GateName.ERRORS, passed=False, message=f"{counts}: canary higher, sequential p = {p:.2g} < alpha {alpha:g} ({fisher})"
        )
    return GateResult(gate=GateName.ERRORS, passed=True, message=f"{counts}: not higher, sequential p = {p:.2g} >= alpha {alpha:g} ({fisher})")
