"""The scale benchmark's pure parts: the load model, the Triton exposition text (read back by the operator's
own parser), the figures and the Prometheus configuration."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from foresail.clients.prometheus import counters_query
from foresail.scaling.samples import FIELDS, SUMMARY, pod_samples
from hack.bench_scale.exposition import SERIES_PER_REPLICA, Replica, exposition
from hack.bench_scale.figures import (
    Change,
    Write,
    by_labels,
    growth,
    growth_by_key,
    markdown,
    parse_metrics,
    per_tick,
    percentile,
    reaction_delays,
    restarts,
    sum_by,
    tick_durations,
)
from hack.bench_scale.load import LEVELS, MAX_UTILISATION, Counters, ServiceLoad, advance, plan_service, serve, wanted_replicas
from hack.bench_scale.run import scrape_config, service_manifest

PLAN: dict[str, Any] = {"replicas": 5, "capacity_rps": 50.0, "steady_s": 60.0, "duration_s": 900.0, "period_s": 60.0}

# ---------------------------------------------------------------------------------------------- load model


def test_the_plan_is_seeded_per_service() -> None:
    a = plan_service(("ns", "a"), 1, **PLAN)
    assert plan_service(("ns", "a"), 1, **PLAN) == a
    assert plan_service(("ns", "a"), 2, **PLAN) != a
    assert plan_service(("ns", "b"), 1, **PLAN) != a


def test_the_plan_holds_the_base_rate_while_steady_then_steps_to_other_levels() -> None:
    load = plan_service(("ns", "a"), 7, **PLAN)
    assert load.steps, "a 15 min plan with 60 s periods steps"
    assert all(at >= PLAN["steady_s"] for at, _ in load.steps)
    assert [at for at, _ in load.steps] == sorted(at for at, _ in load.steps)
    assert all(level in LEVELS for _, level in load.steps)
    levels = [1.0, *(level for _, level in load.steps)]
    assert all(x != y for x, y in itertools.pairwise(levels)), "every step changes the level"
    assert load.rate(0.0) == load.base_rps == load.rate(PLAN["steady_s"] - 1)
    # the base rate keeps ~replicas replicas half busy (a log-normal spread of 25%)
    assert 0.3 * 5 * 50 < load.base_rps < 0.8 * 5 * 50


@pytest.mark.parametrize(
    ("name", "t", "rate"),
    [
        ("before the first step", 9.9, 100.0),
        ("at the first step", 10.0, 200.0),
        ("between steps", 15.0, 200.0),
        ("after the last step", 99.0, 40.0),
    ],
)
def test_rate_at_a_time(name: str, t: float, rate: float) -> None:
    load = ServiceLoad(100.0, ((10.0, 2.0), (20.0, 0.4)))
    assert load.rate(t) == pytest.approx(rate), name


def test_changes_list_each_step_with_the_rates_around_it() -> None:
    load = ServiceLoad(100.0, ((10.0, 2.0), (20.0, 0.4)))
    assert load.changes() == [(10.0, 100.0, 200.0), (20.0, 200.0, pytest.approx(40.0))]


@pytest.mark.parametrize(
    ("name", "rate", "completed", "failed", "p99_ms"),
    [
        ("idle: nothing completes, the summary is NaN", 0.0, 0.0, 0.0, math.nan),
        ("half busy: p99 = ln(100) x 20 ms / 0.5", 25.0, 25.0, 0.0, math.log(100) * 20 / 0.5),
        ("overloaded: completes at the cap, fails the rest", 100.0, MAX_UTILISATION * 50, 100 - MAX_UTILISATION * 50,
         math.log(100) * 20 / (1 - MAX_UTILISATION)),
    ],
)  # fmt: skip
def test_a_replica_at_a_rate(name: str, rate: float, completed: float, failed: float, p99_ms: float) -> None:
    s = serve(rate, 50.0)
    assert s.completed_rps == pytest.approx(completed), name
    assert s.failed_rps == pytest.approx(failed), name
    assert s.compute_ms == pytest.approx(20.0)
    if math.isnan(p99_ms):
        assert math.isnan(s.quantiles_ms[3]), name
    else:
        assert s.quantiles_ms[3] == pytest.approx(p99_ms), name
        assert list(s.quantiles_ms) == sorted(s.quantiles_ms), name
        assert s.pending == pytest.approx(completed * s.queue_ms / 1000), "Little's law"


def test_latency_answers_rate_per_replica() -> None:
    p99 = [serve(rate, 50.0).quantiles_ms[3] for rate in (5, 20, 35, 45)]
    assert p99 == sorted(p99) and p99[-1] > 4 * p99[0]


def test_counters_move_on_by_the_served_rate() -> None:
    c = advance(Counters(), 2.0, serve(25.0, 50.0))
    assert c.success == pytest.approx(50.0)
    assert c.failure == 0.0
    assert c.request_us == pytest.approx(50 * 40_000)  # 20 ms compute + 20 ms queue at u = 0.5
    assert c.queue_us == pytest.approx(50 * 20_000)
    assert c.compute_input_us + c.compute_infer_us + c.compute_output_us == pytest.approx(50 * 20_000)
    assert c.exec_count < c.inference_count == c.success
    again = advance(c, 0.0, serve(0.0, 50.0))
    assert again.success == c.success and math.isnan(again.quantiles_us[3]), "no time: counters hold, gauges follow"


@pytest.mark.parametrize(
    ("name", "rate", "wanted"),
    [("idle", 0.0, 1), ("base of 5 at half", 125.0, 4), ("twice the base", 250.0, 8), ("capped", 5000.0, 10)],
)
def test_wanted_replicas(name: str, rate: float, wanted: int) -> None:
    # SLO 250 ms, 20 ms compute: u <= 1 - ln(100) x 20 / 250 = 0.63
    assert wanted_replicas(rate, 50.0, 250.0, 10) == wanted, name


# ---------------------------------------------------------------------------------------------- exposition


def _replicas() -> list[Replica]:
    busy = advance(Counters(), 10.0, serve(40.0, 50.0))
    return [Replica("ns-a", "svc-0-abc", "svc-0", "m", busy), Replica("ns-a", "svc-0-def", "svc-0", "m", Counters())]


def test_exposition_reads_back_through_the_operators_parser() -> None:
    text = exposition(_replicas())
    samples = parse_metrics(text, [*FIELDS, SUMMARY, "nv_inference_count", "nv_inference_exec_count"])
    rows = [(name, dict(labels), 100.0, v) for (name, labels), v in samples.items() if dict(labels)["pod"] == "svc-0-abc"]
    got = pod_samples(rows, "m")
    assert len(got) == 1, "every field the operator needs is there"
    s = got[0]
    assert s.success == 400 and s.failure == 0
    assert s.quantiles_us[3] == pytest.approx(math.log(100) * 20_000 / 0.2, rel=1e-3)
    assert pod_samples(rows, "another-model") == []


def test_exposition_labels_and_size() -> None:
    text = exposition(_replicas())
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(lines) == 2 * SERIES_PER_REPLICA
    first = parse_metrics(text, ["nv_inference_request_success"])
    assert dict(next(iter(first))[1]) == {
        "foresail_dev_inferenceservice": "svc-0", "model": "m", "namespace": "ns-a", "pod": "svc-0-abc", "version": "1",
    }  # fmt: skip
    idle = parse_metrics(text, [SUMMARY])
    assert all(math.isnan(v) for (_, labels), v in idle.items() if dict(labels)["pod"] == "svc-0-def")
    assert 'reason="REJECTED"' in text and "# TYPE nv_inference_request_summary_us summary" in text


def test_the_operators_query_selects_the_source_series() -> None:
    """What the counters query asks for by name (a regex over nv_inference_*) is what the source serves."""
    q = counters_query(10)
    names = {name for (name, _) in parse_metrics(exposition(_replicas()), [*FIELDS, SUMMARY])}
    assert names == {*FIELDS, SUMMARY}
    assert all(n.removeprefix("nv_inference_") in q for n in names)


# ---------------------------------------------------------------------------------------------- figures


def test_parse_and_sum_by() -> None:
    text = """# HELP x y
