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
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

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
    "superpose",
    "uniform_work",
]


class TraceError(ValueError):
    """A trace or profile that cannot be read; the message names the row, column or key."""


class Arrivals:
    """Arrival offsets in seconds from the start (sorted) and each request's relative work (read-only arrays)."""

    __slots__ = ("times", "work")
    times: npt.NDArray[np.float64]
    work: npt.NDArray[np.float64]

    def __init__(self, times: Sequence[float] | npt.NDArray[np.float64], work: Sequence[float] | npt.NDArray[np.float64]) -> None:
        t = np.array(times, dtype=np.float64)
        w = np.array(work, dtype=np.float64)
        if t.shape != w.shape or t.ndim != 1:
            raise TraceError(f"times and work must be two lists of the same length (got {t.shape} and {w.shape})")
        t.flags.writeable = False
        w.flags.writeable = False
        object.__setattr__(self, "times", t)
        object.__setattr__(self, "work", w)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Arrivals is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Arrivals):
            return NotImplemented
        return bool(np.array_equal(self.times, other.times) and np.array_equal(self.work, other.work))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Arrivals({len(self)} requests over {self.duration:.1f} s)"

    @property
    def duration(self) -> float:
        return float(self.times[-1]) if len(self.times) else 0.0

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


def _sorted(times: npt.NDArray[np.float64], work: npt.NDArray[np.float64]) -> Arrivals:
    order = np.argsort(times, kind="stable")
    return Arrivals(times[order], work[order])


