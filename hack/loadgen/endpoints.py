"""The ready endpoints of a Service, from its EndpointSlices, refreshed in the background; used round robin."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hack.base.log import logger

__all__ = ["Endpoints"]

log = logger("loadgen", stderr=True)  # stdout carries the summary


class Endpoints:
    def __init__(self, service: str | None, fixed: list[str], port_name: str, refresh: float) -> None:
        self.fixed = fixed
        self.service = service
        self.port_name = port_name
        self.refresh = refresh
        self.ready: list[str] = list(fixed)
        self._i = 0
        self._api: Any = None

    def load(self) -> list[str]:
        """``HOST:PORT`` of every ready endpoint of the Service (through the kubeconfig in ``KUBECONFIG``)."""
        from kubernetes import client, config

        if self._api is None:
            config.load_kube_config()  # type: ignore[no-untyped-call]
            self._api = client.DiscoveryV1Api()
        assert self.service is not None
        ns, name = self.service.split("/", 1)
        out: list[str] = []
        for s in self._api.list_namespaced_endpoint_slice(ns, label_selector=f"kubernetes.io/service-name={name}").items:
            port = next((p.port for p in s.ports or [] if p.name == self.port_name), None)
            if port is None and s.ports:
                port = s.ports[0].port
            for ep in s.endpoints or []:
                if ep.conditions and ep.conditions.ready:
                    out.extend(f"{a}:{port}" for a in ep.addresses)
        return sorted(out)

    async def run(self, stop: asyncio.Event) -> None:
        if self.service is None:
            return
        while not stop.is_set():
            try:
                self.ready = await asyncio.to_thread(self.load)
            except Exception as e:  # keep the last good set; report once per failure
                log(f"endpoint refresh failed: {e!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.refresh)

    def next(self) -> str | None:
        if not self.ready:
            return None
        self._i = (self._i + 1) % len(self.ready)
        return self.ready[self._i]
