"""Liveness of the autoscaler loop (pure): the health check fails when no pass has completed for
several loop periods, so that a hung pass or an apiserver the operator can no longer reach (a stalled
connection) restarts the pod instead of leaving every service unscaled behind a green probe."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["STALL_MIN_SECONDS", "STALL_PERIODS", "Heartbeat"]

STALL_PERIODS = 12  # passes missed in a row before the loop counts as stalled
STALL_MIN_SECONDS = 60.0  # never sooner: a slow pass (a large fleet, a slow list) is not a stall


@dataclass
class Heartbeat:
    """When the loop started and when its last pass completed (monotonic seconds)."""

    started: float | None = None
    last_pass: float | None = None

    def start(self, now: float) -> None:
        self.started = now

    def beat(self, now: float) -> None:
        """A pass completed."""
        self.last_pass = now

    def stalled(self, now: float, period_s: float) -> str | None:
        """Why the loop counts as stalled at ``now``, or None; a loop not started yet (a standby, the
        operator starting) is not judged."""
        since = self.last_pass if self.last_pass is not None else self.started
        if since is None:
            return None
        limit = max(STALL_MIN_SECONDS, STALL_PERIODS * period_s)
        idle = now - since
        if idle <= limit:
            return None
        what = "the last pass completed" if self.last_pass is not None else "the loop started without completing a pass"
        return f"autoscaler stalled: {what} {idle:.0f} s ago (limit {limit:.0f} s)"
