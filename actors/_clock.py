"""Durable (wall-clock) time for the runtime, injectable for tests.

A node reads wall time as *wall time at start + elapsed trio time*, so under trio's `MockClock`
durable time becomes virtual time with no further setup, and while a node runs it is immune to
clock steps (DESIGN §5).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

import trio


class WallClock(Protocol):
    """A source of durable time (aware UTC datetimes)."""

    def now(self) -> datetime:
        """The current durable time."""
        ...


class TrioWallClock:
    """Wall time at construction plus elapsed trio time. Construct it inside `trio.run`.

    Args:
        start: the wall time that corresponds to "now" (default: the system clock).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start if start is not None else datetime.now(UTC)
        # The run's clock, read directly: `trio.current_time()` goes through two more calls,
        # and the runtime reads the time at every durable step.
        self._current_time = trio.lowlevel.current_clock().current_time
        self._origin = self._current_time()
        self._start_micros = to_micros(self._start)

    def now(self) -> datetime:
        """Durable time now."""
        return self._start + timedelta(seconds=self._current_time() - self._origin)

    def now_micros(self) -> int:
        """Durable time now in µs since the epoch (the fast path the runtime uses)."""
        return self._start_micros + round((self._current_time() - self._origin) * 1e6)


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch (the stored form of durable time)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The inverse of `to_micros`."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
