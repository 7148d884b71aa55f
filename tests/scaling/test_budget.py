"""The error budget's replay, its choice and the outer loop (pure): named cases."""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
import pytest

from foresail.scaling.budget import GRID, KEEP, LOOP_BOUNDS, BudgetLoop, Choice, History, headroom, replay
from foresail.scaling.capacity import Calibration, CapacityTable, capacity_table
from foresail.scaling.state import DecisionState

_TABLE = capacity_table(Calibration(capacity_rps=10.0), 100.0, 50)
assert _TABLE is not None
TABLE: CapacityTable = _TABLE
SLO_S = 0.1


def history(rates: list[float], step: float = 2.0, onset: dict[int, float] | None = None) -> History:
    h = History()
    for i, r in enumerate(rates):
        h.add(step * i, r, (onset or {}).get(i, 0.0), 0.0, 0.0, keep_s=1e9)
    return h


def flat_forecast(h: History, value: float) -> npt.NDArray[np.float64]:
    return np.full(len(h), value)


def test_a_flat_load_at_the_forecast_needs_no_headroom_and_costs_its_replicas() -> None:
    h = history([45.0] * 100)
    r = replay(h, TABLE, np.array([1.0, 2.0]), flat_forecast(h, 45.0), 10.0, 5.0, Choice(10.0, 10.0, 0.0), SLO_S)
    assert r is not None
    assert r.late.tolist() == [0.0, 0.0]
    span = h.t[-1] - 10.0  # scored from a lead in
    assert r.cost[0] == pytest.approx(5 * span, rel=0.03) and r.cost[1] == pytest.approx(9 * span, rel=0.03)


def test_load_above_the_forecast_is_late_unless_the_headroom_covers_it() -> None:
    h = history([45.0, 60.0] * 50)  # every other interval 60 rps against a forecast of 45
    r = replay(h, TABLE, np.array([1.0, 1.4]), flat_forecast(h, 45.0), 10.0, 5.0, Choice(10.0, 0.0, 0.0), SLO_S)
    assert r is not None
    assert r.late[0] > 0.2 and r.late[1] == 0.0


def test_a_history_too_short_says_nothing() -> None:
    h = history([10.0] * 5)
    assert replay(h, TABLE, GRID, flat_forecast(h, 10.0), 10.0, 5.0, Choice(10.0, 10.0, 0.0), SLO_S) is None
    assert headroom(h, TABLE, 0.005, 10.0, 5.0, [Choice(10.0, 10.0, 0.0)], SLO_S) is None


def noisy(seed: int = 1, n: int = 600) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(100.0 * (1.0 + 0.15 * rng.standard_normal(n)).clip(0.2))


@pytest.mark.parametrize(
    ("name", "tighter", "looser"),
    [("a smaller budget buys at least as much headroom", 0.001, 0.05)],
)
def test_headroom_grows_as_the_budget_shrinks(name: str, tighter: float, looser: float) -> None:
    h = history(noisy())
    choices = [Choice(10.0, 10.0, 0.0)]
    tight = headroom(h, TABLE, tighter, 10.0, 5.0, choices, SLO_S)
    loose = headroom(h, TABLE, looser, 10.0, 5.0, choices, SLO_S)
    assert tight is not None and loose is not None
    assert tight.multiplier > loose.multiplier >= 1.0, name
    assert tight.late_share <= tight.floor + tighter
    assert (tight.samples, tight.span_s) == (600, 1198.0)


def test_a_later_choice_must_be_clearly_cheaper_to_win() -> None:
    h = history([50.0] * 200)
    same = [Choice(10.0, 10.0, 0.0), Choice(20.0, 10.0, 0.0)]  # flat: both forecasters cost the same
    hr = headroom(h, TABLE, 0.005, 10.0, 5.0, same, SLO_S)
    assert hr is not None and hr.tau_s == 10.0


def test_bursts_after_gaps_buy_a_longer_hold_when_that_is_cheapest_within_the_budget() -> None:
    rates = ([0.0] * 40 + [200.0] * 5) * 12  # 10 s bursts every 90 s from quiet
    onset = {i: 200.0 for i in range(len(rates)) if rates[i] and not rates[i - 1]}
    h = history(rates, onset=onset)
    short, long = Choice(10.0, 10.0, 200.0), Choice(10.0, 100.0, 200.0)
    hr = headroom(h, TABLE, 0.01, 10.0, 5.0, [short, long], SLO_S)
    assert hr is not None
    assert hr.hold_s == 100.0, "released between bursts, every onset would wait a cold start"
    assert hr.floor > 0, "the first burst finds nothing held: no choice prevents that"
    assert hr.late_share <= hr.floor + 0.01


