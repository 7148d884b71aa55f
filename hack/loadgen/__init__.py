"""Open-loop load generator for Triton services on the local cluster.

    hack/cluster exec -- .venv/bin/python -m hack.loadgen --service NS/NAME --model emulated \\
        (--trace FILE [--compress 10 --rate-scale 2 --start 600] | --profile step:from=5,to=50,at=30) \\
        --duration 60 [--max-requests N] [--max-inflight 512] [--out requests.csv] [--summary summary.json]

Arrivals are open loop: each request is sent at its scheduled time whether or not earlier ones have
answered. Targets are the *ready* endpoints of the Service, read from its EndpointSlices and refreshed
every ``--refresh`` seconds, used round robin (as a mesh or gateway would); ``--endpoints IP:PORT,...``
targets fixed addresses instead. Inputs are generated from the model's metadata (batch 1), as the operator's
warm-up does.

Every request is recorded (scheduled and actual send time, latency, status, endpoint). A request that
finds ``--max-inflight`` requests already outstanding, or no ready endpoint, is recorded as an error,
never silently dropped. Bounded by ``--duration`` and ``--max-requests``; SIGTERM or SIGINT ends it early,
still writing what it recorded. Runs inside the cluster's client network namespace (``hack/cluster exec``,
``in_cluster``), where pod IPs are reachable.

Modules: ``records`` (per-request records, the summary, the CSV), ``endpoints`` (ready endpoints from
EndpointSlices), ``generate`` (arrivals and the sending loop), ``__main__`` (the command line).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hack.testbed.cluster import Cluster

__all__ = ["in_cluster"]


def in_cluster(cluster: Cluster, *args: str) -> list[str]:
    """The command line of the load generator with ``args``, run in ``cluster``'s client network namespace."""
    return cluster.exec_cmd([sys.executable, "-m", "hack.loadgen", *args])
