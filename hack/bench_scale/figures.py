"""The scale benchmark's figures (pure): Prometheus text parsed, per-tick durations from the operator's
histogram, requests per tick, the delay from a rate change to the replica write, and the markdown table
with the issue's goals beside the figures."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GOALS",
    "Change",
    "Write",
    "by_labels",
    "growth",
    "growth_by_key",
    "markdown",
    "parse_metrics",
    "per_tick",
    "percentile",
    "reaction_delays",
    "restarts",
    "sum_by",
    "tick_durations",
]

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
Labels = tuple[tuple[str, str], ...]


def parse_metrics(text: str, names: Iterable[str]) -> dict[tuple[str, Labels], float]:
    """The samples of the metrics ``names`` in Prometheus text: (name, sorted labels) -> value."""
    wanted = set(names)
    out: dict[tuple[str, Labels], float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = _LINE.match(line)
        if m is None or m.group(1) not in wanted:
            continue
        labels = tuple(sorted(_LABEL.findall(m.group(2) or "")))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            continue
    return out


def sum_by(samples: Mapping[tuple[str, Labels], float], name: str, by: str | None = None, **match: str) -> dict[str, float]:
    """Samples of ``name`` whose labels include ``match``, summed by the label ``by`` ("" key without ``by``)."""
    out: dict[str, float] = {}
    for (n, labels), v in samples.items():
        if n != name:
            continue
        d = dict(labels)
        if any(d.get(k) != want for k, want in match.items()):
            continue
        k = d.get(by, "") if by else ""
        out[k] = out.get(k, 0.0) + v
    return out


def by_labels(samples: Mapping[tuple[str, Labels], float], name: str, labels: Sequence[str]) -> dict[str, float]:
    """Samples of ``name`` summed by the values of ``labels``, joined by a space ("PATCH deployments")."""
    out: dict[str, float] = {}
    for (n, ls), v in samples.items():
        if n == name:
            d = dict(ls)
            k = " ".join(d.get(label, "") for label in labels)
            out[k] = out.get(k, 0.0) + v
    return out


def growth(values: Sequence[float]) -> float:
    """How much a counter read again and again grew: the sum of its rises, a read below the one before
    counting from 0 (the operator restarted), so that a restart loses only what was counted between the
    last read and the restart."""
    return sum(b - a if b >= a else b for a, b in itertools.pairwise(values))


def growth_by_key(reads: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """``growth`` of each key of counters read again and again (a key absent from a read counts 0)."""
    keys = {k for r in reads for k in r}
    return {k: growth([r.get(k, 0.0) for r in reads]) for k in keys}


def restarts(counts: Sequence[float]) -> int:
    """How many times a counter went down between reads: the operator restarted."""
    return sum(1 for a, b in itertools.pairwise(counts) if b < a)


def per_tick(first: Mapping[str, float], last: Mapping[str, float], ticks: float) -> dict[str, float]:
    """Each counter's growth from ``first`` to ``last`` per tick, the ones that grew, largest first."""
    grew = {k: (v - first.get(k, 0.0)) / ticks for k, v in last.items() if v > first.get(k, 0.0)}
    return {k: round(v, 2) for k, v in sorted(grew.items(), key=lambda kv: -kv[1])}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0-1) by linear interpolation; None without values."""
    xs = sorted(values)
    if not xs:
        return None
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def tick_durations(samples: Sequence[tuple[float, float]]) -> list[float]:
    """Per-pass durations from successive reads (count, sum) of the operator's loop histogram: a read that
    saw k new passes contributes k times their mean (exact when reads are more frequent than passes). A
    count that went down (a restarted operator) starts over."""
    out: list[float] = []
    for (c0, s0), (c1, s1) in itertools.pairwise(samples):
        dc = c1 - c0
        if dc <= 0:
            continue
        out.extend([(s1 - s0) / dc] * round(dc))
    return out


@dataclass(frozen=True)
class Change:
    """A rate step of one service: at t (epoch s), the replicas its rate asks for before and after."""

    t: float
    key: tuple[str, str]
    wanted_before: int
    wanted_after: int


@dataclass(frozen=True)
class Write:
    """A write of a Deployment's spec.replicas seen at t (epoch s)."""

    t: float
    key: tuple[str, str]
    replicas: int