@pytest.mark.parametrize(
    ("name", "missed", "load", "direction"),
    [
        ("the signals miss the SLO more often than the model says: tighten", True, 0.5, "down"),
        ("less often than the model says: loosen", False, 1.5, "up"),
        ("both agree: keep", False, 0.5, "same"),
    ],
)
def test_the_outer_loop(name: str, missed: bool, load: float, direction: str) -> None:
    loop = BudgetLoop()
    for i in range(600):
        loop.observe(2.0 * i, 100.0, missed, load, SLO_S, 0.005, 600.0)
    f = loop.factor
    assert {"down": f == LOOP_BOUNDS[0], "up": f == LOOP_BOUNDS[1], "same": f == 1.0}[direction], (name, f)
    assert BudgetLoop.from_dict(dict(loop.to_dict())).factor == pytest.approx(f)


def test_the_history_stays_bounded_and_restarts_on_a_clock_step_back() -> None:
    h = History()
    for i in range(3000):
        h.add(float(i), 1.0, 0.0, 0.0, 0.0, keep_s=600.0)
    assert len(h) == 600 and h.t[0] == 2400.0
    for i in range(3000, 3000 + 2 * KEEP):
        h.add(i / 10.0 + 3000.0, 1.0, 0.0, 0.0, 0.0, keep_s=1e9)
    assert len(h) == KEEP
    h.add(0.0, 1.0, 0.0, 0.0, 0.0, keep_s=600.0)
    assert list(h.t) == [0.0]


def test_the_state_kept_in_status_round_trips_and_stays_small() -> None:
    st = DecisionState()
    for i in range(2000):
        st.observe(2.0 * i, 50.0 + i % 7)
        st.hold.add(2.0 * i, 10 - i % 10, 900.0, 3.0)
        st.bursts.observe(2.0 * i, 0.0 if i % 50 < 40 else 300.0, 0.0, 1.0, 10.0)
        st.loop.observe(2.0 * i, 100.0, i % 9 == 0, 0.8, SLO_S, 0.005, 1800.0)
    st.headroom = headroom(history(noisy()), TABLE, 0.005, 10.0, 5.0, [Choice(20.0, 10.0, 0.0)], SLO_S)
    saved = st.to_dict()
    assert len(json.dumps(saved)) < 8000
    back = DecisionState.from_dict(json.loads(json.dumps(saved)))
    assert back.to_dict() == saved
    assert len(back.history) == 0, "the history is refilled from Prometheus, not kept in status"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"forecast": "x", "bursts": [], "hold": 3, "capacityRatio": "y", "budget": None, "headroom": {"multiplier": -1}},
        {"forecast": [{"s1": -5}], "hold": {"steps": [["a", 1]]}, "capacityRatio": 99.0, "headroom": {"multiplier": 1.2}},
        {"panicUntil": 5.0, "recommendations": [[1, 2]], "capacityRps": 20.0},  # what v1 kept
    ],
)
def test_malformed_or_old_state_starts_afresh_without_failing(data: dict[str, object]) -> None:
    st = DecisionState.from_dict(data)
    assert 0.5 <= st.saturation.ratio <= 2.0
    assert st.headroom is None or st.headroom.multiplier > 0


@pytest.mark.parametrize(
    ("name", "live", "fetched", "keep_s", "want_t"),
    [
        ("an empty state is warmed as before", [], [(0.0, 1.0), (5.0, 2.0)], 100.0, [0.0, 5.0]),
        ("a late history goes before the live samples", [100.0, 105.0], [(90.0, 1.0), (95.0, 1.0), (100.0, 9.0)], 100.0, [90.0, 95.0, 100.0, 105.0]),
        ("what is older than keep_s is dropped", [100.0], [(0.0, 1.0), (50.0, 1.0), (60.0, 1.0)], 45.0, [60.0, 100.0]),
        ("bad rates are dropped", [100.0], [(80.0, float("nan")), (90.0, -1.0), (95.0, 2.0)], 100.0, [95.0, 100.0]),
        ("at most KEEP samples, the newest kept", [float(KEEP)], [(float(t), 1.0) for t in range(KEEP)], 1e9, [float(t) for t in range(1, KEEP + 1)]),
    ],
)
def test_a_history_fetched_late_is_prepended(
    name: str, live: list[float], fetched: list[tuple[float, float]], keep_s: float, want_t: list[float]
) -> None:
    st = DecisionState()
    for t in live:
        st.history.add(t, 3.0, 0.0, 0.0, 0.0, keep_s)
    st.warm(fetched, keep_s)
    h = st.history
    assert list(h.t) == want_t, name
    assert len(h.rate) == len(h.onset) == len(h.fast) == len(h.shift) == len(h.t)
    assert all(h.rate[i] == 3.0 for i, t in enumerate(h.t) if t in live), "live samples are kept as they were"
