"""A second writer of a service's replicas (``kubectl scale``, an HPA someone added), from the Deployment's
managedFields (pure).

The apiserver records who owns ``spec.replicas``: Foresail's own managers after its writes, another
manager after anyone else's (the scale subresource included). Foresail keeps its intent (the decision is
made from the replicas it last wanted, and written back), and says who else writes: the condition
``ReplicasContested`` and one Event when that set of writers changes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from foresail.api.conditions import Condition, find_condition, set_condition
from foresail.api.reasons import ConditionType, Reason

__all__ = ["QUIET_S", "Contest", "Seen", "contest_condition", "keep_intent", "replica_writers"]


def replica_writers(deployment: Mapping[str, Any], own: Collection[str]) -> list[str]:
    """The managers, other than ``own``, that own the Deployment's ``spec.replicas`` (sorted, unique)."""
    out = set()
    for entry in (deployment.get("metadata") or {}).get("managedFields") or []:
        spec = ((entry.get("fieldsV1") or {}).get("f:spec")) or {}
        manager = str(entry.get("manager") or "")
        if "f:replicas" in spec and manager not in own:
            sub = entry.get("subresource")
            out.add(f"{manager} (/{sub})" if sub else manager)
    return sorted(out)


def keep_intent(deployment: Mapping[str, Any], writers: list[str], intent: int | None) -> Mapping[str, Any]:
    """The Deployment the decision reads: with another writer, at the replicas Foresail last wanted (its
    intent), so that a foreign write moves nothing (no hold at the foreign count, no scale-down delay)."""
    if not writers or intent is None:
        return deployment
    return {**deployment, "spec": {**(deployment.get("spec") or {}), "replicas": intent}}


QUIET_S = 600.0  # the condition stays True this long after the last foreign write seen (Foresail takes it back)

Seen = tuple[tuple[str, ...], float]  # the other writers last seen, and when


@dataclass(frozen=True)
class Contest:
    conditions: list[Condition]
    announce: str | None  # an Event to send: other writers appeared, or a different set of them
    seen: Seen | None


def contest_condition(
    conds: list[Condition], writers: list[str], seen: Seen | None, kept: int, generation: int, now: float
) -> Contest:
    """``ReplicasContested``: True naming the other writers (and the replicas Foresail keeps) until none was
    seen for ``QUIET_S`` (each foreign write loses ownership to Foresail's next one: no flapping), then
    False; absent while never contested."""
    t = datetime.fromtimestamp(now, UTC)
    announce = None
    if writers:
        if seen is None or seen[0] != tuple(writers):
            announce = f"spec.replicas written by {', '.join(writers)}: Foresail keeps its own ({kept})"
        seen = (tuple(writers), now)
    elif seen is not None and now - seen[1] > QUIET_S:
        seen = None
    if seen is None and find_condition(conds, ConditionType.REPLICAS_CONTESTED) is None:
        return Contest(conds, None, None)  # never contested: no condition at all
    if seen is None:
        msg = "only Foresail writes replicas"
        return Contest(set_condition(conds, ConditionType.REPLICAS_CONTESTED, False, Reason.SOLE_WRITER, msg, generation, t), None, None)
    msg = f"spec.replicas also written by {', '.join(seen[0])}; Foresail keeps its own ({kept})"
    out = set_condition(conds, ConditionType.REPLICAS_CONTESTED, True, Reason.OTHER_WRITER, msg, generation, t)
    return Contest(out, announce, seen)
