"""Waiting for a state, never for a time: poll until a check holds, fail naming what and the last answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["WaitTimeout", "wait_for"]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A state not reached in time (an AssertionError, so that pytest reports it as a failed expectation)."""


def wait_for(
    what: str,
    fn: Callable[[], T | None],
    timeout: float = 60.0,
    interval: float = 0.25,
    abort: Callable[[], str | None] | None = None,
) -> T:
    """Poll ``fn`` until it returns something truthy and return that. An exception from ``fn`` counts as not
    yet (and is remembered); ``abort`` returning a reason (a process that died) ends the wait at once."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        if abort is not None and (why := abort()):
            raise RuntimeError(f"gave up waiting for {what}: {why}")
        try:
            value = fn()
        except Exception as e:
            last = e
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")
        time.sleep(interval)
