"""The GPU arbiter: named cases on small snapshots, and properties over random ones."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foresail.quota.arbiter import Plan, Quota, Snapshot, TenantQuotas, Workload, arbitrate
from tests.quota.unit_reference import units_one_at_a_time

GPU = "nvidia.com/gpu"


def tenant(name: str, guaranteed: int, limit: int, weight: int = 1, product: str | None = None) -> TenantQuotas:
    return TenantQuotas(name, (Quota(GPU, product, guaranteed, limit),), weight)


def wl(
    name: str,
    tenant: str,
    desired: int,
    *,
    priority: str = "standard",
    held: int = 0,
    gpus: int = 1,
    created: float = 0.0,
    protected: int = 0,
    product: str | None = None,
    kind: str = "InferenceService",
) -> Workload:
    return Workload(kind, tenant, name, tenant, priority, gpus, desired, held, created, protected, GPU, product)


def snap(tenants: list[TenantQuotas], workloads: list[Workload], supply: int | dict[str | None, int] = 32) -> Snapshot:
    by_product = {None: supply} if isinstance(supply, int) else supply
    return Snapshot(tuple(tenants), tuple(workloads), {(GPU, p): n for p, n in by_product.items()})


def units(plan: Plan, tenant: str, name: str, kind: str = "InferenceService") -> int:
    return plan.grants[(kind, tenant, name)].units


@dataclass
class Case:
    name: str
    snapshot: Snapshot
    want: dict[str, int]  # "tenant/name" -> units
    reclaim_order: list[str] = field(default_factory=list)  # "tenant/name" of reclaims, in order


A16, B16 = tenant("a", 16, 28), tenant("b", 16, 28)

CASES = [
    Case(
        "everything fits: everyone gets what it asks",
        snap([A16, B16], [wl("web", "a", 10), wl("web", "b", 12)]),
        {"a/web": 10, "b/web": 12},
    ),
    Case(
        "idle guarantee is lent: a borrows up to its limit while b is quiet",
        snap([A16, B16], [wl("web", "a", 30), wl("web", "b", 2)]),
        {"a/web": 28, "b/web": 2},
    ),
    Case(
        "reclaim: b's demand rises; a shrinks back to its guarantee, batch first",
        snap(
            [A16, B16],
            [
                wl("crit", "a", 4, priority="critical", held=4),
                wl("web", "a", 16, held=16),
                wl("eval", "a", 6, priority="batch", held=6),
                wl("web", "b", 16, held=2, created=5),
            ],
        ),
        {"a/crit": 4, "a/web": 12, "a/eval": 0, "b/web": 16},
        ["a/eval", "a/web"],
    ),
    Case(
        "batch only uses what is idle, and is taken back before borrowed serving",
        snap([A16, tenant("c", 0, 32)], [wl("web", "a", 20, held=16), wl("eval", "c", 20, priority="batch", held=16)]),
        {"a/web": 20, "c/eval": 12},
        ["c/eval"],
    ),
    Case(
        "a batch job inside its own guarantee is not taken by others' borrowing",
        snap([A16, B16], [wl("web", "a", 28, held=16), wl("eval", "b", 16, priority="batch", held=16)]),
        {"a/web": 16, "b/eval": 16},
    ),
    Case(
        "contention for the shared rest: weighted fair share (3:1)",
        snap([tenant("a", 4, 32, weight=3), tenant("b", 4, 32, weight=1)], [wl("web", "a", 40), wl("web", "b", 40)], supply=24),
        {"a/web": 16, "b/web": 8},
    ),
    Case(
        "equal weights split the borrowable rest evenly",
        snap([tenant("a", 4, 32), tenant("b", 4, 32)], [wl("web", "a", 40), wl("web", "b", 40)], supply=24),
        {"a/web": 12, "b/web": 12},
    ),
    Case(
        "critical borrows before standard",
        snap([tenant("a", 4, 32), tenant("b", 4, 32)], [wl("web", "a", 40, priority="critical"), wl("web", "b", 40)], supply=24),
        {"a/web": 20, "b/web": 4},
    ),
    Case(
        "supply shrinks below the guarantees: critical keeps running, standard gives way",
        snap(
            [A16, B16],
            [wl("crit", "a", 10, priority="critical", held=10), wl("web", "b", 16, held=16), wl("web", "a", 6, held=6)],
            supply=20,
        ),
        {"a/crit": 10, "b/web": 10, "a/web": 0},
    ),
    Case(
        "the newest workload of a tenant and priority loses first",
        snap([tenant("a", 8, 8)], [wl("old", "a", 6, held=6, created=1), wl("new", "a", 6, held=2, created=9)]),
        {"a/old": 6, "a/new": 2},
    ),
    Case(
        "minimum runtime: young batch units keep running against others' borrowing",
        snap(
            [A16, B16],
            [wl("web", "a", 28, held=16), wl("eval", "b", 28, priority="batch", held=16, protected=16)],
            supply=32,
        ),
        {"a/web": 16, "b/eval": 16},
    ),
    Case(
        "minimum runtime does not beat a guarantee",
        snap(
            [A16, B16],
            [wl("web", "b", 16, held=4), wl("eval", "a", 28, priority="batch", held=28, protected=28)],
            supply=32,
        ),
        {"b/web": 16, "a/eval": 16},
        ["a/eval"],
    ),
    Case(
        "GPU products: a pinned workload gets only that product's supply and quota",
        snap(
            [TenantQuotas("a", (Quota(GPU, "H100", 4, 4), Quota(GPU, None, 8, 16)))],
            [wl("big", "a", 10, product="H100"), wl("any", "a", 20)],
            supply={"H100": 8, "A100": 8},
        ),
        {"a/big": 4, "a/any": 12},
    ),
    Case(
        "GPU products: pinned units fit their product even when the total has room",
        snap([tenant("a", 16, 16)], [wl("big", "a", 10, product="A100")], supply={"H100": 8, "A100": 4}),
        {"a/big": 4},
    ),
    Case(
        "units of several GPUs are granted whole",
        snap([tenant("a", 8, 10)], [wl("llm", "a", 4, gpus=4)]),
        {"a/llm": 2},
    ),
    Case(
        "no quota for the resource: nothing granted",
        snap([TenantQuotas("a", ())], [wl("web", "a", 2)]),
        {"a/web": 0},
    ),
    Case(
        "water-filling: three equal tenants level their borrowing unit by unit, the oldest first on a tie",
        snap(
            [tenant("a", 2, 32), tenant("b", 2, 32), tenant("c", 2, 32)],
            [wl("web", "a", 20, created=3), wl("web", "b", 20, created=1), wl("web", "c", 20, created=2)],
            supply=13,
        ),
        {"a/web": 4, "b/web": 5, "c/web": 4},
    ),
    Case(
        "water-filling: a tenant's oldest service fills before its next one",
        snap([tenant("a", 0, 32), tenant("b", 0, 32)], [wl("old", "a", 4, created=1), wl("new", "a", 4, created=2), wl("web", "b", 8)], 10),
        {"a/old": 4, "a/new": 1, "b/web": 5},
    ),
    Case(
        "water-filling: a unit too big for what is left steps aside for smaller ones",
        snap([tenant("a", 8, 8), tenant("b", 8, 8)], [wl("llm", "a", 2, gpus=4, created=1), wl("web", "b", 8, created=2)], 10),
        {"a/llm": 1, "b/web": 6},
    ),
    Case(
        "water-filling: guarantees fill in proportion when supply falls short of them",
        snap([tenant("a", 12, 12), tenant("b", 4, 4)], [wl("web", "a", 12), wl("web", "b", 4)], supply=8),
        {"a/web": 6, "b/web": 2},
    ),
    Case(
        "zero-GPU workloads are not arbitrated",
        snap([tenant("a", 0, 0)], [wl("cpu", "a", 3, gpus=0)]),
        {"a/cpu": 3},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_arbitrate(case: Case) -> None:
    before = copy.deepcopy(case.snapshot)
    plan = arbitrate(case.snapshot)
    assert case.snapshot == before, "the snapshot must not be modified"
    got = {f"{k[1]}/{k[2]}": g.units for k, g in plan.grants.items()}
    assert got == case.want
    if case.reclaim_order:
        assert [f"{r.key[1]}/{r.key[2]}" for r in plan.reclaims] == case.reclaim_order


def test_reasons_and_usage() -> None:
    plan = arbitrate(snap([A16, B16], [wl("web", "a", 30, held=20), wl("web", "b", 20, held=2, created=1)]))
    assert units(plan, "a", "web") == 16 and units(plan, "b", "web") == 16
    assert "no free nvidia.com/gpu" in plan.grants[("InferenceService", "a", "web")].reason
    usage = {u.tenant: u for u in plan.usage}
    assert (usage["a"].used, usage["a"].borrowed, usage["a"].granted, usage["a"].pending) == (20, 4, 16, 10)
    assert (usage["b"].used, usage["b"].lent, usage["b"].pending) == (2, 4, 18)
    assert plan.reclaims[0].why == "borrowed"
    limited = arbitrate(snap([A16], [wl("web", "a", 40)]))
    assert limited.grants[("InferenceService", "a", "web")].reason == "tenant 'a' limit of 28 nvidia.com/gpu reached"
    assert limited.idle == {(GPU, None): 4}


def test_plan_is_deterministic() -> None:
    s = snap([A16, B16, tenant("c", 0, 32)], [wl(f"w{i}", "abc"[i % 3], 9, created=i % 2) for i in range(9)])
    assert arbitrate(s) == arbitrate(s)


# ---------------------------------------------------------------- properties

tenants_st = st.lists(
    st.tuples(st.integers(0, 16), st.integers(0, 16), st.integers(1, 4)).map(lambda t: (min(t[0], t[1]), max(t[0], t[1]), t[2])),
    min_size=1,
    max_size=4,
)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    ts = [tenant(f"t{i}", g, lim, w) for i, (g, lim, w) in enumerate(draw(tenants_st))]
    n = draw(st.integers(0, 8))
    ws = [
        wl(
            f"w{i}",
            draw(st.sampled_from(ts)).name,
            draw(st.integers(0, 12)),
            priority=draw(st.sampled_from(["critical", "standard", "batch"])),
            held=draw(st.integers(0, 12)),
            gpus=draw(st.integers(1, 4)),
            created=draw(st.integers(0, 5)),
            protected=draw(st.integers(0, 4)),
        )
        for i in range(n)
    ]
    return snap(ts, ws, supply=draw(st.integers(0, 64)))


@settings(max_examples=300, deadline=None)
@given(snapshots())
def test_never_exceeds_supply_or_limits(s: Snapshot) -> None:
    plan = arbitrate(s)
    gpus = {w.key: w.gpus for w in s.workloads}
    assert sum(g.units * gpus[k] for k, g in plan.grants.items()) <= s.supply[(GPU, None)]
    for t in s.tenants:
        mine = [w for w in s.workloads if w.tenant == t.name]
        assert sum(plan.grants[w.key].units * w.gpus for w in mine) <= t.quotas[0].limit
    for w in s.workloads:
        assert 0 <= plan.grants[w.key].units <= w.desired


@settings(max_examples=300, deadline=None)
@given(snapshots())
def test_guarantees_met_when_demand_is_within_them(s: Snapshot) -> None:
    """When every tenant asks for no more than its guarantee (whole units) and the guarantees fit the
    supply, everyone gets all it asks for."""
    ws = []
    for t in s.tenants:
        room = t.quotas[0].guaranteed
        for w in (w for w in s.workloads if w.tenant == t.name):
            n = min(w.desired, room // w.gpus)
            room -= n * w.gpus
            ws.append(replace(w, desired=n))
    guaranteed = sum(t.quotas[0].guaranteed for t in s.tenants)
    s2 = replace(s, workloads=tuple(ws), supply={(GPU, None): max(guaranteed, s.supply[(GPU, None)])})
    plan = arbitrate(s2)
    for w in ws:
        assert plan.grants[w.key].units == w.desired, w


@st.composite
def pinned_snapshots(draw: st.DrawFn) -> Snapshot:
    """Random snapshots with two GPU products, pinned and unpinned workloads, product quotas."""
    base = draw(snapshots())
    ts = tuple(
        TenantQuotas(t.name, (*t.quotas, Quota(GPU, "H100", *sorted(draw(st.tuples(st.integers(0, 8), st.integers(0, 8)))))), t.weight)
        for t in base.tenants
    )
    ws = tuple(replace(w, product=draw(st.sampled_from([None, None, "H100", "A100"]))) for w in base.workloads)
    return Snapshot(ts, ws, {(GPU, "H100"): draw(st.integers(0, 24)), (GPU, "A100"): draw(st.integers(0, 24))})


@settings(max_examples=400, deadline=None)
@given(st.one_of(snapshots(), pinned_snapshots()))
def test_water_filling_grants_what_one_unit_at_a_time_granted(s: Snapshot) -> None:
    plan = arbitrate(s)
    assert {k: g.units for k, g in plan.grants.items()} == units_one_at_a_time(s)
