"""Micro-benchmark of the GPU arbiter (pure): CPU seconds of one ``arbitrate`` at N services x units each.

Not a test (no timed assertions): ``python -m hack.bench.arbiter [--services 800 2000] [--units 10]`` prints a
markdown table and writes ``out/bench/arbiter.{json,md}``. The snapshot: 20 tenants (weights 1-3, guarantees
that cover a third of the demand, limits two thirds), services of mixed priority and age, a supply of 60 % of
what they want, so every step of the arbitration (guarantees, young batch, borrowing) has work to do.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from foresail.quota.arbiter import Quota, Snapshot, TenantQuotas, Workload, arbitrate
from hack.bench.report import write_report

__all__ = ["main", "snapshot"]

GPU = "nvidia.com/gpu"
TENANTS = 20


def snapshot(services: int, units: int, seed: int = 1) -> Snapshot:
    rng = random.Random(seed)
    per_tenant = services * units // TENANTS
    tenants = tuple(
        TenantQuotas(f"t{i}", (Quota(GPU, None, per_tenant // 3, per_tenant * 2 // 3),), weight=1 + i % 3) for i in range(TENANTS)
    )
    workloads = tuple(
        Workload(
            "InferenceService",
            f"ns{i % 50}",
            f"svc{i}",
            f"t{i % TENANTS}",
            ("critical", "standard", "standard", "batch")[i % 4],
            1,
            units,
            rng.randint(0, units),
            float(rng.randint(0, 10_000)),
            protected=rng.randint(0, 2) if i % 4 == 3 else 0,
        )
        for i in range(services)
    )
    return Snapshot(tenants, workloads, {(GPU, None): int(services * units * 0.6)})


def measure(services: int, units: int, repeat: int) -> dict[str, float]:
    snap = snapshot(services, units)
    runs = []
    for _ in range(repeat):
        t0 = time.process_time()
        plan = arbitrate(snap)
        runs.append(time.process_time() - t0)
    granted = sum(g.units for g in plan.grants.values())
    return {"services": services, "units": units, "cpu_s_median": statistics.median(runs), "cpu_s_max": max(runs), "granted": granted}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--services", type=int, nargs="+", default=[800, 2000])
    ap.add_argument("--units", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("out/bench"))
    args = ap.parse_args()
    rows = [measure(n, args.units, args.repeat) for n in args.services]
    md = "| services | units each | CPU s (median) | CPU s (max) | units granted |\n|---|---|---|---|---|\n" + "".join(
        f"| {r['services']} | {r['units']} | {r['cpu_s_median']:.4f} | {r['cpu_s_max']:.4f} | {r['granted']} |\n" for r in rows
    )
    write_report(args.out, "arbiter", {"runs": rows}, md)


if __name__ == "__main__":
    main()
