"""The shard loop against an in-memory Triton and a virtual clock: resume, retries, limits, reports."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from foresail.evaluation.dataset import Item
from foresail.evaluation.limiter import AIMDLimiter
from foresail.evaluation.progress import ShardProgress, ShardSummary
from foresail.evaluation.results import ResultStore
from foresail.evaluation.runner import run_shard
from foresail.evaluation.scoring import ItemScore, Outputs, make_scorer
from tests.evaluation.fakes import FakeTime, FakeTriton, RealTime, Reports, items

SCORER = make_scorer("numericTolerance", atol=0.0, rtol=0.0)


def limiter(lo: int = 1, hi: int = 8, initial: int | None = 4) -> AIMDLimiter:
    return AIMDLimiter(min_limit=lo, max_limit=hi, initial=initial)


async def run(
    data: list[Item],
    directory: Path,
    triton: FakeTriton,
    *,
    lim: AIMDLimiter | None = None,
    reports: Reports | None = None,
    scorer: Any = SCORER,
    shard: int = 0,
    **kw: Any,
) -> ShardSummary:
    return await run_shard(
        data,
        ResultStore(directory, shard),
        triton,
        scorer,
        lim or limiter(),
        triton.time.clock,
        reports or Reports(triton.time),
        sleep=triton.time.sleep,
        **kw,
    )


def tear_a_write(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b'{"correct":true,"id":"item-')  # a kill in the middle of a write


def final_ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_bytes().splitlines()]


async def test_a_shard_is_evaluated_scored_and_compacted_in_item_order(tmp_path: Path) -> None:
    data = items(20)
    t = FakeTime()
    triton = FakeTriton(t, fail_first={"item-3": 2}, always_fail={"item-7"}, wrong={"item-5"})
    reports = Reports(t)
    s = await run(data, tmp_path, triton, reports=reports, retries=3)
    assert (s.total, s.done, s.ok, s.errors, s.resumed, s.stopped) == (20, 20, 19, 1, 0, False)
    assert s.score == {"scored": 19, "correct": 18, "accuracy": 18 / 19, "mean": 18 / 19}
    assert s.requests == 20 + 2 + 3  # item-3 twice more, item-7 three times more
    assert s.retries == 5
    assert s.final_path == tmp_path / "shard-0.final.jsonl"
    assert final_ids(s.final_path) == [it.id for it in data]
    lines = {json.loads(line)["id"]: json.loads(line) for line in s.final_path.read_bytes().splitlines()}
    assert lines["item-1"] == {
        "id": "item-1",
        "shard": 0,
        "correct": True,
        "value": 1.0,
        "outputs": {"y": [[3.0]]},
        "expected": {"y": [3]},
        "label": 1,
    }
    assert lines["item-7"] == {"id": "item-7", "shard": 0, "error": "ConnectionError: server overloaded (after 4 attempts)"}
    assert lines["item-5"]["correct"] is False
    final = reports.seen[-1][1]
    assert final.finished
    assert (final.done, final.total, final.ok, final.errors, final.correct, final.scored) == (20, 20, 19, 1, 18, 19)


async def test_retries_back_off_exponentially_with_jitter(tmp_path: Path) -> None:
    t = FakeTime()
    triton = FakeTriton(t, latency_s=0.0, always_fail={"item-0"})
    await run(items(1), tmp_path, triton, retries=3, backoff_s=0.5)
    backoffs = [d for d in t.sleeps if d > 0]
    assert len(backoffs) == 3
    for attempt, d in enumerate(backoffs):
        assert 0.5 * 2**attempt * 0.5 <= d < 0.5 * 2**attempt, (attempt, d)


async def test_kill_and_resume_gives_the_same_bytes_as_an_uninterrupted_run(tmp_path: Path) -> None:
    data = items(60)
    flaky = {"item-4": 1, "item-30": 2, "item-50": 1}

    whole = await run(data, tmp_path / "whole", FakeTriton(FakeTime(), fail_first=dict(flaky), always_fail={"item-9"}))
    assert whole.final_path is not None

    killed_dir = tmp_path / "killed"
    first = FakeTriton(FakeTime(), fail_first=dict(flaky), always_fail={"item-9"})
    task = asyncio.create_task(run(data, killed_dir, first))
    await first.until_calls(30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    store = ResultStore(killed_dir, 0)
    partial = store.done()
    assert 0 < len(partial) < len(data)
    assert not store.final_path.exists()
    tear_a_write(store.path)

    second = FakeTriton(FakeTime(), fail_first=dict(flaky), always_fail={"item-9"})
    resumed = await run(data, killed_dir, second)
    assert resumed.final_path is not None
    assert resumed.final_path.read_bytes() == whole.final_path.read_bytes()
    ids = final_ids(resumed.final_path)
    assert len(ids) == len(set(ids)) == len(data)
    done_before = {i for i, r in partial.items() if "error" not in r}
    assert resumed.resumed == len(done_before)
    assert not done_before & set(second.sent())  # what was done is not sent again
    assert (resumed.ok, resumed.errors) == (whole.ok, whole.errors) == (59, 1)


async def test_error_items_are_retried_on_resume(tmp_path: Path) -> None:
    data = items(5)
    s1 = await run(data, tmp_path, FakeTriton(FakeTime(), always_fail={"item-2"}), retries=0)
    assert s1.errors == 1
    healed = FakeTriton(FakeTime())
    s2 = await run(data, tmp_path, healed)
    assert healed.sent() == ["item-2"]
    assert (s2.ok, s2.errors, s2.resumed) == (5, 0, 4)
    assert "error" not in ResultStore(tmp_path, 0).done()["item-2"]


@pytest.mark.parametrize(
    ("name", "limit", "batch_size"), [("one at a time", 1, 1), ("three", 3, 1), ("three batches of 4", 3, 4)]
)
async def test_in_flight_never_exceeds_the_limit(tmp_path: Path, name: str, limit: int, batch_size: int) -> None:
    triton = FakeTriton(FakeTime())
    s = await run(items(40), tmp_path, triton, lim=AIMDLimiter(limit, limit), batch_size=batch_size)
    assert s.ok == 40
    assert triton.max_in_flight == limit, name
    assert all(len(ids) <= batch_size for _, ids, _ in triton.calls)


async def test_in_flight_follows_a_limit_that_drops_under_pressure(tmp_path: Path) -> None:
    t = FakeTime()
    lim = AIMDLimiter(min_limit=1, max_limit=6, initial=6)
    triton = FakeTriton(t)
    task = asyncio.create_task(run(items(60), tmp_path, triton, lim=lim))
    await triton.until_calls(12)
    lim.set_pressure(1.0, now=t.t)  # production needs the GPUs: back off to the minimum
    s = await task
    assert s.ok == 60
    assert triton.max_in_flight == 6
    assert [n for _, _, n in triton.calls[-30:]] == [1] * 30
    assert s.throttled_s > 0


async def test_max_rps_is_respected(tmp_path: Path) -> None:
    rt = RealTime()  # real time, ~0.15 s: the pacing a Triton server would see
    triton = FakeTriton(rt, latency_s=0.0, fail_first={"item-2": 1})
    t0 = rt.clock()
    s = await run(items(15), tmp_path, triton, lim=AIMDLimiter(8, 8), max_rps=100.0, backoff_s=0.0)
    assert s.ok == 15
    starts = sorted(start - t0 for start, _, _ in triton.calls)
    assert len(starts) == 16  # retries go through the bucket too
    for k, start in enumerate(starts):
        assert start >= k / 100.0 - 1e-3, (k, start)  # at most rate * t + 1 requests by any time t


async def test_timeouts_are_retried_then_recorded(tmp_path: Path) -> None:
    triton = FakeTriton(FakeTime(), slow_first={"item-0"}, always_slow={"item-1"})
    s = await run(items(3), tmp_path, triton, retries=1, timeout_s=0.05)
    assert (s.ok, s.errors) == (2, 1)
    assert ResultStore(tmp_path, 0).done()["item-1"]["error"] == "TimeoutError: no response within 0.05s (after 2 attempts)"


async def test_a_rejected_input_in_a_batch_fails_only_its_item(tmp_path: Path) -> None:
    lim = limiter(initial=4)
    triton = FakeTriton(FakeTime(), bad={"item-2"})
    s = await run(items(8), tmp_path, triton, lim=lim, batch_size=4)
    assert (s.ok, s.errors) == (7, 1)
    assert ResultStore(tmp_path, 0).done()["item-2"]["error"] == "PermanentError: input x: unexpected shape (after 1 attempt)"
    assert [ids for _, ids, _ in triton.calls].count(["item-2"]) == 1  # not retried
    assert lim.base_limit >= 4  # and not a congestion signal


async def test_an_infer_that_returns_the_wrong_number_of_results(tmp_path: Path) -> None:
    async def short(batch: list[Item]) -> list[Outputs]:
        return []

    t = FakeTime()
    s = await run_shard(items(2), ResultStore(tmp_path, 0), short, SCORER, limiter(), t.clock, Reports(t), sleep=t.sleep)
    assert s.errors == 2
    assert ResultStore(tmp_path, 0).done()["item-0"]["error"].startswith("PermanentError: infer returned 0 results for 1 items")


async def test_a_scorer_failure_is_an_error_result_without_new_requests(tmp_path: Path) -> None:
    def picky(item: Item, outputs: Outputs) -> ItemScore:
        if item.id == "item-1":
            raise ValueError("no expected value")
        return ItemScore(True, 1.0)

    triton = FakeTriton(FakeTime())
    s = await run(items(3), tmp_path, triton, scorer=picky)
    assert (s.ok, s.errors, s.requests) == (2, 1, 3)
    assert ResultStore(tmp_path, 0).done()["item-1"]["error"] == "scoring failed: ValueError: no expected value"


async def test_stop_suspends_without_a_final_file_and_a_later_run_finishes(tmp_path: Path) -> None:
    data = items(40)
    stop = asyncio.Event()
    triton = FakeTriton(FakeTime())
    task = asyncio.create_task(run(data, tmp_path, triton, stop=stop))
    await triton.until_calls(10)
    stop.set()
    s = await task
    assert s.stopped and s.final_path is None
    assert 0 < s.done < 40
    assert not ResultStore(tmp_path, 0).final_path.exists()
    s2 = await run(data, tmp_path, FakeTriton(FakeTime()))
    assert s2.resumed == s.done
    assert s2.final_path is not None
    assert Counter(final_ids(s2.final_path)) == Counter(it.id for it in data)


async def test_progress_is_reported_every_two_seconds_and_at_the_end(tmp_path: Path) -> None:
    t = FakeTime()
    reports = Reports(t)
    s = await run(items(400), tmp_path, FakeTriton(t, latency_s=0.02), reports=reports, lim=AIMDLimiter(2, 2))
    times = [at for at, p in reports.seen if not p.finished]
    assert len(times) >= 2
    assert all(b - a >= 2.0 for a, b in itertools.pairwise(times))
    last = reports.seen[-1][1]
    assert last.finished and last.done == last.total == s.total == 400
    assert last.limit == 2
    assert last.eps > 0
    assert last.p50_ms is not None and last.p99_ms is not None and last.p50_ms <= last.p99_ms
    # every request of the attempt, not a window: the run's percentiles once it has finished
    assert last.latency.total() == s.requests == 400
    assert last.latency.percentile(50) == pytest.approx(last.p50_ms, rel=0.1), "the same requests, to a bucket"


async def test_a_failing_report_does_not_stop_the_evaluation(tmp_path: Path) -> None:
    async def broken(progress: ShardProgress) -> None:
        raise RuntimeError("apiserver unavailable")

    t = FakeTime()
    s = await run_shard(items(3), ResultStore(tmp_path, 0), FakeTriton(t), SCORER, limiter(), t.clock, broken, sleep=t.sleep)
    assert s.ok == 3


async def test_nothing_left_to_do_only_compacts(tmp_path: Path) -> None:
    data = items(4)
    first = await run(data, tmp_path, FakeTriton(FakeTime()))
    again = FakeTriton(FakeTime())
    s = await run(data, tmp_path, again)
    assert again.calls == []
    assert (s.resumed, s.ok, s.requests) == (4, 4, 0)
    assert first.final_path is not None and s.final_path is not None
    assert s.final_path.read_bytes() == first.final_path.read_bytes()


async def test_outputs_can_be_left_out_of_the_results(tmp_path: Path) -> None:
    await run(items(1), tmp_path, FakeTriton(FakeTime()), record_outputs=False)
    assert "outputs" not in ResultStore(tmp_path, 0).done()["item-0"]


@pytest.mark.parametrize(
    ("name", "kw", "message"),
    [
        ("batch size", {"batch_size": 0}, "batch_size = 0, must be >= 1"),
        ("rate", {"max_rps": 0.0}, r"max_rps = 0.0, must be > 0 \(or None for no cap\)"),
        ("retries", {"retries": -1}, "retries = -1, must be >= 0"),
        ("timeout", {"timeout_s": 0.0}, "timeout_s = 0.0, must be > 0"),
    ],
)
async def test_bad_arguments(tmp_path: Path, name: str, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await run(items(1), tmp_path, FakeTriton(FakeTime()), **kw)


async def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="items list an id twice"):
        await run(items(2) + items(1), tmp_path, FakeTriton(FakeTime()))
