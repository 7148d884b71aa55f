"""The pause annotations (pure): what they ask for, and the decision of a paused service; named cases."""

from __future__ import annotations

import pytest

from foresail.api.reasons import DecisionReason
from foresail.scaling.pause import PAUSED, PAUSED_REPLICAS, Pause, pause_of, paused_decision

CASES: list[tuple[str, dict[str, str] | None, Pause | None]] = [
    ("no annotations", None, None),
    ("other annotations only", {"example.com/x": "1"}, None),
    ("paused: true", {PAUSED: "true"}, Pause(None)),
    ("paused: True, spaces", {PAUSED: " True "}, Pause(None)),
    ("paused: false is no pause", {PAUSED: "false"}, None),
    ("paused-replicas: 3", {PAUSED_REPLICAS: "3"}, Pause(3)),
    ("paused-replicas: 0 (scaled to zero for maintenance)", {PAUSED_REPLICAS: "0"}, Pause(0)),
    ("paused-replicas wins over paused", {PAUSED: "false", PAUSED_REPLICAS: "2"}, Pause(2)),
    ("paused: yes is not understood: held, and said", {PAUSED: "yes"}, Pause(None, "foresail.dev/paused: 'yes' is neither \"true\" nor \"false\"")),
    ("paused-replicas: -1 is not a count", {PAUSED_REPLICAS: "-1"}, Pause(None, "foresail.dev/paused-replicas: '-1' is not a count from 0 to 10000")),
    ("paused-replicas: too many", {PAUSED_REPLICAS: "10001"}, Pause(None, "foresail.dev/paused-replicas: '10001' is not a count from 0 to 10000")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "annotations", "want"), CASES, ids=[c[0] for c in CASES])
def test_pause_of(name: str, annotations: dict[str, str] | None, want: Pause | None) -> None:
    assert pause_of(annotations) == want, name


DECISIONS: list[tuple[str, Pause, int, int, str]] = [
    ("held at the current count", Pause(None), 4, 4, "paused by foresail.dev/paused: replicas held at 4"),
    ("set to the annotation's count", Pause(1), 4, 1, "paused by foresail.dev/paused-replicas: replicas set to 1"),
    ("a bad value holds and says why", Pause(None, "bad"), 2, 2, "paused by foresail.dev/paused: replicas held at 2 (bad)"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "pause", "current", "replicas", "message"), DECISIONS, ids=[d[0] for d in DECISIONS])
def test_paused_decision(name: str, pause: Pause, current: int, replicas: int, message: str) -> None:
    d = paused_decision(pause, current, signals_ok=True)
    assert (d.replicas, d.reason, d.message) == (replicas, DecisionReason.PAUSED, message), name
