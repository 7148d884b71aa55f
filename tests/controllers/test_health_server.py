"""The operator's health port: /metrics with the exposition Content-Type Prometheus 3 requires, probes."""

from __future__ import annotations

import asyncio

import pytest

from foresail.controllers.operator import Health


async def get(path: str) -> tuple[str, dict[str, str], bytes]:
    server = await asyncio.start_server(Health().handle, "127.0.0.1", 0)
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
