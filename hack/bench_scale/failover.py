"""Failover at scale: the leader's pod deleted with grace 0 (the local runtime SIGKILLs it, no Lease release),
then how long until a standby holds the Lease and until it completes its first autoscaler pass (every due
service's decision, at scale: the new leader's caches filled from its watches, its first counters read)."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from hack.base import netns
from hack.base.log import logger
from hack.bench_scale import figures as fig
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.chart import SYSTEM_NS

__all__ = ["failover"]

log = logger("bench-scale")


class _Leader(Protocol):
    def leader_url(self) -> tuple[str, str] | None: ...


def _passes(cluster: Cluster, url: str, get: Callable[[str], str]) -> float | None:
    text = netns.call_in(cluster.network.client_ns, partial(get, url), timeout=10)
    return fig.sum_by(fig.parse_metrics(text, ("foresail_autoscaler_loop_seconds_count",)), "foresail_autoscaler_loop_seconds_count").get("")


def failover(cluster: Cluster, sampler: _Leader, get: Callable[[str], str], timeout_s: float = 240.0) -> dict[str, Any]:
    """Kill the leader; seconds from the kill to a new holder of the Lease and to its first completed pass.
    A figure the run did not reach within ``timeout_s`` is None, with the reason in ``note``."""
    old = sampler.leader_url()
    if old is None:
        return {"note": "no leader found to kill"}
    holder = old[0]
    pod = next(
        (p["metadata"]["name"] for p in cluster.kube.pods(SYSTEM_NS, "app.kubernetes.io/component=operator")
         if holder == p["metadata"]["name"] or holder.startswith(p["metadata"]["name"])),
        None,
    )  # fmt: skip
    if pod is None:
        return {"note": f"no pod for the holder {holder!r}"}
    t_kill = time.monotonic()
    cluster.kube.kubectl("delete", "pod", "-n", SYSTEM_NS, pod, "--grace-period=0", "--force", "--wait=false")
    log(f"failover: killed the leader {pod}")
    out: dict[str, Any] = {"killed": pod, "lease_s": None, "first_pass_s": None}
    end = t_kill + timeout_s
    new: tuple[str, str] | None = None
    while time.monotonic() < end:
        try:
            new = sampler.leader_url()
        except Exception as e:  # the apiserver busy: try again
            log(f"failover: {e!r}")
            new = None
        if new is not None and new[0] != holder:
            out["lease_s"] = round(time.monotonic() - t_kill, 1)
            out["new_leader"] = new[0]
            break
        time.sleep(0.25)
    else:
        out["note"] = f"no new Lease holder within {timeout_s:.0f}s"
        return out
    assert new is not None
    while time.monotonic() < end:
        try:
            n = _passes(cluster, new[1], get)
        except Exception:  # its /metrics not answering yet
            n = None
        if n:
            out["first_pass_s"] = round(time.monotonic() - t_kill, 1)
            break
        time.sleep(0.25)
    else:
        out["note"] = f"the new leader completed no pass within {timeout_s:.0f}s of the kill"
    log(f"failover: {out}")
    return out
