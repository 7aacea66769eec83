"""Node configuration."""

from __future__ import annotations

from datetime import timedelta

import attrs

from storage import LmdbOptions

from ._clock import WallClock
from ._retry import RetryPolicy


def _not_negative(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if value < timedelta(0):
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


@attrs.frozen(kw_only=True)
class NodeOptions:
    """How a node runs.

    Args:
        retry_policy: backoff and attempt limit for handlers that raise retryable errors.
        idempotency_retention: how long an invocation submitted with an idempotency key keeps
            its record and result after it finishes (a repeat with the same key returns it).
        completed_retention: how long other finished invocations keep their record (default 0:
            not kept, which keeps the call path at one small commit).
        attempt_timeout: the longest one handler attempt may run before it is aborted and
            counted as a retryable failure (None: no limit).
        max_value_size: the largest encoded argument, result or state value, in bytes.
        lmdb: storage options (map size, growth cap, readers).
        clock: durable time source (default: wall time at start plus elapsed trio time).
        seed: seed for invocation ids (default: random). Set it for reproducible tests.
        suspend_after: how long an invocation waits in memory (on a durable sleep, promise,
            awakeable or call reply) before it is suspended: its task ends and it resumes by
            replay when the wait completes. A sleep longer than this suspends at once. None
            keeps every waiter in memory.
        always_replay: a test switch: after every durable point, abandon the attempt and
            re-execute the handler from its journal. Handlers that are deterministic behave
            the same; a suite that passes in this mode has its replay paths exercised.
    """

    retry_policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    idempotency_retention: timedelta = attrs.field(
        default=timedelta(hours=24), validator=_not_negative
    )
    completed_retention: timedelta = attrs.field(default=timedelta(0), validator=_not_negative)
    attempt_timeout: timedelta | None = None
    max_value_size: int = 4 * 1024 * 1024
    lmdb: LmdbOptions = attrs.field(factory=LmdbOptions)
    clock: WallClock | None = None
    seed: int | None = None
    always_replay: bool = False
    suspend_after: timedelta | None = attrs.field(default=timedelta(seconds=30))
