"""The async loop of one shard: items -> inference -> scores -> result log, resumable and polite.

All IO is injected: ``infer`` (one Triton request for a batch of items; the caller builds the tensors and
splits the response into one ``{output name: array}`` per item), ``clock`` (monotonic seconds),
``report`` (progress, e.g. to the EvalJob's status), ``sleep`` (back-off and rate pacing; a fake one in
tests). Production pressure is the caller's business too (a task calling ``limiter.set_pressure``); the
runner keeps at most ``limiter.limit`` requests in flight and follows the limit as it changes.

Resume and errors:

- Items with a successful result in ``store.done()`` are not sent again. Items whose recorded result is
  an error are retried: an error is often transient (an overloaded or restarting server), and a resumed
  run should finish with the results an uninterrupted run would have had.
- A request is retried ``retries`` times on an exception or a timeout (``timeout_s``), after
  ``backoff_s * 2**attempt`` seconds (times a deterministic jitter in [0.5, 1)). Each failure is a
  congestion signal for the limiter. ``PermanentError`` is not retried and is not a congestion signal;
  a batch that fails with it is split and its items are sent alone, so one bad input fails one item.
- An item whose request failed every attempt (or whose scorer raised) is recorded as
  ``{"id", "shard", "error": "<message>"}`` and counted in ``errors``; never dropped.
- Results are appended as requests finish (every loop wakeup, or every ``flush_every_s``), so a kill
  loses at most the requests in flight (plus that interval), which the next run simply redoes; the final
  file comes from the log by id, so nothing is ever duplicated in it. Appends are synchronous (one write
  and fsync per wakeup, however many requests finished): a cancel can never leave a write running in a
  thread behind it; raise ``flush_every_s`` where fsync is slow.
- ``stop`` (an ``asyncio.Event``) ends the run early: requests in flight are cancelled, finished results
  are kept, no final file is written (``stopped=True``). Cancelling the task behaves the same way.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from numpy.typing import NDArray

from foresail.api.evalreport import LatencyHistogram
from foresail.evaluation.dataset import Item
from foresail.evaluation.limiter import AIMDLimiter, TokenBucket
from foresail.evaluation.progress import RecentWindow, ShardProgress, ShardSummary
from foresail.evaluation.results import ResultStore, jsonable
from foresail.evaluation.scoring import ItemScore, summarize
from foresail.evaluation.sharding import item_rng

__all__ = ["Clock", "Infer", "PermanentError", "Report", "ScoreFn", "Sleep", "run_shard"]

log = logging.getLogger(__name__)

Infer = Callable[[list[Item]], Awaitable[Sequence[Mapping[str, NDArray[Any]]]]]
ScoreFn = Callable[[Item, Mapping[str, NDArray[Any]]], ItemScore]
Clock = Callable[[], float]
Report = Callable[[ShardProgress], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]

_MAX_ERROR_CHARS = 500


class PermanentError(Exception):
    """Raised by ``infer`` when the same request would fail again (e.g. Triton rejects an input: HTTP 400)."""


@dataclass(frozen=True)
class _Options:
    batch_size: int
    max_rps: float | None
    retries: int
    backoff_s: float
    timeout_s: float
    report_every_s: float
    flush_every_s: float
    window_s: float
    record_outputs: bool

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size = {self.batch_size}, must be >= 1")
        if self.max_rps is not None and not (math.isfinite(self.max_rps) and self.max_rps > 0):
            raise ValueError(f"max_rps = {self.max_rps}, must be > 0 (or None for no cap)")
        if self.retries < 0:
            raise ValueError(f"retries = {self.retries}, must be >= 0")
        for name in ("backoff_s", "report_every_s", "flush_every_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} = {getattr(self, name)}, must be >= 0")
        for name in ("timeout_s", "window_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} = {getattr(self, name)}, must be > 0")


def _describe(e: BaseException, timeout_s: float) -> str:
    if isinstance(e, TimeoutError):
        return f"TimeoutError: no response within {timeout_s:g}s"
    text = f"{type(e).__name__}: {e}".strip().rstrip(":")
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


class _ShardRun:
    def __init__(
        self,
        items: Sequence[Item],
        store: ResultStore,
        infer: Infer,
        scorer: ScoreFn,
        limiter: AIMDLimiter,
        clock: Clock,
        report: Report,
        sleep: Sleep,
        opts: _Options,
    ) -> None:
        self.items, self.store, self.infer, self.scorer = items, store, infer, scorer
        self.limiter, self.clock, self.report, self.sleep, self.opts = limiter, clock, report, sleep, opts
        self.bucket = TokenBucket(opts.max_rps) if opts.max_rps else None
        self.window = RecentWindow(span=opts.window_s)
        self.latency = LatencyHistogram()
        self.scores: list[ItemScore] = []
        self.ok = self.errors = self.resumed = self.requests = self.retries = 0
        self.buffer: list[dict[str, Any]] = []
        self.report_task: asyncio.Task[None] | None = None
        self.start = self.last_report = self.last_flush = 0.0

    # -- one request ---------------------------------------------------------------------------------

    async def _infer(self, batch: list[Item]) -> Sequence[Mapping[str, NDArray[Any]]] | BaseException:
        """The outputs for ``batch``, or the exception of its last attempt."""
        failure: BaseException = RuntimeError("no attempt made")
        for attempt in range(self.opts.retries + 1):
            if self.bucket is not None:
                delay = self.bucket.reserve(self.clock())
                if delay > 0:
                    await self.sleep(delay)
            t0 = self.clock()
            self.requests += 1
            try:
                outs = await asyncio.wait_for(self.infer(batch), self.opts.timeout_s)
                if len(outs) != len(batch):
                    raise PermanentError(f"infer returned {len(outs)} results for {len(batch)} items")
            except PermanentError as e:
                self.window.add(self.clock(), 0)
                return e
            except Exception as e:
                now = self.clock()
                self.limiter.on_error(now)
                self.window.add(now, 0)
                failure = e
                if attempt < self.opts.retries:
                    self.retries += 1
                    jitter = float(item_rng(batch[0].id, attempt).uniform(0.5, 1.0))
                    await self.sleep(self.opts.backoff_s * 2**attempt * jitter)
                continue
            t1 = self.clock()
            self.limiter.on_success((t1 - t0) * 1000.0, t1)
            self.window.add(t1, len(batch), (t1 - t0) * 1000.0)
            self.latency.add((t1 - t0) * 1000.0)
            return outs
        return failure

    def _error(self, item: Item, message: str) -> dict[str, Any]:
        return {"id": item.id, "shard": self.store.shard, "error": message}

    def _result(self, item: Item, outputs: Mapping[str, NDArray[Any]]) -> dict[str, Any]:
        try:
            score = self.scorer(item, outputs)
        except Exception as e:
            return self._error(item, f"scoring failed: {_describe(e, self.opts.timeout_s)}")
        rec: dict[str, Any] = {
            "id": item.id,
            "shard": self.store.shard,
            "correct": bool(score.correct),
            "value": jsonable(float(score.value)),
        }
        if self.opts.record_outputs:
            rec["outputs"] = {name: jsonable(arr) for name, arr in outputs.items()}
        if item.expected is not None:
            rec["expected"] = item.expected
        if item.label is not None:
            rec["label"] = item.label
        return rec

    async def _request(self, batch: list[Item]) -> list[dict[str, Any]]:
        res = await self._infer(batch)
        if isinstance(res, PermanentError) and len(batch) > 1:
            out: list[dict[str, Any]] = []
            for item in batch:  # isolate the bad input: the others still get results
                out += await self._request([item])
            return out
        if isinstance(res, BaseException):
            attempts = 1 if isinstance(res, PermanentError) else self.opts.retries + 1
            msg = f"{_describe(res, self.opts.timeout_s)} (after {attempts} attempt{'s' if attempts > 1 else ''})"
            return [self._error(item, msg) for item in batch]
        return [self._result(item, outputs) for item, outputs in zip(batch, res, strict=True)]

    # -- bookkeeping ---------------------------------------------------------------------------------

    def _count(self, rec: Mapping[str, Any]) -> None:
        if "error" in rec:
            self.errors += 1
            return
        self.ok += 1
        if "correct" in rec:
            self.scores.append(ItemScore(bool(rec["correct"]), float(rec.get("value", 0.0))))

    def _progress(self, now: float, finished: bool) -> ShardProgress:
        p50, p95, p99 = self.window.latency_percentiles(now)
        return ShardProgress(
            shard=self.store.shard,
            total=len(self.items),
            done=self.ok + self.errors,
            ok=self.ok,
            errors=self.errors,
            correct=sum(s.correct for s in self.scores),
            scored=len(self.scores),
            eps=round(self.window.rate(now, self.start), 3),
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            limit=self.limiter.limit,
            throttled_s=round(self.limiter.throttled_seconds(now), 3),
            finished=finished,
            latency=LatencyHistogram(dict(self.latency.counts)),
        )

    async def _send(self, progress: ShardProgress) -> None:
        try:
            await self.report(progress)
        except Exception:
            log.warning("shard %d: progress report failed", self.store.shard, exc_info=True)

    def _maybe_report(self, now: float) -> None:
        if now - self.last_report < self.opts.report_every_s:
            return
        if self.report_task is not None and not self.report_task.done():
            return  # a slow report is skipped, never queued, and never holds up the requests
        self.last_report = now
        self.report_task = asyncio.create_task(self._send(self._progress(now, finished=False)))

    def _flush(self, now: float, force: bool = False) -> None:
        if self.buffer and (force or now - self.last_flush >= self.opts.flush_every_s):
            self.store.append(self.buffer)
            self.buffer = []
            self.last_flush = now

    # -- the loop ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None) -> ShardSummary:
        ids = [it.id for it in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("items list an id twice")
        previous = self.store.done()
        todo: list[Item] = []
        for item in self.items:
            rec = previous.get(item.id)
            if rec is not None and "error" not in rec:
                self._count(rec)
                self.resumed += 1
            else:
                todo.append(item)
        bs = self.opts.batch_size
        batches = deque(todo[i : i + bs] for i in range(0, len(todo), bs))
        self.start = self.last_report = self.last_flush = self.clock()
        tasks: set[asyncio.Task[list[dict[str, Any]]]] = set()
        stop_task = asyncio.create_task(stop.wait()) if stop is not None else None
        stopped = False
        try:
            while batches or tasks:
                if stop is not None and stop.is_set():
                    stopped = True
                    break
                while batches and len(tasks) < self.limiter.limit:
                    tasks.add(asyncio.create_task(self._request(batches.popleft())))
                waiting: set[asyncio.Task[Any]] = set(tasks) | ({stop_task} if stop_task else set())
                finished, _ = await asyncio.wait(
                    waiting, timeout=self.opts.report_every_s or None, return_when=asyncio.FIRST_COMPLETED
                )
                for task in finished:
                    if task is stop_task:
                        continue
                    tasks.discard(task)
                    for rec in task.result():
                        self._count(rec)
                        self.buffer.append(rec)
                now = self.clock()
                self._flush(now)
                self._maybe_report(now)
        finally:
            for task in tasks:
                task.cancel()
            if stop_task is not None:
                stop_task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            for task in tasks:  # those that finished before the cancel still count
                if not task.cancelled() and task.exception() is None:
                    for rec in task.result():
                        self._count(rec)
                        self.buffer.append(rec)
            self._flush(self.clock(), force=True)
            if self.report_task is not None:
                self.report_task.cancel()
        final_path = None if stopped else self.store.compact(ids)
        now = self.clock()
        await self._send(self._progress(now, finished=not stopped))
        return ShardSummary(
            shard=self.store.shard,
            total=len(self.items),
            done=self.ok + self.errors,
            ok=self.ok,
            errors=self.errors,
            resumed=self.resumed,
            requests=self.requests,
            retries=self.retries,
            score=summarize(self.scores),
            final_path=final_path,
            stopped=stopped,
            elapsed_s=round(now - self.start, 3),
            throttled_s=round(self.limiter.throttled_seconds(now), 3),
        )


async def run_shard(
    items: Sequence[Item],
    store: ResultStore,
    infer: Infer,
    scorer: ScoreFn,
    limiter: AIMDLimiter,
    clock: Clock,
    report: Report,
    *,
    batch_size: int = 1,
    max_rps: float | None = None,
    retries: int = 3,
    backoff_s: float = 0.5,
    timeout_s: float = 10.0,
    stop: asyncio.Event | None = None,
    sleep: Sleep = asyncio.sleep,
    report_every_s: float = 2.0,
    flush_every_s: float = 0.0,
    window_s: float = 10.0,
    record_outputs: bool = True,
) -> ShardSummary:
    """Evaluate one shard's ``items`` (in their order) into ``store``; compact it at the end.

    ``max_rps`` caps inference requests (not items) per second, retries included. ``report_every_s``:
    progress cadence (and the longest the loop sleeps without looking at the limit). ``window_s``: the
    window of ``eps`` and the latency percentiles. ``record_outputs``: keep the output tensors in the
    results (large for big outputs). See the module docstring for resume, errors and stopping.
    """
    opts = _Options(
        batch_size=batch_size,
        max_rps=max_rps,
        retries=retries,
        backoff_s=backoff_s,
        timeout_s=timeout_s,
        report_every_s=report_every_s,
        flush_every_s=flush_every_s,
        window_s=window_s,
        record_outputs=record_outputs,
    )
    return await _ShardRun(items, store, infer, scorer, limiter, clock, report, sleep, opts).run(stop)
