"""What each revision of a service served since a time: the rollout gates' input (pure).

From Triton's raw samples per replica (``clients.prometheus.PromClient.counter_samples``, the same reader as
the autoscaler's) and the listed pods: each serving replica's requests (completions + failures) and
failures since ``max(since, the replica's serving transition)`` (counter resets undone), so a canary's own
warm-up requests never count, summed by the pod's revision label; and the revision's p99, the
request-weighted mixture (``scaling.latency``) of the latest summaries of its replicas serving for at least
``SUMMARY_MAX_AGE_S`` (Triton's summary covers the last 60 s, warm-up included: a younger replica's
summary would still hold its warm-up's batches). So a canary's p99 is known a minute after its first
replicas warm; until then the latency gate is undecided and the step holds.

Times: ``since`` and the pods' transitions are on the operator's clock; ``offset`` is Prometheus' clock
minus the operator's (``CounterRead.clock_offset_s``), added before comparing with sample times.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from foresail.api.objects import LABEL_REVISION
from foresail.scaling.counters import SUMMARY_MAX_AGE_S, PodSample, ServingPod
from foresail.scaling.latency import QUANTILES, mixture_quantile

__all__ = ["RevisionFigures", "make_before_break", "revision_figures"]

K = TypeVar("K")


@dataclass(frozen=True)
class RevisionFigures:
    requests: int = 0  # completions + failures
    errors: int = 0
    p99_ms: float | None = None
    replicas: int = 0  # serving replicas counted
    p99_replicas: int = 0  # of them, serving long enough for their summary to count


def _increase(values: Sequence[float]) -> float:
    """A counter's increase over ``values`` with resets undone (a drop is a restart from zero)."""
    out = 0.0
    for a, b in itertools.pairwise(values):
        out += b - a if b >= a else b
    return out


def revision_figures(
    samples: Mapping[str, Sequence[PodSample]],
    pods: Sequence[Mapping[str, Any]],
    serving: Sequence[ServingPod],
    since: float,
    now: float,
    offset: float = 0.0,
) -> dict[str, RevisionFigures]:
    """Per revision label, what its serving replicas served since ``since`` (module docstring)."""
    revision_of_pod = {
        p["metadata"]["name"]: rev for p in pods if (rev := ((p.get("metadata") or {}).get("labels") or {}).get(LABEL_REVISION))
    }
    acc: dict[str, list[float]] = {}
    p99_parts: dict[str, list[tuple[float, Sequence[float]]]] = {}
    p99_count: dict[str, int] = {}
    p99_index = QUANTILES.index(0.99)
    for sp in serving:
        rev = revision_of_pod.get(sp.name)
        if rev is None:
            continue
        start = max(since, sp.since) + offset
        rows = [s for s in samples.get(sp.name, ()) if s.t >= start]
        a = acc.setdefault(rev, [0.0, 0.0, 0.0])
        a[2] += 1
        if len(rows) < 2:
            continue
        ok = _increase([s.success for s in rows])
        bad = _increase([s.failure for s in rows])
        a[0] += ok + bad
        a[1] += bad
        last = rows[-1]
        if now - sp.since >= SUMMARY_MAX_AGE_S and ok > 0 and math.isfinite(last.quantiles_us[p99_index]):
            p99_parts.setdefault(rev, []).append((ok, [q / 1000.0 for q in last.quantiles_us]))
            p99_count[rev] = p99_count.get(rev, 0) + 1
    out = {}
    for rev, (requests, errors, replicas) in acc.items():
        parts = p99_parts.get(rev, [])
        out[rev] = RevisionFigures(
            requests=round(requests),
            errors=round(errors),
            p99_ms=mixture_quantile(parts, 0.99) if parts else None,
            replicas=int(replicas),
            p99_replicas=p99_count.get(rev, 0),
        )
    return out


def make_before_break(targets: Mapping[K, int], current: Mapping[K, int], ready: Mapping[K, int]) -> dict[K, int]:
    """Each slot's replicas to write now toward ``targets`` (slot -> replicas) without dropping serving
    capacity: a slot that shrinks keeps enough replicas that the total of the targets is still served by
    replicas already ready elsewhere (``ready``), never more than it has (``current``). So a step that moves
    replicas from the stable revision to the canary, or a promotion, removes stable replicas only as the
    canary's become ready; a slot that grows gets its target at once."""
    total = sum(targets.values())
    out = {}
    for slot, want in targets.items():
        have = current.get(slot, 0)
        if want >= have:
            out[slot] = want
            continue
        ready_elsewhere = sum(n for s, n in ready.items() if s != slot)
        out[slot] = min(have, max(want, total - ready_elsewhere))
    return out
