"""The arrivals (a trace or a profile) and the open-loop sending loop."""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from typing import Any

import tritonclient.http.aio as triton_http

from foresail.clients.triton import TritonReplica
from foresail.replay import traces
from hack.loadgen.endpoints import Endpoints
from hack.loadgen.records import Record

__all__ = ["Sender", "arrivals_from", "generate"]


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


class Sender:
    """Requests to the endpoints, one Triton HTTP client per endpoint; every request recorded."""

    def __init__(self, args: argparse.Namespace, inputs: Any, t0: float) -> None:
        self.args, self.inputs, self.t0 = args, inputs, t0
        self.clients: dict[str, triton_http.InferenceServerClient] = {}
        self.records: list[Record] = []
        self.inflight = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def client_for(self, ep: str) -> triton_http.InferenceServerClient:
        if ep not in self.clients:
            self.clients[ep] = triton_http.InferenceServerClient(
                ep, conn_limit=self.args.max_inflight, conn_timeout=self.args.timeout
            )
        return self.clients[ep]

    def send(self, scheduled: float, ep: str | None) -> None:
        """Send one request now (scheduled at ``scheduled`` seconds), or record why it could not be sent."""
        now = time.monotonic() - self.t0
        if ep is None:
            self.records.append(Record(scheduled, now, 0.0, "no-ready-endpoint", ""))
        elif self.inflight >= self.args.max_inflight:
            self.records.append(Record(scheduled, now, 0.0, "client-queue-full", ep))
        else:
            self.inflight += 1
            task = asyncio.create_task(self._one(scheduled, ep))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _one(self, scheduled: float, ep: str) -> None:
        sent, wall = time.monotonic(), time.time()
        status = "ok"
        try:
            await asyncio.wait_for(self.client_for(ep).infer(self.args.model, self.inputs), timeout=self.args.timeout)
        except TimeoutError:
            status = "timeout"
        except Exception as e:  # recorded, never dropped
            status = f"error:{type(e).__name__}:{str(e)[:120]}"
        finally:
            self.inflight -= 1
        self.records.append(Record(scheduled, sent - self.t0, (time.monotonic() - sent) * 1000, status, ep, wall))

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=self.args.timeout + 5)
        for c in self.clients.values():
            await c.close()


async def _inputs(endpoint: str, model: str) -> Any:
    """Batch-1 inputs generated from the model's metadata (as the operator's warm-up makes them)."""
    probe = TritonReplica(endpoint)
    try:
        specs, max_batch = await probe.describe(model)
    finally:
        await probe.close()
    return TritonReplica.generated(specs, 1, max_batch > 0, seed=0)


async def generate(args: argparse.Namespace, arrivals: traces.Arrivals) -> tuple[list[Record], float, bool]:
    """Send every arrival at its time; returns the records (by scheduled time), the duration and whether a
    signal (SIGTERM, SIGINT) ended the run before its last arrival."""
    fixed = [e for e in (args.endpoints or "").split(",") if e]
    eps = Endpoints(args.service, fixed, args.port_name, args.refresh)
    stop, halt = asyncio.Event(), asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, halt.set)
    if args.service:
        eps.ready = await asyncio.to_thread(eps.load)
    if not eps.ready:
        raise SystemExit(f"loadgen: no ready endpoint for {args.service or fixed}")
    refresher = asyncio.create_task(eps.run(stop))
    sender = Sender(args, await _inputs(eps.ready[0], args.model), time.monotonic())
    for t in arrivals.times:
        delay = sender.t0 + t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if halt.is_set():
            break
        sender.send(t, eps.next())
    await sender.close()
    duration = time.monotonic() - sender.t0
    stop.set()
    await refresher
    return sorted(sender.records, key=lambda r: r.scheduled), duration, halt.is_set()
