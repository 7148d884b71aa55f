"""Traffic traces and synthetic load profiles as arrival times (pure).

A trace is a CSV with a timestamp column: seconds (float) or ISO-8601 / ``YYYY-MM-DD HH:MM:SS.fffffff``
(the Azure LLM inference traces, column ``TIMESTAMP``), and optionally a per-request ``work`` column
(relative service demand, mean 1.0). The Azure traces carry ``ContextTokens``/``GeneratedTokens``
instead; their work is derived from the token counts and normalised to mean 1.0.

Everything here is deterministic for a given seed and never reads a clock.
"""

from __future__ import annotations

import csv
import io
import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "Arrivals",
    "TraceError",
    "load_trace",
    "parse_profile",
    "parse_trace",
    "per_second",
    "profile_arrivals",
    "profile_from_rates",
    "reshape",
    "uniform_work",
]


class TraceError(ValueError):
    """A trace or profile that cannot be read; the message names the row, column or key."""


@dataclass(frozen=True)
class Arrivals:
    """Arrival offsets in seconds from the start (sorted) and each request's relative work."""

    times: tuple[float, ...]
    work: tuple[float, ...]

    @property
    def duration(self) -> float:
        return self.times[-1] if self.times else 0.0

    def __len__(self) -> int:
        return len(self.times)

    def rate(self) -> float:
        return len(self.times) / self.duration if self.duration > 0 else 0.0


_TS_COLUMNS = ("timestamp", "time", "arrival", "ts")
_FRACTION = re.compile(r"(\.\d{6})\d+")


def _parse_ts(raw: str, row: int) -> float:
    raw = raw.strip()
    try:
        return float(raw)
    except ValueError:
        pass
    text = _FRACTION.sub(r"\1", raw.replace("Z", "+00:00"))  # Python takes at most 6 fraction digits
    try:
        dt = datetime.fromisoformat(text)
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    except ValueError as e:
        raise TraceError(f"row {row}: timestamp {raw!r} is neither seconds nor ISO-8601") from e


