"""Liveness of the operator (pure): the health check fails when no autoscaler pass has completed, nor the pass
in flight made progress (a query answered, a service decided or written), for several loop periods, or when kopf's watch of InferenceServices has not shown a status the loop wrote for longer
than kopf takes to notice a silent stream and reconnect, so that a hung pass, an apiserver the operator can
no longer reach (a stalled connection) or a stalled watch restarts the pod instead of leaving every
service unscaled, or every spec change unhandled, behind a green probe (issue 15, defect 11).

The watch is judged by its echo: each status write the loop makes (a decision's, at least every
``FORESAIL_STATUS_REFRESH_SECONDS``) changes the object, so the watch must deliver an event after it. An idle watch with nothing to
deliver is not judged (no write, nothing to wait for); a standby writes nothing.

The limits are settings (``FORESAIL_LIVENESS_STALL_PERIODS``, ``FORESAIL_LIVENESS_STALL_MIN_SECONDS``,
``FORESAIL_LIVENESS_WATCH_STALL_MIN_SECONDS``); the constants below are their defaults. ``/healthz`` answers
the reason with its 503."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FIRST_PASS_FACTOR", "HEARTBEAT", "STALL_MIN_SECONDS", "STALL_PERIODS", "WATCH_STALL_MIN_SECONDS", "Heartbeat"]

STALL_PERIODS = 12  # passes missed in a row before the loop counts as stalled
STALL_MIN_SECONDS = 60.0  # never sooner: a slow pass (a large fleet, a slow list) is not a stall
# the first pass of a new leader may take this many times as long: its caches fill, kopf resumes every service
# and the first read brings a minute of history (at 1,000 services on 2 busy cores it took over 60 s, and the
# probe restarted the leader in a loop)
FIRST_PASS_FACTOR = 5.0
# kopf reconnects a watch silent for 70 s (settings.watching.inactivity_timeout, no event nor bookmark) and
# resumes from its last resourceVersion: a write unseen for longer than that and a reconnect is a stall
WATCH_STALL_MIN_SECONDS = 150.0


@dataclass
class Heartbeat:
    """When the loop started and when its last pass completed; when a status write was sent that the watch
    has not shown since, and when the watch last delivered an event (monotonic seconds)."""

    started: float | None = None
    last_pass: float | None = None
    last_progress: float | None = None  # a step within the pass in flight (a query answered, a service done)
    unechoed: float | None = None  # the first write sent after the last event
    last_event: float | None = None
    stall_periods: float = STALL_PERIODS
    stall_min_s: float = STALL_MIN_SECONDS
    watch_stall_min_s: float = WATCH_STALL_MIN_SECONDS

    def limit(self, stall_periods: float, stall_min_s: float, watch_stall_min_s: float) -> None:
        """The limits the operator's settings give."""
        self.stall_periods, self.stall_min_s, self.watch_stall_min_s = stall_periods, stall_min_s, watch_stall_min_s

    def start(self, now: float) -> None:
        self.started = now

    def beat(self, now: float) -> None:
        """A pass completed."""
        self.last_pass = now

    def progress(self, now: float) -> None:
        """The pass in flight made progress: a long pass (a big fleet on busy cores) that keeps moving is not
        a stall; a pass hung on one call is."""
        self.last_progress = now

    def wrote(self, sent: float) -> None:
        """A status write sent at ``sent`` changed an object the watch delivers (called once it succeeded)."""
        if self.unechoed is None or (self.last_event is not None and self.unechoed <= self.last_event):
            self.unechoed = sent

    def event(self, now: float) -> None:
        """The watch delivered an event: every write sent before ``now`` counts as seen."""
        self.last_event = now

    def watch_stalled(self, now: float, period_s: float) -> str | None:
        """Why the watch counts as stalled at ``now``, or None."""
        w = self.unechoed
        if w is None or (self.last_event is not None and self.last_event >= w):
            return None
        limit = max(self.watch_stall_min_s, self.stall_periods * period_s)
        if now - w <= limit:
            return None
        seen = "never" if self.last_event is None else f"{now - self.last_event:.0f} s ago"
        return f"watch stalled: a status write {now - w:.0f} s ago not delivered by the InferenceService watch (limit {limit:.0f} s; last event {seen})"

    def stalled(self, now: float, period_s: float) -> str | None:
        """Why the loop or the watch counts as stalled at ``now``, or None; a loop not started yet (a
        standby, the operator starting) is not judged."""
        return self.loop_stalled(now, period_s) or self.watch_stalled(now, period_s)

    def loop_stalled(self, now: float, period_s: float) -> str | None:
        """Why the loop counts as stalled at ``now``, or None."""
        since = self.last_pass if self.last_pass is not None else self.started
        if since is None:
            return None
        moving = self.last_progress is not None and self.last_progress > since
        if moving:
            assert self.last_progress is not None
            since = self.last_progress
        limit = max(self.stall_min_s, self.stall_periods * period_s) * (1.0 if self.last_pass is not None else FIRST_PASS_FACTOR)
        idle = now - since
        if idle <= limit:
            return None
        what = (
            "the pass in flight last made progress" if moving
            else "the last pass completed" if self.last_pass is not None
            else "the loop started without completing a pass"
        )  # fmt: skip
        return f"autoscaler stalled: {what} {idle:.0f} s ago (limit {limit:.0f} s)"


HEARTBEAT = Heartbeat()  # the operator's: the autoscaler loop beats and writes, kopf's event handler sees, /healthz reads
