"""Retry policy: when to try a failed invocation again, and when to pause it."""

from __future__ import annotations

from datetime import timedelta

import attrs


def _positive(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if value < timedelta(0):
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Exponential backoff for invocations that fail with a retryable error.

    After `max_attempts` failed attempts the invocation is paused (not dropped): it keeps its
    place and can be resumed or killed.

    Args:
        initial_interval: the wait before the second attempt.
        factor: how much each wait grows over the previous one.
        max_interval: the cap on a single wait.
        max_attempts: attempts in total, including the first (None: retry forever).
    """

    initial_interval: timedelta = attrs.field(
        default=timedelta(milliseconds=100), validator=_positive
    )
    factor: float = attrs.field(default=2.0)
    max_interval: timedelta = attrs.field(default=timedelta(seconds=60), validator=_positive)
    max_attempts: int | None = attrs.field(default=10)

    @factor.validator
    def _check_factor(self, _: object, value: float) -> None:
        if value < 1.0:
            raise ValueError(f"factor must be at least 1.0, got {value}")

    @max_attempts.validator
    def _check_attempts(self, _: object, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError(f"max_attempts must be at least 1 (or None), got {value}")

    def next_delay(self, failed_attempts: int) -> timedelta | None:
        """The wait before the next attempt after `failed_attempts` failures, or None if the
        invocation should be paused now."""
        if self.max_attempts is not None and failed_attempts >= self.max_attempts:
            return None
        seconds = self.initial_interval.total_seconds() * self.factor ** (failed_attempts - 1)
        return min(timedelta(seconds=seconds), self.max_interval)
