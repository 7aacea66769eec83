"""Mailbox rules for one key's exclusive invocations (a sans-IO core).

One consumer at a time takes invocations in arrival order. A paused invocation stays at the
head and blocks everything behind it until it is resumed or removed, so the order of effects on
a key never changes behind the user's back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator
from typing import Generic, Protocol, TypeVar


class _HasId(Protocol):
    @property
    def key(self) -> Hashable: ...


E = TypeVar("E", bound=_HasId)


class Mailbox(Generic[E]):
    """The in-memory mailbox of one key.

    The driver calls `push` for each arrival and starts a consumer when it returns True; the
    consumer loops on `take` until it returns None, calling `done` after each entry.
    """

    def __init__(self) -> None:
        self._queue: deque[E] = deque()
        self._running: E | None = None
        self._blocked: E | None = None
        self._consuming = False

    def push(self, entry: E) -> bool:
        """Queue `entry`; True if the caller must start a consumer."""
        self._queue.append(entry)
        return self._claim()

    def _claim(self) -> bool:
        if self._consuming or self._blocked is not None or not self._queue:
            return False
        self._consuming = True
        return True

    def take(self) -> E | None:
        """The next entry to run, or None: the consumer must then exit."""
        if self._running is not None:
            raise RuntimeError("take() called while an entry is still running")
        if self._blocked is not None or not self._queue:
            self._consuming = False
            return None
        self._running = self._queue.popleft()
        return self._running

    def done(self, entry: E) -> None:
        """The running entry finished (completed, failed terminally or was killed)."""
        self._check_running(entry)
        self._running = None

    def pause(self, entry: E) -> None:
        """The running entry is paused: it blocks the mailbox until `resume` or `remove`."""
        self._check_running(entry)
        self._running = None
        self._blocked = entry

    def requeue(self, entry: E) -> None:
        """The running entry stopped without finishing (its runner went away): put it back at
        the head, to be taken again."""
        self._check_running(entry)
        self._running = None
        self._queue.appendleft(entry)

    def release(self) -> bool:
        """The consumer stops (it ran an entry inline and has no more to do in its task).

        Returns True if work remains: the caller must start a new consumer, which inherits
        the claim. Otherwise the claim is dropped.
        """
        if self._running is not None:
            raise RuntimeError("release() called while an entry is still running")
        if self._blocked is None and self._queue:
            return True
        self._consuming = False
        return False

    def block(self, entry: E) -> None:
        """Install `entry` as the paused head (at start-up, for a stored paused invocation)."""
        if self._blocked is not None:
            self._queue.appendleft(entry)
        else:
            self._blocked = entry

    def resume(self) -> bool:
        """Put the paused entry back at the head; True if the caller must start a consumer."""
        if self._blocked is None:
            return False
        self._queue.appendleft(self._blocked)
        self._blocked = None
        return self._claim()

    def remove(self, key: Hashable) -> bool:
        """Drop a queued or paused (not running) entry; True if the caller must start a
        consumer (because a paused head was removed)."""
        if self._blocked is not None and self._blocked.key == key:
            self._blocked = None
            return self._claim()
        for entry in self._queue:
            if entry.key == key:
                self._queue.remove(entry)
                break
        return False

    def _check_running(self, entry: E) -> None:
        if self._running is not entry:
            raise RuntimeError(f"{entry!r} is not the running entry")

    @property
    def running(self) -> E | None:
        """The entry being run, if any."""
        return self._running

    @property
    def blocked_by(self) -> E | None:
        """The paused entry blocking this mailbox, if any."""
        return self._blocked

    @property
    def idle(self) -> bool:
        """Nothing queued, running or paused: the activation can be dropped."""
        return not self._queue and self._running is None and self._blocked is None

    def __len__(self) -> int:
        """Entries waiting (not counting the running one)."""
        return len(self._queue) + (self._blocked is not None)

    def __iter__(self) -> Iterator[E]:
        if self._blocked is not None:
            yield self._blocked
        yield from self._queue
