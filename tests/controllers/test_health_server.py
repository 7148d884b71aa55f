"""The operator's health port: /metrics with the exposition Content-Type Prometheus 3 requires, probes."""

from __future__ import annotations

import asyncio

import pytest

from foresail.controllers.liveness import Heartbeat
from foresail.controllers.operator import Health


async def get(path: str, health: Health | None = None) -> tuple[str, dict[str, str], bytes]:
    server = await asyncio.start_server((health or Health()).handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    return status, dict(line.split(": ", 1) for line in lines), body


@pytest.mark.parametrize(
    ("name", "path", "status", "content_type"),
    [
        ("metrics", "/metrics", "HTTP/1.1 200 OK", "text/plain; version=0.0.4; charset=utf-8"),
        ("liveness", "/healthz", "HTTP/1.1 200 OK", "text/plain; charset=utf-8"),
        ("unknown path", "/nope", "HTTP/1.1 503 Service Unavailable", "text/plain; charset=utf-8"),
    ],
)
async def test_health_port(name: str, path: str, status: str, content_type: str) -> None:
    got_status, headers, body = await get(path)
    assert (got_status, headers["Content-Type"]) == (status, content_type), name
    assert int(headers["Content-Length"]) == len(body), name


@pytest.mark.parametrize(
    ("name", "path", "now", "body"),
    [
        ("a pass 10 s ago", "/healthz", 1_010.0, b"ok\n"),
        ("no pass for 11 s", "/healthz", 1_011.0, b"unhealthy: autoscaler stalled: the last pass completed 11 s ago (limit 10 s)\n"),
        ("readiness says the same", "/readyz", 1_011.0, b"unhealthy: autoscaler stalled: the last pass completed 11 s ago (limit 10 s)\n"),
    ],
)
async def test_the_probe_answers_why_it_fails(name: str, path: str, now: float, body: bytes) -> None:
    hb = Heartbeat(started=990.0, last_pass=1_000.0)
    hb.limit(stall_periods=3, stall_min_s=10, watch_stall_min_s=150)
    status, _, got = await get(path, Health(hb, period_s=2, clock=lambda: now))
    assert (status.endswith("200 OK"), got) == (body == b"ok\n", body), name
