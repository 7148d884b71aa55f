"""``python -m hack.bench.autoscaler``: the command line (see the package's description)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hack.base.paths import OUT
from hack.bench import autoscaler
from hack.bench.autoscaler.closed_loop import closed_loop
from hack.bench.autoscaler.reaction_cluster import reaction_cluster, stem
from hack.bench.autoscaler.reaction_sim import reaction_sim
from hack.bench.autoscaler.settings import log

BENCHES = {"reaction-sim": reaction_sim, "reaction-cluster": reaction_cluster, "closed-loop": closed_loop}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hack.bench.autoscaler", description=autoscaler.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default=str(OUT / "bench"))
    p.add_argument("--only", choices=list(BENCHES), help="run one benchmark (default: all, the cluster ones one after the other)")
    p.add_argument(
        "--quick", action="store_true", help="cold start 10 s only in the simulator, no ramp on the cluster, 6x compression"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--reanalyse",
        action="store_true",
        help="cluster benchmarks: recompute the figures from the recorded files in --out (same other options), no cluster",
    )
    p.add_argument("--cluster-low-rps", type=float, default=40.0, help="reaction-cluster: the rate before the 10x step")
    p.add_argument(
        "--cluster-low-seconds",
        type=float,
        default=60.0,
        help="reaction-cluster: seconds at the low rate first (past the 300 s scale-down delay to start from a settled service)",
    )
    p.add_argument("--trace", choices=("conv", "code"), default="conv", help="closed-loop: which shared trace")
    p.add_argument("--compress", type=float, default=3.0, help="closed-loop: time compression of the 15-minute slice")
    p.add_argument(
        "--cold-requests",
        type=int,
        help="cluster: override the emulated model's cold requests (its first 20 executions take 200 ms more; 0 = none)",
    )
    p.add_argument("--peak-replicas", type=int, default=8, help="closed-loop: replicas the operator plans at the busiest 10 s")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.compress < 1.0 or args.peak_replicas < 1 or args.cluster_low_rps <= 0 or not 0 < args.cluster_low_seconds <= 600:
        p.error(
            "--compress must be >= 1 (15 minutes of wall time at most), --peak-replicas >= 1, --cluster-low-rps > 0, "
            "--cluster-low-seconds in (0, 600]"
        )
    out = Path(args.out)
    for bench in [args.only] if args.only else list(BENCHES):
        t0 = time.monotonic()
        BENCHES[bench](args, out)
        name = bench if bench == "reaction-sim" else stem(args, bench)
        log(f"{bench} done in {time.monotonic() - t0:.0f}s; {out / (name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