def reaction_delays(changes: Sequence[Change], writes: Sequence[Write], *, until: float) -> tuple[list[float], int]:
    """Seconds from each rate step that changes the wanted replicas to the first replica write in its
    direction before the service's next step (or ``until``); and how many such steps saw none."""
    by_key: dict[tuple[str, str], list[Write]] = {}
    for w in sorted(writes, key=lambda w: w.t):
        by_key.setdefault(w.key, []).append(w)
    steps: dict[tuple[str, str], list[Change]] = {}
    for c in sorted(changes, key=lambda c: c.t):
        steps.setdefault(c.key, []).append(c)
    delays: list[float] = []
    missed = 0
    for key, cs in steps.items():
        ws = by_key.get(key, [])
        for i, c in enumerate(cs):
            if c.wanted_after == c.wanted_before or c.t >= until:
                continue
            end = cs[i + 1].t if i + 1 < len(cs) else until
            before = [w.replicas for w in ws if w.t <= c.t]
            start = before[-1] if before else None
            up = c.wanted_after > c.wanted_before
            hit = next(
                (w for w in ws if c.t < w.t <= end and (start is None or (w.replicas > start if up else w.replicas < start))),
                None,
            )
            if hit is None:
                missed += 1
            else:
                delays.append(hit.t - c.t)
    return delays, missed


GOALS: dict[str, str] = {
    "tick_p50_s": "-",
    "tick_p99_s": "< 1 s (at 2,000 services)",
    "ticks_over_loop_period": "0",
    "apiserver_reads_per_tick_steady": "0 (the autoscaler's client, its own gauge)",
    "apiserver_writes_per_tick_steady": "only what changed",
    "apiserver_reads_per_tick_churn": "-",
    "apiserver_writes_per_tick_churn": "-",
    "apiserver_operator_requests_per_tick_steady": "0 reads (all of the operator's ServiceAccount, by APF flow schema)",
    "apiserver_operator_requests_per_tick_changes": "-",
    "apiserver_operator_requests_per_tick_churn": "-",
    "apiserver_all_clients_per_tick_steady": "- (kwok, controllers, scheduler, Prometheus included)",
    "prometheus_queries_per_tick": "constant",
    "operator_rss_mb_end": "< 400 MB (after 30 min)",
    "operator_cpu_cores": "-",
    "rate_change_to_write_p50_s": "<= 1 tick + query time",
    "rate_change_to_write_p90_s": "<= 1 tick + query time",
    "rate_changes_without_write": "0",
    "lease_lost": "never (before the failover)",
    "failover_lease_s": "- (leader killed: a standby holds the Lease; 15 s lease)",
    "failover_first_pass_s": "<= 30 s (the new leader's first decisions)",
    "churn_rss_growth_percent": "within 10% of start",
    "churn_series_left": "0",
}


def _cell(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def markdown(result: Mapping[str, Any]) -> str:
    """The table: figure, value, goal; then the run's setting and notes."""
    f = result["figures"]
    rows = [f"| {k} | {_cell(f.get(k))} | {goal} |" for k, goal in GOALS.items() if k in f]
    setting = ", ".join(f"{k}={v}" for k, v in result["setting"].items())
    notes = "".join(f"- {n}\n" for n in result.get("notes", []))
    return (
        f"# Scale benchmark: {result['setting']['services']} services\n\n{setting}\n\n"
        "| figure | value | goal |\n|---|---|---|\n" + "\n".join(rows) + "\n\n" + notes
    )
