"""The arbiter's former algorithm, kept as the oracle of its water-filling: one unit at a time to the
first workload in the step's order that wants and fits one, every workload re-sorted after each unit."""

from __future__ import annotations

import math
from collections.abc import Callable

from foresail.quota.arbiter import PRIORITY_ORDER, Quota, Snapshot, Workload, WorkloadKey, _bucket_of, _name, _State

__all__ = ["units_one_at_a_time"]

_Order = tuple[float, float, str]


def units_one_at_a_time(snap: Snapshot) -> dict[WorkloadKey, int]:
    tenants = {t.name: t for t in snap.tenants}
    buckets = {w.key: _bucket_of(w, tenants) for w in snap.workloads}
    st = _State(snap.supply)
    for w in snap.workloads:
        st.units[w.key] = w.desired if w.gpus <= 0 else 0
    gpu_work = [w for w in snap.workloads if w.gpus > 0]

    def wants(w: Workload, upto: int | None) -> bool:
        return st.units[w.key] < (w.desired if upto is None else min(w.desired, upto))

    def fill(
        pool: list[Workload], cap: Callable[[Quota], int], order: Callable[[Workload], _Order], upto: Callable[[Workload], int | None]
    ) -> None:
        active = [w for w in pool if wants(w, upto(w))]
        while active:
            active.sort(key=order)
            for w in active:
                b, q = buckets[w.key]
                if st.fits(w, b, cap(q)):
                    st.give(w, b)
                    break
            else:
                return
            active = [w for w in active if wants(w, upto(w))]

    def of(p: str) -> list[Workload]:
        return [w for w in gpu_work if w.priority == p]

    def guarantee_fill(w: Workload) -> _Order:
        b, q = buckets[w.key]
        return (st.bucket[b] / q.guaranteed if q.guaranteed else math.inf, w.created, _name(w))

    def fair(w: Workload) -> _Order:
        t = tenants.get(w.tenant)
        b, q = buckets[w.key]
        return (max(0, st.bucket[b] - q.guaranteed) / (t.weight if t else 1), w.created, _name(w))

    def whole(w: Workload) -> int | None:
        return None

    for p in PRIORITY_ORDER:
        fill(of(p), lambda q: q.guaranteed, guarantee_fill, whole)
    fill(of("batch"), lambda q: q.limit, lambda w: (0.0, w.created, _name(w)), lambda w: min(w.protected, w.held))
    for p in PRIORITY_ORDER[:2]:
        fill(of(p), lambda q: q.limit, fair, whole)
    fill(of("batch"), lambda q: q.limit, fair, whole)
    return {w.key: st.units[w.key] for w in snap.workloads}
