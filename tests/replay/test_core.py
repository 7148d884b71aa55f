"""The compiled event core: named cases with known answers, and equivalence with the plain-Python reference."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from foresail.replay.reference import simulate_reference
from foresail.replay.sim import PolicyView, ReplicaModel, Serving, SimConfig, SimResult, simulate
from foresail.replay.traces import Arrivals, profile_arrivals

MODEL = ReplicaModel(base_ms=10.0, per_item_ms=2.0, max_batch=8)
BURST = [0.5, 0.5001, 0.5002, 0.5003]


def run(times: list[float], replicas: int = 1, work: list[float] | None = None, **kw: object) -> SimResult:
    arr = Arrivals(times, work or [1.0] * len(times))
    model = kw.pop("model", MODEL)
    assert isinstance(model, ReplicaModel)
    cfg = SimConfig(model=model, slo_ms=100.0, cold_start_s=0.0, initial_replicas=replicas, serving=Serving(**kw))  # type: ignore[arg-type]
    return simulate(arr, cfg, lambda v: replicas)


@pytest.mark.parametrize(
    ("name", "times", "max_batch", "latencies"),
    [
        ("an idle replica serves a request alone", [0.5], 8, [12.0]),
        ("requests arriving while it is busy form one batch", BURST, 8, [12.0, 27.9, 27.8, 27.7]),
        ("max_batch caps the batch; the rest waits for the next", BURST, 2, [12.0, 25.9, 25.8, 37.7]),
    ],
)
def test_batching(name: str, times: list[float], max_batch: int, latencies: list[float]) -> None:
    res = run(times, model=ReplicaModel(10.0, 2.0, max_batch))
    assert res.latencies_ms.tolist() == pytest.approx(latencies, abs=1e-6), name


@pytest.mark.parametrize(
    ("name", "routing", "connections", "work", "times", "latencies"),
    [
        ("round robin alternates", "round-robin", 64, None, BURST, [12.0, 12.0, 23.8, 23.8]),
        ("one connection pins every request to one replica", "per-connection", 1, None, BURST, [12.0, 27.9, 27.8, 27.7]),
        ("least outstanding equals round robin on a symmetric burst", "least-outstanding", 64, None, BURST, [12.0, 12.0, 23.8, 23.8]),
        ("round robin queues behind a long request", "round-robin", 64, [10.0, 1.0, 1.0], [0.5, 0.5, 0.52], [30.0, 12.0, 22.0]),
        ("least outstanding takes the idle replica", "least-outstanding", 64, [10.0, 1.0, 1.0], [0.5, 0.5, 0.52], [30.0, 12.0, 12.0]),
    ],
)
def test_routing(name: str, routing: str, connections: int, work: list[float] | None, times: list[float], latencies: list[float]) -> None:  # fmt: skip
    res = run(times, replicas=2, work=work, routing=routing, connections=connections)
    assert res.latencies_ms.tolist() == pytest.approx(latencies, abs=1e-6), name


def test_per_connection_routing_with_many_connections_uses_both_replicas_and_is_seeded() -> None:
    arr = profile_arrivals("constant", {"rate": 200}, 20, seed=1)
    cfg = SimConfig(model=MODEL, slo_ms=100.0, cold_start_s=0.0, initial_replicas=2, serving=Serving("per-connection"), seed=4)
    a, b = simulate(arr, cfg, lambda v: 2), simulate(arr, cfg, lambda v: 2)
    c = simulate(arr, replace(cfg, seed=5), lambda v: 2)
    assert np.array_equal(a.latencies_ms, b.latencies_ms)
    assert not np.array_equal(a.latencies_ms, c.latencies_ms)
    assert a.within_slo(100.0) == 1.0


@pytest.mark.parametrize(
    ("name", "queue_max", "timeout_ms", "status"),
    [
        ("unbounded: everything is served", 0, 0.0, [1, 1, 1, 1]),
        ("a full queue rejects at once", 2, 0.0, [1, 1, 1, 2]),
        ("a request that waited past the timeout is rejected when the batch forms", 0, 5.0, [1, 2, 2, 2]),
        ("a timeout longer than the wait rejects nothing", 0, 50.0, [1, 1, 1, 1]),
    ],
)
def test_bounded_queue(name: str, queue_max: int, timeout_ms: float, status: list[int]) -> None:
    res = run(BURST, queue_max=queue_max, queue_timeout_ms=timeout_ms)
    assert res.status.tolist() == status, name
    assert res.rejected() == status.count(2)
    assert res.within_slo(100.0) == status.count(1) / 4  # rejections are misses
    assert all(math.isinf(x) for x, s in zip(res.latencies_ms, res.status, strict=True) if s == 2)


def test_a_new_replica_serves_after_its_cold_start_and_waiting_requests_count_from_arrival() -> None:
    # no replica until the tick at 5 s, cold start 2 s: the request at 1 s waits at the gateway until 7 s
    arr = Arrivals([1.0, 8.0], [1.0, 1.0])
    cfg = SimConfig(model=MODEL, slo_ms=100.0, cold_start_s=2.0, tick_s=5.0, initial_replicas=0, min_replicas=0)
    res = simulate(arr, cfg, lambda v: 1 if v.now >= 5 else 0)
    assert res.latencies_ms.tolist() == pytest.approx([6012.0, 12.0])
    assert res.replicas_t[0] == (5.0, 1, 0)  # holds a GPU from the tick, not ready yet
    assert res.gpu_seconds == pytest.approx(9.0 - 5.0)  # to the end of the trace + 1 s


@pytest.mark.parametrize(
    ("name", "score_from", "share", "gpu_seconds"),
    [
        ("scored from the start: the prior's waiting requests miss", 0.0, 0.5, 2 * (40.0 - 20.0)),
        ("the prior is not scored", 30.0, 1.0, 2 * (40.0 - 30.0)),
    ],
)
def test_scoring_excludes_the_prior(name: str, score_from: float, share: float, gpu_seconds: float) -> None:
    # nothing serves before 20 s: the first half of the requests waits; two replicas from then on
    arr = Arrivals([float(t) for t in range(40)], [1.0] * 40)
    cfg = SimConfig(model=MODEL, slo_ms=100.0, cold_start_s=0.0, tick_s=5.0, initial_replicas=0, min_replicas=0,
                    score_from_s=score_from)  # fmt: skip
    res = simulate(arr, cfg, lambda v: 2 if v.now >= 20 else 0)
    assert res.within_slo(100.0) == pytest.approx(share), name
    assert res.gpu_seconds == pytest.approx(gpu_seconds), name
    assert res.requests() == sum(1 for t in arr.times if t >= score_from)


def test_windows_show_arrivals_completions_queue_growth_and_p99() -> None:
    seen: list[PolicyView] = []
    arr = profile_arrivals("constant", {"rate": 100}, 70, seed=2)
    cfg = SimConfig(model=MODEL, slo_ms=100.0, cold_start_s=0.0, tick_s=5.0, initial_replicas=2)

    def policy(v: PolicyView) -> int:
        seen.append(v)
        return 2

    res = simulate(arr, cfg, policy)
    v = next(x for x in seen if x.now == 65.0)
    for w in (2.0, 10.0, 60.0):
        s = v.window(w)
        assert s.arrival_rps == pytest.approx(s.completion_rps + s.rejection_rps + s.queue_growth_rps)
        assert s.rejection_rps == 0.0
    assert v.window(60.0).arrival_rps == pytest.approx(100, rel=0.1)
    exact = np.sort(res.latencies_ms[(res.arrivals >= 5.0) & (res.arrivals < 64.0)])
    assert v.window(60.0).p99_ms == pytest.approx(exact[math.ceil(0.99 * len(exact)) - 1], rel=0.05)
    assert 0.0 <= v.window(10.0).mean_queue_wait_ms < 12.0
    with pytest.raises(KeyError, match="no 3 s window"):
        v.window(3.0)


@pytest.mark.parametrize("routing", ["round-robin", "per-connection", "least-outstanding"])
@pytest.mark.parametrize(
    ("queue_max", "timeout_ms"), [(0, 0.0), (5, 0.0), (0, 60.0)], ids=["unbounded", "queue-max", "timeout"]
)
def test_the_compiled_core_equals_the_python_reference(routing: str, queue_max: int, timeout_ms: float) -> None:
    arr = profile_arrivals("step", {"from": 60, "to": 500, "at": 15}, 45, seed=2)
    arr = Arrivals(arr.times, np.random.default_rng(1).exponential(1.0, len(arr)))

    def policy(views: list[PolicyView]) -> Callable[[PolicyView], int]:
        def p(v: PolicyView) -> int:
            views.append(v)
            return 1 if v.now < 15 else 4 if v.now < 30 else 2

        return p

    serving = Serving(routing, connections=6, connection_lifetime_s=3.0, queue_max=queue_max, queue_timeout_ms=timeout_ms)
    cfg = SimConfig(model=MODEL, slo_ms=100.0, cold_start_s=4.0, tick_s=3.0, initial_replicas=1, serving=serving, score_from_s=5.0, seed=9)
    va: list[PolicyView] = []
    vb: list[PolicyView] = []
    a, b = simulate(arr, cfg, policy(va)), simulate_reference(arr, cfg, policy(vb))
    assert np.array_equal(a.latencies_ms, b.latencies_ms)
    assert np.array_equal(a.status, b.status)
    assert a.replicas_t == b.replicas_t
    assert a.gpu_seconds == b.gpu_seconds
    assert a.scale_actions == b.scale_actions
    assert va == vb


def test_a_bad_setting_names_the_field() -> None:
    with pytest.raises(ValueError, match="routing: 'random' unknown"):
        Serving("random")
    with pytest.raises(ValueError, match="queue_max must be >= 0"):
        Serving(queue_max=-1)
    with pytest.raises(ValueError, match="tick_s must be > 0"):
        SimConfig(model=MODEL, slo_ms=1.0, cold_start_s=0.0, tick_s=0.0)
