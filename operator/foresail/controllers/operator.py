"""``foresail run``: the operator process (kopf handlers under a leader lease, health endpoint)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any

import kopf

from foresail.clients.kube import Kube, load_config
from foresail.controllers import inferenceservice  # noqa: F401 - registers the handlers
from foresail.controllers.leader import LeaseElector

__all__ = ["run"]

log = logging.getLogger("foresail")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="foresail.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="foresail.dev", key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our reconcilers post their own, meaningful events
    settings.execution.max_workers = 16
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.networking.error_backoffs = [1, 2, 5, 10, 30]


async def _main(namespace: str, lease_name: str, identity: str, health: str, elect: bool) -> None:
    stop = asyncio.Event()
    if elect:
        elector = LeaseElector(Kube(), namespace, lease_name, identity)
        await elector.acquire()
        holder = asyncio.create_task(elector.hold(stop))
    await kopf.operator(clusterwide=True, standalone=True, stop_flag=stop, liveness_endpoint=health)
    if elect:
        holder.cancel()
        if stop.is_set():
            raise SystemExit("foresail: lost the leader lease; exiting so a fresh replica can stand by")


def run(namespace: str | None, health_port: int, elect: bool) -> int:
    logging.basicConfig(
        level=os.environ.get("FORESAIL_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    load_config()
    ns = namespace or os.environ.get("POD_NAMESPACE") or "foresail-system"
    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    log.info("foresail operator %s starting (lease %s/foresail-operator, election %s)", identity, ns, "on" if elect else "off")
    asyncio.run(_main(ns, "foresail-operator", identity, f"http://0.0.0.0:{health_port}/healthz", elect))
    return 0
