"""What a rollout's replica plan costs on a replayed trace (pure): replica-seconds of the stable and canary
revisions against the same trace without a rollout, per step.

The total replicas over time are a policy's own (the replay's ``replicas_t``, replicas holding GPUs): the
rollout does not change how many replicas the demand needs, only how they split (``rollout.split``). What it
adds is:

* the surge replica while the total is 1 (1 + 1: the canary needs one, production keeps one);
* make-before-break: every canary replica added (at a step's start, or when the total grows) starts for
  ``cold_start_s`` beside the stable replica it will replace, which is removed only once it serves;
* promotion: the canary grows to the whole total while the old stable replicas keep serving until the new
  ones are ready (``cold_start_s`` of both), the row ``promote``.

Every canary replica added counts ``cold_start_s`` of ``starting``, however soon the total changes again.

Each step lasts its ``minSeconds`` (the fastest path: a step whose gates wait longer costs proportionally).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from foresail.api.rollout import RolloutSpec, RolloutStep
from foresail.rollout.split import split_replicas

__all__ = ["StepCost", "parse_steps", "rollout_cost", "rollout_markdown", "rollout_summary"]


@dataclass(frozen=True)
class StepCost:
    step: str  # "1", "2", ... or "promote"
    percent: int
    start_s: float
    end_s: float
    baseline_replica_s: float  # the same trace without a rollout
    stable_replica_s: float
    canary_replica_s: float
    starting_replica_s: float  # make-before-break: replicas held while new ones start

    @property
    def rollout_replica_s(self) -> float:
        return self.stable_replica_s + self.canary_replica_s + self.starting_replica_s

    @property
    def extra_replica_s(self) -> float:
        return self.rollout_replica_s - self.baseline_replica_s


def _pieces(replicas_t: Sequence[tuple[float, int]], a: float, b: float) -> list[tuple[float, float, int]]:
    """The constant pieces (start, end, replicas) of the step function ``replicas_t`` within [a, b)."""
    out: list[tuple[float, float, int]] = []
    current = next((n for t, n in reversed(replicas_t) if t <= a), replicas_t[0][1] if replicas_t else 0)
    t0 = a
    for t, n in replicas_t:
        if t <= a:
            continue
        if t >= b:
            break
        out.append((t0, t, current))
        t0, current = t, n
    out.append((t0, b, current))
    return [p for p in out if p[1] > p[0]]


def rollout_cost(
    replicas_t: Sequence[tuple[float, int]], start_s: float, steps: Sequence[RolloutStep], cold_start_s: float
) -> list[StepCost]:
    """The cost of a rollout started at ``start_s`` whose steps last their ``minSeconds``, on the replicas
    over time ``replicas_t`` ((t, replicas), a step function sorted by t), one row per step and the promotion."""
    if cold_start_s < 0:
        raise ValueError(f"cold_start_s must be >= 0 (got {cold_start_s})")
    rows: list[StepCost] = []
    t = start_s
    canary_before = 0
    for i, step in enumerate(steps):
        end = t + step.min_seconds
        base = stable = canary = starting = 0.0
        for a, b, n in _pieces(replicas_t, t, end):
            s, c = split_replicas(n, step.percent)
            base += n * (b - a)
            stable += s * (b - a)
            canary += c * (b - a)
            starting += max(0, c - canary_before) * cold_start_s
            canary_before = c
        rows.append(StepCost(str(i + 1), step.percent, t, end, base, stable, canary, starting))
        t = end
    end = t + cold_start_s
    base = stable = canary = starting = 0.0
    for a, b, n in _pieces(replicas_t, t, end):
        s, _ = split_replicas(n, steps[-1].percent)
        base += n * (b - a)
        canary += n * (b - a)  # the new revision at its full count, the replicas it adds starting
        stable += s * (b - a)  # the old one serving until they are ready
    rows.append(StepCost("promote", 100, t, end, base, stable, canary, starting))
    return rows


def parse_steps(text: str) -> list[RolloutStep]:
    """``"10:60,50:120"``: percent:minSeconds per step (as ``spec.rollout.steps``, validated the same way)."""
    steps: list[dict[str, int]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        percent, _, seconds = part.partition(":")
        try:
            steps.append({"percent": int(percent), "minSeconds": int(seconds or 60)})
        except ValueError:
            raise ValueError(f"--rollout: {part!r} is not PERCENT:SECONDS") from None
    try:
        return RolloutSpec.model_validate({"steps": steps}).steps
    except ValidationError as e:
        raise ValueError(f"--rollout {text!r}: {e.errors()[0]['msg']}") from None


def rollout_summary(rows: Sequence[StepCost], policy: str) -> dict[str, Any]:
    """The rows as the replay summary's ``rollout`` entry (replica-seconds, rounded)."""

    def r(x: float) -> float:
        return round(x, 1)

    steps = [
        {
            "step": c.step,
            "percent": c.percent,
            "start_s": r(c.start_s),
            "end_s": r(c.end_s),
            "baseline_replica_s": r(c.baseline_replica_s),
            "stable_replica_s": r(c.stable_replica_s),
            "canary_replica_s": r(c.canary_replica_s),
            "starting_replica_s": r(c.starting_replica_s),
            "extra_replica_s": r(c.extra_replica_s),
        }
        for c in rows
    ]
    base = sum(c.baseline_replica_s for c in rows)
    total = sum(c.rollout_replica_s for c in rows)
    return {
        "policy": policy,
        "steps": steps,
        "baseline_replica_s": r(base),
        "rollout_replica_s": r(total),
        "extra_percent": round(100 * (total - base) / base, 1) if base else None,
    }


def rollout_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"\n### Rollout on {summary['policy']}'s replicas\n",
        "| step | % | from s | to s | no rollout | stable | canary | starting | extra |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary["steps"]:
        lines.append(
            f"| {s['step']} | {s['percent']} | {s['start_s']} | {s['end_s']} | {s['baseline_replica_s']} | "
            f"{s['stable_replica_s']} | {s['canary_replica_s']} | {s['starting_replica_s']} | {s['extra_replica_s']} |"
        )
    extra = summary["extra_percent"]
    lines.append(
        f"\nreplica-seconds: {summary['rollout_replica_s']} with the rollout, {summary['baseline_replica_s']} without"
        + (f" (+{extra}%)" if extra is not None else "")
    )
    return "\n".join(lines) + "\n"
