"""``python -m hack.bench_scale``: one run of the scale benchmark (see the package docstring)."""

from __future__ import annotations

import argparse
import sys

from hack.base.paths import REPO
from hack.bench_scale import __doc__ as DOC
from hack.bench_scale.run import run, write


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m hack.bench_scale", description=DOC, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--services", type=int, default=200)
    p.add_argument("--namespaces", type=int, default=10)
    p.add_argument("--tenants", type=int, default=4)
    p.add_argument("--replicas-per-service", type=int, default=5, help="the base load's replicas (maxReplicas is twice this)")
    p.add_argument("--minutes", type=float, default=5.0, help="measured minutes (constant load, then rate steps)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--steady-seconds", type=float, default=90.0, help="constant load at the start of the measurement")
    p.add_argument("--period-seconds", type=float, default=90.0, help="mean seconds between a service's rate steps")
    p.add_argument("--capacity-rps", type=float, default=50.0, help="a replica's capacity (model and spec)")
    p.add_argument("--slo-ms", type=float, default=250.0, help="the services' p99 SLO")
    p.add_argument("--loop-seconds", type=float, default=5.0, help="the operator's autoscaler.loopSeconds")
    p.add_argument("--gpus-per-node", type=int, default=32)
    p.add_argument("--shards", type=int, default=0, help="metrics source targets (0: one per 1,500 replicas at most)")
    p.add_argument("--churn", type=int, default=0, help="services created and deleted per churn round")
    p.add_argument("--churn-minutes", type=float, default=0.0)
    p.add_argument("--operator-memory", default="1Gi", help="the operator's memory limit (the chart's default: 1Gi)")
    p.add_argument("--failover", action="store_true", help="after the measurement, kill the leader and time the standby's takeover")
    p.add_argument("--settle-seconds", type=float, default=240.0, help="at most this long for the replicas to come up")
    p.add_argument("--budget-seconds", type=float, default=570.0, help="the whole run, cluster included (a shared lock)")
    p.add_argument("--cluster", default="bench-scale")
    p.add_argument("--keep", action="store_true", help="leave the cluster up (the next run reuses it)")
    p.add_argument("--out", default=str(REPO / "out/bench"))
    args = p.parse_args(argv)
    if min(args.services, args.namespaces, args.tenants, args.replicas_per_service) < 1 or args.tenants > args.namespaces:
        p.error("services, namespaces, tenants, replicas-per-service must be >= 1, tenants <= namespaces")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from pathlib import Path

    write(run(args), Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