def reshape(
    arr: Arrivals,
    *,
    compress: float = 1.0,
    rate_scale: float = 1.0,
    start: float = 0.0,
    duration: float | None = None,
    seed: int = 0,
    method: str = "poisson",
) -> Arrivals:
    """Cut ``[start, start+duration)`` (trace seconds), compress time by ``compress`` and scale the rate.

    Up to 4x, rate scaling keeps each arrival ``floor(k)`` times plus once more with probability
    ``frac(k)``, copies spread within 50 ms (seeded), so bursts stay bursts. Beyond that copies of one
    request would form unrealistic clumps, so the trace is scaled by ``method``: ``poisson`` resamples
    Poisson arrivals whose rate is k x the trace's own rate (per second, smoothed over 3 s), with work drawn
    from the trace's work values; ``superpose`` adds time-shifted copies of the cut (``superpose``), which
    keeps the trace's own burst shapes. Either way the shape at the scale of seconds is the trace's.
    """
    if compress <= 0 or rate_scale <= 0:
        raise TraceError(f"compress and rate_scale must be > 0 (got {compress}, {rate_scale})")
    if method not in ("poisson", "superpose"):
        raise TraceError(f"method: {method!r} unknown; expected 'poisson' or 'superpose'")
    end = math.inf if duration is None else start + duration
    rng = np.random.default_rng(seed)
    keep = (arr.times >= start) & (arr.times < end)
    t, w = (arr.times[keep] - start) / compress, arr.work[keep]
    if rate_scale > 4 and len(t):
        if method == "superpose":
            return superpose(Arrivals(t, w), rate_scale, seed=seed)
        counts = np.bincount(t.astype(np.int64), minlength=math.ceil(float(t.max()) + 1.0) + 1).astype(float)
        padded = np.concatenate([[counts[0]], counts, [counts[-1]]])
        smooth = (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0
        smooth[0] = counts[: 2].mean()
        smooth[-1] = counts[-2:].mean() if len(counts) > 1 else counts[-1]
        n = rng.poisson(smooth * rate_scale)
        out_t = np.repeat(np.arange(len(n), dtype=float), n) + rng.random(int(n.sum()))
        out_w = w[rng.integers(0, len(w), len(out_t))]
        return _sorted(out_t, out_w)
    whole, frac = int(rate_scale), rate_scale - int(rate_scale)
    copies = whole + (rng.random(len(t)) < frac)
    idx = np.repeat(np.arange(len(t)), copies)
    first = np.ones(len(idx), bool)
    first[1:] = idx[1:] != idx[:-1]
    jitter = np.where(first, 0.0, rng.uniform(0.0, 0.05, len(idx)))
    return _sorted(t[idx] + jitter, w[idx])


def superpose(arr: Arrivals, k: float, seed: int = 0, span: float | None = None) -> Arrivals:
    """``k`` copies of the trace, each shifted by a random offset and wrapped around ``span`` (default: the
    trace's duration rounded up to a second); a fractional ``k`` adds one more copy thinned to ``frac(k)``.
    Each copy keeps the trace's real bursts (their shapes, gaps and work); the sum is as bursty as ``k``
    independent sources of this kind would be, which a Poisson resampling is not."""
    if k <= 0:
        raise TraceError(f"k must be > 0, got {k}")
    if not len(arr):
        return arr
    period = span if span is not None else math.ceil(arr.duration + 1e-9) or 1.0
    rng = np.random.default_rng(seed)
    whole, frac = int(k), k - int(k)
    shifts = rng.uniform(0.0, period, whole + (frac > 0))
    shifts[0] = 0.0  # the first copy is the trace itself
    parts_t: list[npt.NDArray[np.float64]] = []
    parts_w: list[npt.NDArray[np.float64]] = []
    for i, shift in enumerate(shifts):
        keep = np.ones(len(arr), bool) if i < whole else rng.random(len(arr)) < frac
        parts_t.append(np.mod(arr.times[keep] + shift, period))
        parts_w.append(arr.work[keep])
    return _sorted(np.concatenate(parts_t), np.concatenate(parts_w))


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


def _rates(kind: str, p: dict[str, float], t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``rate_at`` for many times at once."""
    if kind == "constant":
        return np.full(len(t), p["rate"])
    if kind == "step":
        return np.where(t >= p["at"], p["to"], p["from"])
    if kind == "ramp":
        at = p.get("at", 0.0)
        x = np.clip((t - at) / p["over"], 0.0, 1.0) if p["over"] > 0 else (t >= at).astype(float)
        return p["from"] + (p["to"] - p["from"]) * x
    out: npt.NDArray[np.float64] = np.maximum(0.0, p["mean"] + p["amp"] * np.sin(2 * math.pi * t / p["period"]))
    return out


def profile_arrivals(kind: str, params: dict[str, float], duration: float, seed: int = 0) -> Arrivals:
    """Poisson arrivals whose rate follows the profile (thinning of a homogeneous process)."""
    peak = max(rate_at(kind, params, t) for t in _grid(duration))
    if peak <= 0 or duration <= 0:
        return Arrivals((), ())
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.0, duration, rng.poisson(peak * duration)))
    if kind != "constant":
        t = t[rng.random(len(t)) * peak <= _rates(kind, params, t)]
    return Arrivals(t, np.ones(len(t)))


def _grid(duration: float, n: int = 2000) -> Iterable[float]:
    return (duration * i / n for i in range(n + 1))


def profile_from_rates(points: list[tuple[float, float]], seed: int = 0) -> Arrivals:
    """Poisson arrivals whose rate follows recorded (time, rate) points (step-wise), times from 0."""
    if not points:
        return Arrivals((), ())
    rng = np.random.default_rng(seed)
    t0 = points[0][0]
    step = points[1][0] - points[0][0] if len(points) > 1 else 1.0
    parts: list[npt.NDArray[np.float64]] = []
    for (t, rate), (t_next, _) in zip(points, [*points[1:], (points[-1][0] + step, 0.0)], strict=True):
        if math.isfinite(rate) and rate > 0 and t_next > t:
            parts.append(np.sort(rng.uniform(t, t_next, rng.poisson(rate * (t_next - t)))) - t0)
    times = np.concatenate(parts) if parts else np.zeros(0)
    return Arrivals(times, np.ones(len(times)))


def uniform_work(arr: Arrivals) -> Arrivals:
    """The same arrivals with every request's work set to 1 (for models whose cost ignores the request)."""
    return Arrivals(arr.times, np.ones(len(arr)))


def per_second(arr: Arrivals | Sequence[float] | npt.NDArray[np.float64], horizon: float | None = None) -> list[int]:
    """Requests in each whole second (for plots and summaries)."""
    times = arr.times if isinstance(arr, Arrivals) else np.asarray(arr, dtype=float)
    n = math.ceil(horizon if horizon is not None else (float(times[-1]) if len(times) else 0.0)) + 1
    inside = times[(times >= 0) & (times < n)]
    return [int(x) for x in np.bincount(inside.astype(np.int64), minlength=n)[:n]]
