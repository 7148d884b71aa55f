"""What each revision served since a step started (the rollout gates' input) and the make-before-break
handoff of replicas between slots: named cases."""

from __future__ import annotations

import math
from typing import Any

import pytest

from foresail.api.objects import LABEL_ISVC, LABEL_REVISION
from foresail.scaling.counters import PodSample, ServingPod
from foresail.scaling.latency import QUANTILES
from foresail.scaling.revisions import make_before_break, revision_figures

NOW = 10_000.0


def _pod(name: str, rev: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {LABEL_ISVC: "svc", LABEL_REVISION: rev}}}


def _samples(t0: float, t1: float, rps: float, err_rps: float = 0.0, p99_ms: float = 50.0, start: float = 0.0) -> list[PodSample]:
    qs = tuple(p99_ms * 1000 * f for f in (0.5, 0.8, 0.9, 1.0, 1.2))
    out = []
    t = t0
    while t <= t1:
        n = (t - t0) * rps + start
        out.append(PodSample(t, n, (t - t0) * err_rps, 0, 0, 0, 0, qs))
        t += 1.0
    return out


def test_counts_and_p99_by_revision_since_the_step() -> None:
    pods = [_pod("s1", "old"), _pod("s2", "old"), _pod("c1", "new")]
    serving = [ServingPod("s1", NOW - 600), ServingPod("s2", NOW - 600), ServingPod("c1", NOW - 120)]
    samples = {
        "s1": _samples(NOW - 200, NOW, 10, p99_ms=40),
        "s2": _samples(NOW - 200, NOW, 10, p99_ms=40),
        "c1": _samples(NOW - 120, NOW, 5, err_rps=1, p99_ms=120),
    }
    got = revision_figures(samples, pods, serving, NOW - 100, NOW)
    assert got["old"].requests == 2000 and got["old"].errors == 0
    assert got["new"].requests == 600 and got["new"].errors == 100, "completions + failures since the step, not before"
    assert got["old"].p99_ms == pytest.approx(40, rel=0.01)
    assert got["new"].p99_ms == pytest.approx(120, rel=0.01)


def test_a_young_replica_counts_requests_but_no_p99() -> None:
    """Its summary still holds its warm-up's requests: p99 waits a minute, the counts start at once."""
    samples = {"c1": _samples(NOW - 30, NOW, 10, p99_ms=500)}
    got = revision_figures(samples, [_pod("c1", "new")], [ServingPod("c1", NOW - 30)], NOW - 100, NOW)
    assert got["new"].requests == 300
    assert got["new"].p99_ms is None and got["new"].p99_replicas == 0


def test_warm_up_requests_before_serving_are_not_counted() -> None:
    samples = {"c1": _samples(NOW - 100, NOW, 10)}  # warm-up traffic from NOW-100, serving from NOW-40
    got = revision_figures(samples, [_pod("c1", "new")], [ServingPod("c1", NOW - 40)], NOW - 100, NOW)
    assert got["new"].requests == 400


def test_a_counter_reset_is_undone() -> None:
    before = _samples(NOW - 50, NOW - 26, 10)
    after = _samples(NOW - 25, NOW, 10)  # restarted from 0
    got = revision_figures({"c1": before + after}, [_pod("c1", "new")], [ServingPod("c1", NOW - 600)], NOW - 100, NOW)
    assert got["new"].requests == 240 + 250


def test_pods_without_revision_or_samples() -> None:
    pods = [{"metadata": {"name": "x", "labels": {}}}, _pod("c1", "new")]
    got = revision_figures({}, pods, [ServingPod("x", 0), ServingPod("c1", 0)], NOW - 100, NOW)
    assert set(got) == {"new"} and got["new"].requests == 0 and got["new"].p99_ms is None


def test_nan_summary_gives_no_p99() -> None:
    s = [
        PodSample(NOW - 1, 0, 0, 0, 0, 0, 0, tuple([math.nan] * len(QUANTILES))),
        PodSample(NOW, 10, 0, 0, 0, 0, 0, tuple([math.nan] * len(QUANTILES))),
    ]
    got = revision_figures({"c1": s}, [_pod("c1", "new")], [ServingPod("c1", 0)], NOW - 100, NOW)
    assert got["new"].requests == 10 and got["new"].p99_ms is None


@pytest.mark.parametrize(
    ("name", "targets", "current", "ready", "expect"),
    [
        ("canary starting: stable keeps its replicas", {"a": 1, "b": 1}, {"a": 2, "b": 0}, {"a": 2, "b": 0}, {"a": 2, "b": 1}),
        ("canary ready: stable shrinks", {"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 2, "b": 1}, {"a": 1, "b": 1}),
        ("promotion, new slot half ready", {"a": 0, "b": 4}, {"a": 3, "b": 2}, {"a": 3, "b": 2}, {"a": 2, "b": 4}),
        ("promotion, new slot ready", {"a": 0, "b": 4}, {"a": 3, "b": 4}, {"a": 3, "b": 4}, {"a": 0, "b": 4}),
        ("never above what the slot has", {"a": 1, "b": 5}, {"a": 2, "b": 1}, {"a": 2, "b": 0}, {"a": 2, "b": 5}),
        ("both grow", {"a": 3, "b": 2}, {"a": 2, "b": 1}, {"a": 2, "b": 1}, {"a": 3, "b": 2}),
    ],
)
def test_make_before_break(
    name: str, targets: dict[str, int], current: dict[str, int], ready: dict[str, int], expect: dict[str, int]
) -> None:
    assert make_before_break(targets, current, ready) == expect, name