apiserver_request_total{code="200",verb="LIST",resource="pods"} 10
apiserver_request_total{code="200",verb="GET",resource="pods"} 3
apiserver_request_total{code="409",verb="PATCH",resource="deployments"} 2
other_metric 5
process_resident_memory_bytes 1.5e+08
"""
    s = parse_metrics(text, ["apiserver_request_total", "process_resident_memory_bytes"])
    assert sum_by(s, "apiserver_request_total", "verb") == {"LIST": 10.0, "GET": 3.0, "PATCH": 2.0}
    assert sum_by(s, "apiserver_request_total", "verb", resource="pods") == {"LIST": 10.0, "GET": 3.0}
    assert sum_by(s, "process_resident_memory_bytes") == {"": 1.5e8}
    want = {"LIST pods": 10.0, "GET pods": 3.0, "PATCH deployments": 2.0}
    assert by_labels(s, "apiserver_request_total", ("verb", "resource")) == want


@pytest.mark.parametrize(
    ("name", "first", "last", "ticks", "want"),
    [
        ("grown, largest first", {"a": 1.0, "b": 0.0}, {"a": 3.0, "b": 10.0}, 2.0, {"b": 5.0, "a": 1.0}),
        ("unchanged left out", {"a": 4.0}, {"a": 4.0}, 1.0, {}),
        ("new since the first read", {}, {"c": 3.0}, 3.0, {"c": 1.0}),
        ("reset (a restart) left out", {"a": 9.0}, {"a": 2.0}, 1.0, {}),
    ],
)
def test_per_tick(name: str, first: dict[str, float], last: dict[str, float], ticks: float, want: dict[str, float]) -> None:
    assert per_tick(first, last, ticks) == want
    assert list(per_tick(first, last, ticks)) == list(want)


@pytest.mark.parametrize(
    ("name", "values", "q", "want"),
    [
        ("none", [], 0.5, None),
        ("one", [3.0], 0.99, 3.0),
        ("interpolated", [1.0, 2.0, 3.0, 4.0], 0.5, 2.5),
        ("top", [4.0, 1.0], 1.0, 4.0),
    ],
)
def test_percentile(name: str, values: list[float], q: float, want: float | None) -> None:
    assert percentile(values, q) == want, name


@pytest.mark.parametrize(
    ("name", "reads", "want"),
    [
        ("one pass per read", [(0, 0.0), (1, 2.0), (2, 5.0)], [2.0, 3.0]),
        ("no pass between reads", [(1, 2.0), (1, 2.0), (2, 3.0)], [1.0]),
        ("two passes in one read: their mean twice", [(0, 0.0), (2, 4.0)], [2.0, 2.0]),
        ("a restart starts over", [(5, 10.0), (1, 1.0), (2, 3.0)], [2.0]),
    ],
)
def test_tick_durations(name: str, reads: list[tuple[float, float]], want: list[float]) -> None:
    assert tick_durations(reads) == want, name


K = ("ns", "svc")


@pytest.mark.parametrize(
    ("name", "changes", "writes", "delays", "missed"),
    [
        ("a step up met by a write up", [Change(100, K, 4, 8)], [Write(50, K, 4), Write(112, K, 7)], [12.0], 0),
        ("a write the other way does not count", [Change(100, K, 4, 8)], [Write(50, K, 4), Write(105, K, 3)], [], 1),
        ("a step down", [Change(100, K, 8, 4)], [Write(50, K, 8), Write(130, K, 5)], [30.0], 0),
        ("no change of wanted replicas: not counted", [Change(100, K, 4, 4)], [], [], 0),
        ("a write after the next step belongs to it", [Change(100, K, 4, 8), Change(150, K, 8, 2)],
         [Write(50, K, 4), Write(160, K, 2)], [10.0], 1),
        ("no write seen before: any write in the direction", [Change(100, K, 4, 8)], [Write(104, K, 6)], [4.0], 0),
        ("after the end: not counted", [Change(300, K, 4, 8)], [], [], 0),
    ],
)  # fmt: skip
def test_reaction_delays(name: str, changes: list[Change], writes: list[Write], delays: list[float], missed: int) -> None:
    assert reaction_delays(changes, writes, until=200.0) == (delays, missed), name


def test_markdown_puts_the_goals_beside_the_figures() -> None:
    result: dict[str, Any] = {
        "setting": {"services": 50, "seed": 1},
        "figures": {"tick_p99_s": 2.345, "lease_lost": False, "operator_rss_mb_end": 212.0, "rate_change_to_write_p50_s": None},
        "notes": ["a note"],
    }
    md = markdown(result)
    assert "| tick_p99_s | 2.35 | < 1 s (at 2,000 services) |" in md
    assert "| lease_lost | False | never (before the failover) |" in md
    assert "| rate_change_to_write_p50_s | n/a |" in md
    assert "- a note" in md and "services=50, seed=1" in md


# ---------------------------------------------------------------------------------------------- configuration


def test_scrape_config_keeps_the_sources_labels_and_leaves_the_simulated_pods_alone() -> None:
    base: dict[str, Any] = {"global": {}, "scrape_configs": [{"job_name": "triton", "relabel_configs": [{"action": "keep"}]}]}
    cfg = scrape_config(base, "10.0.0.1:9999", 3)
    triton = cfg["scrape_configs"][0]
    assert triton["relabel_configs"][0] == {
        "source_labels": ["__meta_kubernetes_namespace"],
        "action": "drop",
        "regex": "bench-.*",
    }
    assert base["scrape_configs"][0]["relabel_configs"] == [{"action": "keep"}], "the base is not changed"
    job = cfg["scrape_configs"][1]
    assert job["honor_labels"] is True
    assert [s["labels"]["__metrics_path__"] for s in job["static_configs"]] == ["/metrics/0", "/metrics/1", "/metrics/2"]
    assert len({s["labels"]["instance"] for s in job["static_configs"]}) == 3


def test_service_manifest_is_a_pause_service_without_warm_up() -> None:
    m = service_manifest("svc-0001", 5, 50.0, 250.0)
    assert m["spec"]["triton"]["image"].startswith("registry.k8s.io/pause")
    assert m["spec"]["warmup"] == {"enabled": False}
    assert m["spec"]["scaling"]["maxReplicas"] == 10


@pytest.mark.parametrize(
    ("name", "values", "grew", "restarted"),
    [
        ("rises", [1.0, 3.0, 6.0], 5.0, 0),
        ("a restart loses only what was counted since the last read", [10.0, 12.0, 1.0, 4.0], 6.0, 1),
        ("flat", [5.0, 5.0], 0.0, 0),
        ("one read", [5.0], 0.0, 0),
    ],
)
def test_growth_across_restarts(name: str, values: list[float], grew: float, restarted: int) -> None:
    assert growth(values) == grew and restarts(values) == restarted


def test_growth_by_key() -> None:
    reads = [{"GET a": 1.0}, {"GET a": 3.0, "PUT b": 1.0}, {"GET a": 1.0, "PUT b": 2.0}]
    assert growth_by_key(reads) == {"GET a": 3.0, "PUT b": 2.0}
