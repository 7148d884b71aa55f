"""The replay's event loop, compiled with numba: arrivals, routing, batching, bounded queues, scrapes.

``run_until(until, ...)`` processes every scrape, batch completion, replica-ready event and arrival before
``until`` (scrapes at ``until`` too: a tick sees the scrape of its own second), computes what the policy will
see (``_observe``) and returns; ``core.Core`` holds the arrays and makes the fleet changes of a tick.

State lives in numpy arrays, so a run costs a few tens of nanoseconds per request:

* requests: arrival time, work, latency (``inf`` until served), status (0 waiting, 1 served, 2 rejected) and
  ``nxt``, one int per request that links the FIFO queues (a replica's queue, its executing batch, the
  gateway) through the requests themselves;
* replica slots (reused after release): state (free, starting, ready, draining), creation sequence number
  (ties and round robin follow creation order), queue head/tail/length, batch head/size, ready time, busy-until;
* the ready list in creation order, the gateway queue (requests that found no ready replica), client
  connections (per-connection routing), counters, the latency histogram and a ring of scrapes.

Same-time order: scrape, then the tick, then events (batch completions before ready events, older replicas
first), then arrivals. ``reference.simulate_reference`` is the same model in plain Python, for tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

from foresail.replay import signals as sg

__all__ = ["ROUTINGS", "ReplayExtraMissing", "ensure_numba", "run_until"]

ROUTINGS = ("round-robin", "per-connection", "least-outstanding")
FREE, STARTING, READY, DRAINING = 0, 1, 2, 3
# replica int columns
ST, SEQ, QH, QT, QL, BH, EX = range(7)
# replica float columns
RDY, BUSY = 0, 1
# int state
AI, NREADY, GWH, GWT, GWL, RR, HOLD, QUEUED, EXEC, NSCR, EVS, EVK, DIRTY, LIVE = range(14)
# float state
LAST, GPU, NEXTEV = 0, 1, 2
# float config
BASE, PER, TIMEOUT, LIFETIME, SCRAPE, SCORE_FROM, END = range(7)
# int config
MAXB, ROUTE, QMAX, NCONN = range(4)
INF = math.inf
LO_MS, RATIO, LOG_RATIO, NB = sg.LO_MS, sg.RATIO, sg.LOG_RATIO, sg.BUCKETS
C_ARRIVED, C_COMPLETED, C_REJECTED, C_STARTED, C_WAIT_S = 0, 1, 2, 3, 4
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1, MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
S30, S27, S31, S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


class ReplayExtraMissing(RuntimeError):
    """numba (the ``foresail[replay]`` extra) is not installed."""


try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - the dev install has it
    HAVE_NUMBA = False

F = TypeVar("F", bound=Callable[..., Any])


def _jit(f: F) -> F:
    if not HAVE_NUMBA:  # pragma: no cover
        return f
    return cast(F, numba.njit(cache=True, nogil=True)(f))


def _inline(f: F) -> F:
    """A helper of the event loop, inlined into it (numba IR inlining: no call overhead per request)."""
    if not HAVE_NUMBA:  # pragma: no cover
        return f
    return cast(F, numba.njit(cache=True, nogil=True, inline="always")(f))


def ensure_numba() -> None:
    if not HAVE_NUMBA:
        raise ReplayExtraMissing("the replay needs numba and matplotlib: pip install 'foresail[replay]'")


@_inline
def _rand(rng: Any) -> Any:
    """splitmix64 (``reference._Rng`` is the same in Python)."""
    rng[0] += GOLDEN
    z = rng[0]
    z = (z ^ (z >> S30)) * MIX1
    z = (z ^ (z >> S27)) * MIX2
    return z ^ (z >> S31)


@_inline
def _account(t: float, g: Any, gi: Any, cf: Any) -> None:
    last = g[LAST]
    if t > last:
        lo = max(last, cf[SCORE_FROM])
        hi = min(t, cf[END])
        if hi > lo:
            g[GPU] += gi[HOLD] * (hi - lo)
        g[LAST] = t


@_jit
def _scan(gi: Any, g: Any, ri: Any, rf: Any) -> None:
    best_t, best_k, best_q, best_s = INF, 2, 1 << 62, -1
    for s in range(ri.shape[0]):
        st = ri[s, ST]
        if st == FREE:
            continue
        if ri[s, EX] > 0:
            t, k = rf[s, BUSY], 0
        elif st == STARTING:
            t, k = rf[s, RDY], 1
        else:
            continue
        q = ri[s, SEQ]
        if t < best_t or (t == best_t and (k < best_k or (k == best_k and q < best_q))):
            best_t, best_k, best_q, best_s = t, k, q, s
    g[NEXTEV], gi[EVK], gi[EVS], gi[DIRTY] = best_t, best_k, best_s, 0


@_inline
def _start_batch(i: int, t: float, t_arr: Any, work: Any, status: Any, nxt: Any, ri: Any, rf: Any, gi: Any, g: Any, cf: Any, ci: Any, ctr: Any) -> None:  # fmt: skip
    n, wsum, head, tail = 0, 0.0, -1, -1
    timeout = cf[TIMEOUT]
    while ri[i, QL] > 0 and n < ci[MAXB]:
        j = ri[i, QH]
        ri[i, QH] = nxt[j]
        ri[i, QL] -= 1
        gi[QUEUED] -= 1
        if timeout > 0 and t - t_arr[j] > timeout:
            status[j] = 2
            ctr[C_REJECTED] += 1
            continue
        nxt[j] = -1
        if tail < 0:
            head = j
        else:
            nxt[tail] = j
        tail = j
        n += 1
        wsum += work[j]
        ctr[C_STARTED] += 1
        ctr[C_WAIT_S] += t - t_arr[j]
    if ri[i, QL] == 0:
        ri[i, QH] = -1
        ri[i, QT] = -1
    if n == 0:
        return
    busy = t + (cf[BASE] + cf[PER] * wsum) / 1000.0
    rf[i, BUSY] = busy
    ri[i, BH] = head
    ri[i, EX] = n
    gi[EXEC] += n
    if gi[DIRTY] == 0:
        nt, nk = g[NEXTEV], gi[EVK]
        q = ri[i, SEQ]
        if busy < nt or (busy == nt and (nk > 0 or q < ri[gi[EVS], SEQ])):
            g[NEXTEV], gi[EVK], gi[EVS] = busy, 0, i


@_inline
def _pick(t: float, ri: Any, ready: Any, gi: Any, cf: Any, ci: Any, rng: Any, conn_slot: Any, conn_seq: Any, conn_exp: Any) -> int:  # fmt: skip
    nr = gi[NREADY]
    mode = ci[ROUTE]
    if mode == 0:
        s = ready[gi[RR] % nr]
        gi[RR] += 1
        return int(s)
    if mode == 2:
        start = gi[RR] % nr
        gi[RR] += 1
        best, bo = -1, 1 << 62
        for j in range(nr):
            s = ready[(start + j) % nr]
            o = ri[s, QL] + ri[s, EX]
            if o < bo:
                best, bo = s, o
        return int(best)
    c = int(_rand(rng) % np.uint64(ci[NCONN]))
    s = conn_slot[c]
    if s < 0 or ri[s, ST] != READY or ri[s, SEQ] != conn_seq[c] or t >= conn_exp[c]:
        s = ready[int(_rand(rng) % np.uint64(nr))]
        conn_slot[c] = s
        conn_seq[c] = ri[s, SEQ]
        if cf[LIFETIME] > 0:
            u = (float(_rand(rng) >> S11) + 1.0) * (1.0 / 9007199254740992.0)
            conn_exp[c] = t - cf[LIFETIME] * math.log(u)
        else:
            conn_exp[c] = INF
    return int(s)


@_inline
def _dispatch(j: int, t: float, t_arr: Any, work: Any, status: Any, nxt: Any, ri: Any, rf: Any, ready: Any, gi: Any, g: Any, cf: Any, ci: Any, ctr: Any, rng: Any, conn_slot: Any, conn_seq: Any, conn_exp: Any) -> None:  # fmt: skip
    if gi[NREADY] == 0:
        nxt[j] = -1
        if gi[GWL] == 0:
            gi[GWH] = j
        else:
            nxt[gi[GWT]] = j
        gi[GWT] = j
        gi[GWL] += 1
        gi[QUEUED] += 1
        return
    s = _pick(t, ri, ready, gi, cf, ci, rng, conn_slot, conn_seq, conn_exp)
    if ci[QMAX] > 0 and ri[s, QL] >= ci[QMAX]:
        status[j] = 2
        ctr[C_REJECTED] += 1
        return
    nxt[j] = -1
    if ri[s, QL] == 0:
        ri[s, QH] = j
    else:
        nxt[ri[s, QT]] = j
    ri[s, QT] = j
    ri[s, QL] += 1
    gi[QUEUED] += 1
    if ri[s, EX] == 0:
        _start_batch(s, t, t_arr, work, status, nxt, ri, rf, gi, g, cf, ci, ctr)


@_inline
def _release(i: int, ri: Any, gi: Any) -> None:
    ri[i, ST] = FREE
    gi[HOLD] -= 1
    gi[DIRTY] = 1


@_jit
def _observe(gi: Any, ri: Any, ring_t: Any, ring_c: Any, ring_h: Any, backs: Any, obs: Any) -> None:
    """What the policy sees at a tick (``signals.view_from_scrapes`` computes the same in Python): per window
    arrivals, completions, rejections, in-flight growth (per second), mean queue wait (ms), p99 (ms); and the
    live (starting + ready) replica count into ``gi[LIVE]``."""
    nring = ring_t.shape[0]
    newest = gi[NSCR] - 1
    kn = newest % nring
    for w in range(backs.shape[0]):
        back = min(backs[w], newest)
        ko = (newest - back) % nring
        span = ring_t[kn] - ring_t[ko]
        if span <= 0:
            for c in range(6):
                obs[w, c] = 0.0
            continue
        done = (ring_c[kn, C_COMPLETED] - ring_c[ko, C_COMPLETED]) / span
        rej = (ring_c[kn, C_REJECTED] - ring_c[ko, C_REJECTED]) / span
        growth = (ring_c[kn, 5] + ring_c[kn, 6] - ring_c[ko, 5] - ring_c[ko, 6]) / span
        started = ring_c[kn, C_STARTED] - ring_c[ko, C_STARTED]
        obs[w, 0] = done + rej + growth
        obs[w, 1] = done
        obs[w, 2] = rej
        obs[w, 3] = growth
        obs[w, 4] = 1000.0 * (ring_c[kn, C_WAIT_S] - ring_c[ko, C_WAIT_S]) / started if started > 0 else 0.0
        total = 0
        for b in range(NB):
            total += ring_h[kn, b] - ring_h[ko, b]
        p99 = 0.0
        if total > 0:
            rank = math.ceil(0.99 * total)
            cum = 0
            for b in range(NB):
                cnt = ring_h[kn, b] - ring_h[ko, b]
                if cum + cnt >= rank:
                    lo = LO_MS * RATIO ** float(b) if b > 0 else 0.0  # float exponents: C pow, as in Python
                    hi = LO_MS * RATIO ** float(b + 1)
                    p99 = lo + (hi - lo) * (rank - cum) / max(cnt, 1)
                    break
                cum += cnt
        obs[w, 5] = p99
    live = 0
    for s in range(ri.shape[0]):
        if ri[s, ST] == STARTING or ri[s, ST] == READY:
            live += 1
    gi[LIVE] = live


@_jit
def run_until(until: float, t_arr: Any, work: Any, lat: Any, status: Any, nxt: Any, ri: Any, rf: Any, ready: Any, gi: Any, g: Any, cf: Any, ci: Any, ctr: Any, hist: Any, rng: Any, conn_slot: Any, conn_seq: Any, conn_exp: Any, ring_t: Any, ring_c: Any, ring_h: Any, backs: Any, obs: Any) -> None:  # fmt: skip
    n = t_arr.shape[0]
    nring = ring_t.shape[0]
    while True:
        ai = gi[AI]
        ta = t_arr[ai] if ai < n else INF
        ts = gi[NSCR] * cf[SCRAPE]
        if gi[DIRTY] != 0:
            _scan(gi, g, ri, rf)
        te = g[NEXTEV]
        if ts <= ta and ts <= te:
            if ts > until:
                break
            _account(ts, g, gi, cf)
            k = gi[NSCR] % nring
            ring_t[k] = ts
            for c in range(5):
                ring_c[k, c] = ctr[c]
            ring_c[k, 5] = gi[QUEUED]
            ring_c[k, 6] = gi[EXEC]
            ring_h[k, :] = hist
            gi[NSCR] += 1
        elif te <= ta:
            if te >= until:
                break
            _account(te, g, gi, cf)
            i = gi[EVS]
            gi[DIRTY] = 1
            if gi[EVK] == 1:
                ri[i, ST] = READY
                p = gi[NREADY]
                while p > 0 and ri[ready[p - 1], SEQ] > ri[i, SEQ]:
                    ready[p] = ready[p - 1]
                    p -= 1
                ready[p] = i
                gi[NREADY] += 1
                while gi[GWL] > 0:
                    j = gi[GWH]
                    gi[GWH] = nxt[j]
                    gi[GWL] -= 1
                    gi[QUEUED] -= 1
                    _dispatch(j, te, t_arr, work, status, nxt, ri, rf, ready, gi, g, cf, ci, ctr, rng, conn_slot, conn_seq, conn_exp)  # fmt: skip
            else:
                busy = rf[i, BUSY]
                j = ri[i, BH]
                m = ri[i, EX]
                for _ in range(m):
                    x = (busy - t_arr[j]) * 1000.0
                    lat[j] = x
                    status[j] = 1
                    b = 0 if x < LO_MS else min(int(math.log(x / LO_MS) / LOG_RATIO), NB - 1)
                    hist[b] += 1
                    j = nxt[j]
                ctr[C_COMPLETED] += m
                gi[EXEC] -= m
                ri[i, EX] = 0
                if ri[i, QL] > 0:
                    _start_batch(i, te, t_arr, work, status, nxt, ri, rf, gi, g, cf, ci, ctr)
                if ri[i, EX] == 0 and ri[i, QL] == 0 and ri[i, ST] == DRAINING:
                    _release(i, ri, gi)
        else:
            if ta >= until:
                break
            _account(ta, g, gi, cf)
            gi[AI] = ai + 1
            ctr[C_ARRIVED] += 1
            _dispatch(ai, ta, t_arr, work, status, nxt, ri, rf, ready, gi, g, cf, ci, ctr, rng, conn_slot, conn_seq, conn_exp)  # fmt: skip
    _account(until, g, gi, cf)
    _observe(gi, ri, ring_t, ring_c, ring_h, backs, obs)
