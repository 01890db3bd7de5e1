"""One place for "now", so tests, backtests and the simulated market reason about the same time.

Production reads the wall clock. A test (or a replay) installs its own clock with `use_clock`: every caller that
asks `now_ms()` or `utcnow()` then sees it, including the simulated exchange, whose prices are a pure function of
time, so a test that owns the clock sees the same market on any date.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

Clock = Callable[[], int]  # epoch milliseconds

_lock = threading.Lock()
_override: Clock | None = None


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def wall_utcnow() -> datetime:
    """Wall time, for stamps that something outside the process compares with its own clock (a TTL index)."""
    return datetime.now(UTC)


def now_ms() -> int:
    clock = _override
    return int(clock()) if clock is not None else wall_ms()


def utcnow() -> datetime:
    clock = _override
    if clock is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(int(clock()) / 1000, UTC)


def set_clock(clock: Clock | None) -> Clock | None:
    """Install `clock` process-wide (None restores the wall clock); returns the one it replaced."""
    global _override
    with _lock:
        previous, _override = _override, clock
    return previous


def ticking_from(start_ms: int) -> Clock:
    """A clock that starts at `start_ms` and advances with real elapsed time (timers and expiries still work)."""
    origin = time.monotonic_ns()
    return lambda: start_ms + (time.monotonic_ns() - origin) // 1_000_000


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)
