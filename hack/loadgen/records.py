"""What the load generator records per request, its summary, and the per-request CSV. Pure."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CSV_COLUMNS", "Record", "Summary", "read_csv", "summarise", "write_csv"]

ERROR_SAMPLES = 5
CSV_COLUMNS = ("scheduled_s", "sent_s", "latency_ms", "status", "endpoint", "sent_unix")


@dataclass(frozen=True)
class Record:
    scheduled: float  # seconds from the start, as planned
    sent: float  # seconds from the start, actually
    latency_ms: float
    status: str  # "ok", "timeout", "no-ready-endpoint", "client-queue-full" or "error:<type>:<message>"
    endpoint: str  # HOST:PORT
    sent_unix: float = 0.0  # wall clock at send, to line requests up with Kubernetes timestamps

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Summary:
    requests: int
    ok: int
    errors: int
    duration_s: float
    offered_rps: float
    achieved_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    max_send_lag_ms: float
    errors_by_kind: dict[str, int]
    cpu_seconds: float
    cpu_percent: float
    stopped_early: bool = False
    # the first few failures in full (send time, endpoint, status): a test's failure message names them
    error_samples: tuple[str, ...] = ()


def summarise(records: list[Record], duration: float, cpu: float, stopped_early: bool = False) -> Summary:
    """Rates over ``duration``, latency percentiles of the successful requests (NaN without any), errors by
    kind (the status up to its first ``:``) with the first ``ERROR_SAMPLES`` in full, the worst send lag, and the
    generator's own CPU use."""
    ok = [r.latency_ms for r in records if r.ok]
    lat = np.array(ok) if ok else np.array([np.nan])
    errs: dict[str, int] = {}
    for r in records:
        if not r.ok:
            kind = r.status.split(":", 1)[0]
            errs[kind] = errs.get(kind, 0) + 1
    span = duration if duration > 0 else 1.0
    return Summary(
        requests=len(records),
        ok=len(ok),
        errors=len(records) - len(ok),
        duration_s=round(duration, 3),
        offered_rps=round(len(records) / span, 2),
        achieved_rps=round(len(ok) / span, 2),
        p50_ms=round(float(np.percentile(lat, 50)), 2),
        p95_ms=round(float(np.percentile(lat, 95)), 2),
        p99_ms=round(float(np.percentile(lat, 99)), 2),
        max_ms=round(float(np.max(lat)), 2),
        max_send_lag_ms=round(max((r.sent - r.scheduled for r in records), default=0.0) * 1000, 2),
        errors_by_kind=errs,
        cpu_seconds=round(cpu, 2),
        cpu_percent=round(100 * cpu / span, 1),
        stopped_early=stopped_early,
        error_samples=tuple(
            f"t={r.sent:.1f}s unix={r.sent_unix:.3f} endpoint={r.endpoint or '-'} {r.status}"
            for r in sorted((r for r in records if not r.ok), key=lambda r: r.sent)[:ERROR_SAMPLES]
        ),
    )


def write_csv(path: Path, records: list[Record]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in records:
            w.writerow([f"{r.scheduled:.6f}", f"{r.sent:.6f}", f"{r.latency_ms:.3f}", r.status, r.endpoint, f"{r.sent_unix:.6f}"])


def read_csv(path: Path) -> list[Record]:
    with path.open() as f:
        return [
            Record(
                float(row["scheduled_s"]),
                float(row["sent_s"]),
                float(row["latency_ms"]),
                row["status"],
                row["endpoint"],
                float(row["sent_unix"]),
            )
            for row in csv.DictReader(f)
        ]
