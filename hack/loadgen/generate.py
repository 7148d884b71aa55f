"""The arrivals (a trace or a profile) and the open-loop sending loop."""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

import tritonclient.http.aio as triton_http

from foresail.clients.triton import TritonReplica
from foresail.replay import traces
from hack.loadgen.endpoints import Endpoints
from hack.loadgen.records import Record

__all__ = ["arrivals_from", "generate"]


def arrivals_from(args: argparse.Namespace) -> traces.Arrivals:
    if args.trace:
        arr = traces.reshape(
            traces.load_trace(args.trace),
            compress=args.compress,
            rate_scale=args.rate_scale,
            start=args.start,
            duration=args.duration * args.compress,
            seed=args.seed,
        )
    else:
        kind, params = traces.parse_profile(args.profile)
        arr = traces.profile_arrivals(kind, params, args.duration, seed=args.seed)
    n = min(len(arr), args.max_requests)
    return traces.Arrivals(arr.times[:n], arr.work[:n])


async def generate(args: argparse.Namespace, arrivals: traces.Arrivals) -> tuple[list[Record], float, bool]:
    """Send every arrival at its time; returns the records (by scheduled time), the duration and whether a
    signal (SIGTERM, SIGINT) ended the run before its last arrival."""
    fixed = [e for e in (args.endpoints or "").split(",") if e]
    eps = Endpoints(args.service, fixed, args.port_name, args.refresh)
    stop, halt = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, halt.set)
    if args.service:
        eps.ready = await asyncio.to_thread(eps.load)
    refresher = asyncio.create_task(eps.run(stop))
    clients: dict[str, triton_http.InferenceServerClient] = {}

    def client_for(ep: str) -> triton_http.InferenceServerClient:
        if ep not in clients:
            clients[ep] = triton_http.InferenceServerClient(ep, conn_limit=args.max_inflight, conn_timeout=args.timeout)
        return clients[ep]

    if not eps.ready:
        raise SystemExit(f"loadgen: no ready endpoint for {args.service or fixed}")
    probe = TritonReplica(eps.ready[0])
    try:
        specs, max_batch = await probe.describe(args.model)
    finally:
        await probe.close()
    inputs = TritonReplica.generated(specs, 1, max_batch > 0, seed=0)

    records: list[Record] = []
    inflight = 0
    tasks: set[asyncio.Task[None]] = set()

    async def one(scheduled: float, ep: str) -> None:
        nonlocal inflight
        sent = time.monotonic()
        wall = time.time()
        status = "ok"
        try:
            await asyncio.wait_for(client_for(ep).infer(args.model, inputs), timeout=args.timeout)
        except TimeoutError:
            status = "timeout"
        except Exception as e:  # recorded, never dropped
            status = f"error:{type(e).__name__}:{str(e)[:120]}"
        finally:
            inflight -= 1
        records.append(Record(scheduled - t0, sent - t0, (time.monotonic() - sent) * 1000, status, ep, wall))

    t0 = time.monotonic()
    for t in arrivals.times:
        target = t0 + t
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if halt.is_set():
            break
        ep = eps.next()
        now = time.monotonic()
        if ep is None:
            records.append(Record(t, now - t0, 0.0, "no-ready-endpoint", ""))
            continue
        if inflight >= args.max_inflight:
            records.append(Record(t, now - t0, 0.0, "client-queue-full", ep))
            continue
        inflight += 1
        task = asyncio.create_task(one(target, ep))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=args.timeout + 5)
    duration = time.monotonic() - t0
    stop.set()
    await refresher
    for c in clients.values():
        await c.close()
    records.sort(key=lambda r: r.scheduled)
    return records, duration, halt.is_set()