def parse_trace(text: str) -> Arrivals:
    """Parse CSV text into arrivals (offsets from the first request, sorted)."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise TraceError("trace is empty: expected a header with a timestamp column")
    cols = {c.strip().lower(): c for c in reader.fieldnames}
    ts_col = next((cols[c] for c in _TS_COLUMNS if c in cols), None)
    if ts_col is None:
        raise TraceError(f"no timestamp column: expected one of {list(_TS_COLUMNS)}, found {reader.fieldnames}")
    work_col = cols.get("work")
    tok_cols = [cols[c] for c in ("contexttokens", "generatedtokens") if c in cols]
    stamps: list[float] = []
    work: list[float] = []
    for i, rec in enumerate(reader, start=2):
        if not rec.get(ts_col):
            raise TraceError(f"row {i}: empty {ts_col!r}")
        stamps.append(_parse_ts(rec[ts_col], i))
        try:
            if work_col:
                w = float(rec[work_col])
            elif tok_cols:
                # prefill tokens are cheap per token compared with generated ones (each a decode step)
                w = 0.05 * float(rec[tok_cols[0]]) + (float(rec[tok_cols[1]]) if len(tok_cols) > 1 else 0.0)
            else:
                w = 1.0
        except ValueError as e:
            raise TraceError(f"row {i}: work is not a number") from e
        if not math.isfinite(w) or w < 0:
            raise TraceError(f"row {i}: work must be a finite number >= 0, got {w}")
        work.append(w)
    if not stamps:
        raise TraceError("trace has a header but no requests")
    order = sorted(range(len(stamps)), key=stamps.__getitem__)
    t0 = stamps[order[0]]
    mean = sum(work) / len(work)
    scale = 1.0 / mean if mean > 0 else 1.0
    return Arrivals(tuple(stamps[i] - t0 for i in order), tuple(work[i] * scale for i in order))


def load_trace(path: str) -> Arrivals:
    with open(path, encoding="utf-8") as f:
        return parse_trace(f.read())


def reshape(
    arr: Arrivals,
    *,
    compress: float = 1.0,
    rate_scale: float = 1.0,
    start: float = 0.0,
    duration: float | None = None,
    seed: int = 0,
) -> Arrivals:
    """Cut ``[start, start+duration)`` (trace seconds), compress time by ``compress`` and scale the rate.

    Up to 4x, rate scaling keeps each arrival ``floor(k)`` times plus once more with probability
    ``frac(k)``, copies spread within 50 ms (seeded), so bursts stay bursts. Beyond that, copies of one
    request would form unrealistic clumps, so the scaled trace is resampled instead: Poisson arrivals
    whose rate is k x the trace's own rate (per second, smoothed over 3 s), with work drawn from the
    trace's work values. Either way the shape at the scale of seconds is the trace's.
    """
    if compress <= 0 or rate_scale <= 0:
        raise TraceError(f"compress and rate_scale must be > 0 (got {compress}, {rate_scale})")
    end = math.inf if duration is None else start + duration
    rng = random.Random(seed)
    cut = [((t - start) / compress, w) for t, w in zip(arr.times, arr.work, strict=True) if start <= t < end]
    if rate_scale > 4 and cut:
        horizon = max(t for t, _ in cut) + 1.0
        counts = [0.0] * (math.ceil(horizon) + 1)
        for t, _ in cut:
            counts[int(t)] += 1
        smooth = [sum(counts[max(0, i - 1) : i + 2]) / len(counts[max(0, i - 1) : i + 2]) for i in range(len(counts))]
        works = [w for _, w in cut]
        out_t: list[float] = []
        out_w: list[float] = []
        for sec, rate in enumerate(smooth):
            lam = rate * rate_scale
            x = float(sec)
            while lam > 0:
                x += rng.expovariate(lam)
                if x >= sec + 1:
                    break
                out_t.append(x)
                out_w.append(works[rng.randrange(len(works))])
        return Arrivals(tuple(out_t), tuple(out_w))
    times: list[float] = []
    work: list[float] = []
    whole, frac = int(rate_scale), rate_scale - int(rate_scale)
    for base, w in cut:
        copies = whole + (1 if rng.random() < frac else 0)
        for k in range(copies):
            times.append(base + (rng.uniform(0.0, 0.05) if k else 0.0))
            work.append(w)
    order = sorted(range(len(times)), key=times.__getitem__)
    return Arrivals(tuple(times[i] for i in order), tuple(work[i] for i in order))


# ------------------------------------------------------------------ synthetic profiles

_PROFILE_KEYS = {
    "constant": {"rate"},
    "step": {"from", "to", "at"},
    "ramp": {"from", "to", "over", "at"},
    "sine": {"mean", "amp", "period"},
}
_PROFILE_OPTIONAL = {"ramp": {"at"}}


def parse_profile(spec: str) -> tuple[str, dict[str, float]]:
    """``kind:key=value,...`` e.g. ``step:from=5,to=50,at=30``; errors name the key."""
    kind, _, rest = spec.partition(":")
    if kind not in _PROFILE_KEYS:
        raise TraceError(f"profile kind {kind!r} unknown; expected one of {sorted(_PROFILE_KEYS)}")
    params: dict[str, float] = {}
    for part in filter(None, rest.split(",")):
        key, eq, val = part.partition("=")
        if not eq:
            raise TraceError(f"profile {kind}: {part!r} is not key=value")
        if key not in _PROFILE_KEYS[kind]:
            raise TraceError(f"profile {kind}: unknown key {key!r}; allowed {sorted(_PROFILE_KEYS[kind])}")
        try:
            params[key] = float(val)
        except ValueError as e:
            raise TraceError(f"profile {kind}: {key}={val!r} is not a number") from e
        if params[key] < 0:
            raise TraceError(f"profile {kind}: {key} must be >= 0")
    required = _PROFILE_KEYS[kind] - _PROFILE_OPTIONAL.get(kind, set())
    missing = sorted(required - params.keys())
    if missing:
        raise TraceError(f"profile {kind}: missing {missing}")
    return kind, params


def rate_at(kind: str, p: dict[str, float], t: float) -> float:
    if kind == "constant":
        return p["rate"]
    if kind == "step":
        return p["to"] if t >= p["at"] else p["from"]
    if kind == "ramp":
        at = p.get("at", 0.0)
        x = min(max((t - at) / p["over"], 0.0), 1.0) if p["over"] > 0 else float(t >= at)
        return p["from"] + (p["to"] - p["from"]) * x
    return max(0.0, p["mean"] + p["amp"] * math.sin(2 * math.pi * t / p["period"]))


def profile_arrivals(kind: str, params: dict[str, float], duration: float, seed: int = 0) -> Arrivals:
    """Poisson arrivals whose rate follows the profile (thinning of a homogeneous process)."""
    peak = max(rate_at(kind, params, t) for t in _grid(duration))
    if peak <= 0:
        return Arrivals((), ())
    rng = random.Random(seed)
    t, times = 0.0, []
    while True:
        t += rng.expovariate(peak)
        if t >= duration:
            break
        if rng.random() * peak <= rate_at(kind, params, t):
            times.append(t)
    return Arrivals(tuple(times), tuple(1.0 for _ in times))


def _grid(duration: float, n: int = 2000) -> Iterable[float]:
    return (duration * i / n for i in range(n + 1))


def profile_from_rates(points: list[tuple[float, float]], seed: int = 0) -> Arrivals:
    """Poisson arrivals whose rate follows recorded (time, rate) points (step-wise), times from 0."""
    if not points:
        return Arrivals((), ())
    rng = random.Random(seed)
    t0 = points[0][0]
    times: list[float] = []
    for (t, rate), (t_next, _) in zip(
        points, [*points[1:], (points[-1][0] + (points[1][0] - points[0][0] if len(points) > 1 else 1.0), 0.0)], strict=True
    ):
        if not math.isfinite(rate) or rate <= 0:
            continue
        x = t
        while True:
            x += rng.expovariate(rate)
            if x >= t_next:
                break
            times.append(x - t0)
    return Arrivals(tuple(times), tuple(1.0 for _ in times))


def uniform_work(arr: Arrivals) -> Arrivals:
    """The same arrivals with every request's work set to 1 (for models whose cost ignores the request)."""
    return Arrivals(arr.times, tuple(1.0 for _ in arr.times))


def per_second(arr: Arrivals | Sequence[float], horizon: float | None = None) -> list[int]:
    """Requests in each whole second (for plots and summaries)."""
    times = arr.times if isinstance(arr, Arrivals) else tuple(arr)
    n = math.ceil(horizon if horizon is not None else (times[-1] if times else 0.0)) + 1
    out = [0] * n
    for t in times:
        if 0 <= t < n:
            out[int(t)] += 1
    return out
