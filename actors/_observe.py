"""Counters a node keeps for its metrics (sans-IO: plain integers and fixed-bucket histograms).

The node's hot path only increments integers here; turning them into Prometheus metric
families happens at scrape time (`actors/_http/_metrics.py`), so the node never imports
``prometheus_client``. Gauges (invocations by status, mailbox depth, timers pending) are not
counted at all: `Observation` computes them from the node's in-memory tables when asked.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sized
from typing import Protocol

import attrs

from ._records import InvocationStatus

DURATION_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    3600.0,
    86400.0,
)
"""Upper bounds (seconds) of the handler-duration histogram; a last bucket catches the rest.
Sub-millisecond at the bottom (a durable call takes a few hundred µs here), a day at the top
(workflows suspend on durable timers)."""

OUTCOMES: tuple[str, ...] = ("succeeded", "failed", "cancelled", "killed", "not_accepted")
"""How an invocation left memory: completed with a result, completed with a terminal failure,
cancelled, killed by an operator, or failed before it became durable (it took no effect)."""


@attrs.define
class Histogram:
    """A fixed-bucket histogram: `counts[i]` observations in bucket i (not cumulative; the
    last bucket is everything above the highest bound), and their sum."""

    bounds: tuple[float, ...] = DURATION_BUCKETS
    counts: list[int] = attrs.field(factory=list)
    total: float = 0.0

    def __attrs_post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        """Add one observation (a bound is inclusive, as in Prometheus's ``le``)."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        """Observations so far."""
        return sum(self.counts)

    def cumulative(self) -> list[int]:
        """Observations at or below each bound, then the total count (the ``+Inf`` bucket)."""
        running = 0
        out: list[int] = []
        for count in self.counts:
            running += count
            out.append(running)
        return out


@attrs.define
class HandlerCounters:
    """What happened to the invocations of one handler."""

    finished: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(OUTCOMES, 0))
    """Invocations that left memory, by outcome (`OUTCOMES`)."""
    failed_attempts: int = 0
    """Attempts that failed with a retryable error (each one is retried or pauses)."""
    duration: Histogram = attrs.field(factory=Histogram)
    """Seconds from admission to completion, of the invocations that finished."""


@attrs.define
class Counters:
    """A node's cumulative counters. The node calls the methods; a scrape reads the fields."""

    handlers: dict[tuple[str, str], HandlerCounters] = attrs.field(factory=dict)
    """Per ``(actor type, handler name)``."""
    replays: int = 0
    """Attempts that started by replaying committed journal entries (a retry, a resumption
    after suspension, pause or restart)."""
    suspensions: int = 0
    """Times an invocation was suspended (taken out of memory to wait)."""

    def _of(self, type_name: str, handler: str) -> HandlerCounters:
        counters = self.handlers.get((type_name, handler))
        if counters is None:
            counters = self.handlers[(type_name, handler)] = HandlerCounters()
        return counters

    def finished(self, type_name: str, handler: str, outcome: str, seconds: float) -> None:
        """An invocation left memory with `outcome` after `seconds` since its admission."""
        counters = self._of(type_name, handler)
        counters.finished[outcome] += 1
        counters.duration.observe(seconds)

    def failed_attempt(self, type_name: str, handler: str) -> None:
        """An attempt failed with a retryable error."""
        self._of(type_name, handler).failed_attempts += 1

    def replayed(self) -> None:
        """An attempt began with committed journal entries to replay."""
        self.replays += 1

    def suspended(self) -> None:
        """An invocation was suspended."""
        self.suspensions += 1


def outcome_of(status: InvocationStatus, error_type: str | None, accepted: bool) -> str:
    """The outcome label of an invocation leaving memory.

    Args:
        status: its final status.
        error_type: the type of its terminal failure, if it completed with one.
        accepted: whether it became durable (a call that failed before that took no effect).
    """
    if status is InvocationStatus.KILLED:
        return "killed"
    if status is InvocationStatus.COMPLETED:
        if error_type is None:
            return "succeeded"
        return "cancelled" if error_type == "InvocationCancelled" else "failed"
    # Still unfinished: only a call that failed before its first durable point leaves memory
    # like this.
    return "failed" if accepted else "not_accepted"


class _Live(Protocol):
    """What `observe` reads of an in-memory invocation."""

    @property
    def status(self) -> InvocationStatus: ...

    @property
    def wake_at(self) -> int | None: ...


@attrs.frozen(kw_only=True)
class Observation:
    """A snapshot for one scrape: the counters (a reference; read them right away) and the
    gauges computed from the node's tables at that moment."""

    counters: Counters
    by_status: Mapping[InvocationStatus, int]
    """Invocations in memory, by status (every status present, zeros included)."""
    active_actors: int
    mailbox_depth: int
    """Invocations waiting in mailboxes, over all keys (the running ones not counted)."""
    mailbox_depth_max: int
    """The deepest single mailbox."""
    timers_pending: int
    """Durable timers in memory: delayed sends not yet due, and suspended invocations with a
    wake-up time (a durable sleep, or a wait with a deadline)."""
    commits: int
    batches: int
    records: int
    map_size: int
    map_grows: int


def observe(
    counters: Counters,
    invocations: Iterable[_Live],
    mailboxes: Iterable[Sized],
    *,
    commits: int,
    batches: int,
    records: int,
    map_size: int,
    map_grows: int,
) -> Observation:
    """Compute the gauges: one pass over the in-memory invocations and mailboxes."""
    by_status = dict.fromkeys(InvocationStatus, 0)
    timers = 0
    for inv in invocations:
        status = inv.status
        by_status[status] += 1
        if status is InvocationStatus.SCHEDULED or (
            status is InvocationStatus.SUSPENDED and inv.wake_at is not None
        ):
            timers += 1
    active = depth = deepest = 0
    for mailbox in mailboxes:
        active += 1
        size = len(mailbox)
        depth += size
        deepest = max(deepest, size)
    return Observation(
        counters=counters,
        by_status=by_status,
        active_actors=active,
        mailbox_depth=depth,
        mailbox_depth_max=deepest,
        timers_pending=timers,
        commits=commits,
        batches=batches,
        records=records,
        map_size=map_size,
        map_grows=map_grows,
    )
