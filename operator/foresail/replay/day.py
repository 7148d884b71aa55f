"""A synthetic but realistic 24-hour trace, built on demand from the recorded one-hour traces (never committed).

Each one-hour trace (conversation and code, ``hack/traces``) contributes ``copies`` sources. For every
hour of the day each source replays its trace, wrapped around the hour and shifted by a fresh random
offset, so no two hours repeat; a source is switched on only while the diurnal envelope is above its own
threshold (source ``i`` of ``k``: ``(i + u) / k``, ``u`` uniform), so about ``k x envelope(t)`` sources are
on at any time and each keeps its real bursts, gaps and request sizes. The envelope is
``0.15 + 0.85 x (1 - cos(2 pi (t - 4 h) / 24 h)) / 2``: a trough of 15% at 04:00, the peak at 16:00.

With 30 copies of each trace (the default) a day has about 12 million requests (mean ~140 rps, peaks of
several hundred); ``code`` copies alone (e.g. 6) give a sparse, bursty day. The result is cached under
``~/.cache/foresail/traces/`` (``FORESAIL_CACHE`` overrides the root), keyed by the inputs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from foresail.replay.traces import Arrivals, TraceError, load_trace

__all__ = ["DAY_S", "envelope", "find_traces", "synthetic_day"]

DAY_S = 86400.0
HOUR_S = 3600.0
FILES = {"conv": "AzureLLMInferenceTrace_conv.csv", "code": "AzureLLMInferenceTrace_code.csv"}


def envelope(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Share of the day's peak at time ``t`` (seconds from midnight)."""
    out: npt.NDArray[np.float64] = 0.15 + 0.85 * (1.0 - np.cos(2.0 * math.pi * (t / DAY_S - 4.0 / 24.0))) / 2.0
    return out


def find_traces(start: Path | None = None) -> Path:
    """The folder with the Azure traces: ``$FORESAIL_TRACES``, else ``hack/traces`` of the checkout that
    ``start`` (default: the working directory) or this module lies in."""
    if env := os.environ.get("FORESAIL_TRACES"):
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents, *Path(__file__).resolve().parents):
        cand = d / "hack" / "traces"
        if (cand / FILES["conv"]).is_file():
            return cand
    raise TraceError("no hack/traces folder with the Azure traces in this checkout: set FORESAIL_TRACES")


def _cache_root() -> Path:
    return Path(os.environ.get("FORESAIL_CACHE", Path.home() / ".cache" / "foresail")) / "traces"


def _sources(base: Arrivals, copies: int, rng: np.random.Generator, hours: int) -> tuple[list[npt.NDArray[np.float64]], list[npt.NDArray[np.float64]]]:  # fmt: skip
    ts: list[npt.NDArray[np.float64]] = []
    ws: list[npt.NDArray[np.float64]] = []
    thresholds = (np.arange(copies) + rng.random(copies)) / max(copies, 1)
    for i in range(copies):
        for h in range(hours):
            t = h * HOUR_S + np.mod(base.times + rng.uniform(0.0, HOUR_S), HOUR_S)
            keep = envelope(np.mod(t, DAY_S)) >= thresholds[i]
            ts.append(t[keep])
            ws.append(base.work[keep])
    return ts, ws


def synthetic_day(
    traces_dir: Path | None = None, conv_copies: int = 30, code_copies: int = 30, seed: int = 0, uniform_work: bool = True,
    hours: int = 24, cache: bool = True,
) -> Arrivals:  # fmt: skip
    """The day trace (see the module doc); ``hours`` shorter than 24 gives the day's first hours."""
    if conv_copies < 0 or code_copies < 0 or conv_copies + code_copies == 0 or not 1 <= hours <= 24:
        raise TraceError("conv_copies and code_copies must be >= 0 with at least one source, hours 1..24")
    key = f"day-conv{conv_copies}-code{code_copies}-h{hours}-seed{seed}{'-uniform' if uniform_work else ''}.npz"
    path = _cache_root() / key
    if cache and path.is_file():
        with np.load(path) as z:
            return Arrivals(z["times"], z["work"])
    folder = traces_dir or find_traces()
    rng = np.random.default_rng(seed)
    ts: list[npt.NDArray[np.float64]] = []
    ws: list[npt.NDArray[np.float64]] = []
    for kind, copies in (("conv", conv_copies), ("code", code_copies)):
        if copies:
            base = load_trace(str(folder / FILES[kind]))
            t, w = _sources(base, copies, rng, hours)
            ts += t
            ws += w
    times, work = np.concatenate(ts), np.concatenate(ws)
    order = np.argsort(times, kind="stable")
    arr = Arrivals(times[order], np.ones(len(times)) if uniform_work else work[order])
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, times=arr.times, work=arr.work)
        tmp.replace(path)
    return arr
