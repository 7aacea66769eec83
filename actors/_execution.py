"""One attempt of a journaled invocation: replay cursor, state view and durable points.

A durable point commits, in one transaction: the journal entries made since the last one,
every state write of this invocation so far (and the before-images that let a re-execution read
exactly what the first execution read), the messages it sent, and, if the invocation was not
durable yet, its inbox entry and record. The handler continues only after the commit.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from storage import Batch, Codec, Reader

from ._errors import InvocationCancelled
from ._journal import Divergence, Entry, EntryKind, Journal
from ._layout import JOURNAL, SLOTS, STATE, ActorId, InvocationId, prefix_end, slot_key

IMAGES_INDEX = 0xFFFFFFFF
"""The journal slot that holds the invocation's state before-images (sorts after entries)."""


def entry_key(invocation: InvocationId, index: int) -> bytes:
    """The `journal` table key of one entry of an invocation."""
    return invocation.raw + index.to_bytes(4, "big")


class Diverged(BaseException):
    """A re-execution diverged from the journal. A `BaseException` so handler code cannot
    swallow it; the runtime pauses the invocation."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(divergence.describe())
        self.divergence = divergence


class Replay(BaseException):
    """Always-replay test mode: abandon this attempt after a durable point and re-execute it
    from the journal (not counted as a failed attempt)."""


class Killed(BaseException):
    """An operator killed the invocation; raised at its next durable point."""


class PauseRequested(BaseException):
    """An operator paused the invocation; raised at its next durable point or wait."""


class Suspend(BaseException):
    """The handler is waiting for a long time: unwind it (its task ends) and resume it by
    replay when `wake_at` (µs) passes or the slot `table[key]` is filled."""

    def __init__(self, wake_at: int | None, slot: tuple[str, bytes] | None) -> None:
        super().__init__("suspended")
        self.wake_at = wake_at
        self.slot = slot


class Engine(Protocol):
    """What an execution needs from its node."""

    @property
    def codec(self) -> Codec: ...

    new_batch: Callable[[], Batch]
    """An empty batch with the node's size limits."""

    commit: Callable[[Batch], Awaitable[None]]
    """Commit a batch that makes nothing else durable (no invocation, no message)."""

    now_us: Callable[[], int]
    """Durable time now, in µs since the epoch."""

    def durable_rows(self, invocation: Any, batch: Batch) -> None:
        """Add the rows that make a not yet durable invocation durable (inbox + record)."""
        ...

    def outbox_rows(self, targets: list[Any], batch: Batch) -> None:
        """Add the rows that enqueue messages sent by this invocation."""
        ...

    async def commit_point(self, invocation: Any, batch: Batch, sent: list[Any]) -> None:
        """Commit a durable point's batch, then deliver what it sent."""
        ...

    def slot_event(self, table: str, key: bytes) -> trio.Event:
        """An event set when the slot `table[key]` is filled (after the commit)."""
        ...


class Execution:
    """The journal, state overlay and outbox of one attempt of one invocation."""

    def __init__(
        self,
        *,
        engine: Engine,
        invocation: Any,
        handler: str,
        reader: Reader,
        actor: ActorId | None,
        recorded: list[Entry],
        images: dict[str, bytes | None],
        always_replay: bool,
        suspend_after: float | None = None,
    ) -> None:
        self.engine = engine
        self.codec = engine.codec
        self.suspend_after = suspend_after
        self.invocation = invocation
        self.journal = Journal(handler, recorded)
        self.reader = reader
        self.actor = actor
        self.images = images
        self.images_written = dict(images)
        self.writes: dict[str, bytes | None] = {}
        self.cleared = False
        self.dirty = False
        """State was written since the last durable point."""
        self.outbox: list[Any] = []
        self.always_replay = always_replay
        self.diverged: Diverged | None = None
        self.cancel_delivered = False

    @classmethod
    def load(
        cls,
        *,
        engine: Engine,
        invocation: Any,
        inv_id: InvocationId,
        handler: str,
        reader: Reader,
        actor: ActorId | None,
        durable: bool,
        always_replay: bool,
        suspend_after: float | None = None,
    ) -> Execution:
        """An execution with the committed journal of `inv_id` (none if not durable yet)."""
        recorded: list[Entry] = []
        images: dict[str, bytes | None] = {}
        if durable:
            codec = engine.codec
            start = inv_id.raw
            for key, raw in reader.scan(JOURNAL, start=start, stop=prefix_end(start)):
                (index,) = struct.unpack(">I", key[len(start) :])
                if index == IMAGES_INDEX:
                    images = dict(codec.decode(raw))
                else:
                    recorded.append(Entry.from_wire(index, codec.decode(raw)))
        return cls(
            engine=engine,
            invocation=invocation,
            handler=handler,
            reader=reader,
            actor=actor,
            recorded=recorded,
            images=images,
            always_replay=always_replay,
            suspend_after=suspend_after,
        )

    # ------------------------------------------------------------------ journal

    def match(self, kind: EntryKind, name: str) -> Entry | None:
        """The recorded entry for this operation (replay), or None if it is new.

        Raises:
            Diverged: the operation differs from the one recorded at this index.
        """
        if self.diverged is not None:
            raise self.diverged
        found = self.journal.match(kind, name)
        if found is None:
            # A new operation: a requested cancellation is delivered here, journaled.
            if self.invocation.cancel_requested and not self.cancel_delivered:
                self.check_cancel()
            return None
        if isinstance(found, Divergence):
            if found.recorded is not None and found.recorded[0] is EntryKind.CANCEL:
                self.check_cancel()  # the first execution was cancelled at this point
            self.diverged = Diverged(found)
            raise self.diverged
        return found

    def check_cancel(self) -> None:
        """Deliver a requested cancellation at this point, journaled so that a re-execution
        sees it at the same point.

        Raises:
            InvocationCancelled: a cancellation is due here.
        """
        recorded = self.journal.next_recorded()
        if recorded is not None and recorded.kind is EntryKind.CANCEL:
            self.journal.match(EntryKind.CANCEL, "")
            self.cancel_delivered = True
            raise self._cancelled()
        if recorded is None and self.invocation.cancel_requested and not self.cancel_delivered:
            self.cancel_delivered = True
            self.append(EntryKind.CANCEL, "")
            raise self._cancelled()

    def _cancelled(self) -> InvocationCancelled:
        return InvocationCancelled(f"invocation {self.invocation.id} was cancelled", code=409)

    def outstanding_calls(self) -> list[str]:
        """Ids of invocations this one called and has no reply from yet."""
        entries = self.journal.entries()
        answered = {e.name for e in entries if e.kind is EntryKind.OUTCOME}
        return [
            self.engine.codec.decode(e.value)
            for e in entries
            if e.kind is EntryKind.CALL
            and e.value is not None
            and f"call-{e.index}" not in answered
        ]

    def has_pending(self) -> bool:
        """Whether journal entries, messages or state writes await a durable point."""
        return bool(self.journal.has_pending or self.outbox or self.dirty)

    def check_complete(self) -> None:
        """At the handler's return.

        Raises:
            Diverged: recorded steps were skipped by this execution.
        """
        if self.diverged is not None:
            raise self.diverged
        found = self.journal.unreplayed()
        if found is not None:
            self.diverged = Diverged(found)
            raise self.diverged

    def append(self, kind: EntryKind, name: str, **fields: Any) -> Entry:
        """Record a new entry, committed with the next durable point (stamped with the
        node's durable time, for the console's timeline)."""
        return self.journal.append(kind, name, at=self.engine.now_us(), **fields)

    # ------------------------------------------------------------------ state view

    def committed_value(self, name: str) -> bytes | None:
        """What the first execution read for `name`: its before-image if this invocation
        already committed a write of it, else the stored value."""
        if name in self.images:
            return self.images[name]
        assert self.actor is not None
        return self.reader.get(STATE, self.actor.state_key(name))

    def committed_names(self) -> set[str]:
        assert self.actor is not None
        prefix = self.actor.prefix
        rows = self.reader.scan(STATE, start=prefix, stop=prefix_end(prefix))
        names = {k[len(prefix) :].decode() for k, _ in rows}
        for name, image in self.images.items():
            if image is None:
                names.discard(name)
            else:
                names.add(name)
        return names

    def state_rows(self, batch: Batch) -> None:
        """Add every state write of this invocation so far, and new before-images."""
        if self.actor is None:
            return
        actor = self.actor
        if self.cleared:
            for name in self.committed_names():
                if name not in self.writes:
                    self._image(name)
                    batch.delete(STATE, actor.state_key(name))
        for name, raw in self.writes.items():
            self._image(name)
            key = actor.state_key(name)
            if raw is None:
                batch.delete(STATE, key)
            else:
                batch.put(STATE, key, raw)

    def _image(self, name: str) -> None:
        if name not in self.images:
            assert self.actor is not None
            self.images[name] = self.reader.get(STATE, self.actor.state_key(name))

    # ------------------------------------------------------------------ durable points

    async def durable_point(self) -> None:
        """Commit what this attempt did since the last durable point, then continue.

        Raises:
            Killed: an operator killed the invocation meanwhile.
            Replay: always-replay test mode, after the commit.
        """
        invocation = self.invocation
        if invocation.kill_requested:
            raise Killed
        if invocation.pause_requested:
            raise PauseRequested
        engine = self.engine
        journal = self.journal
        batch = engine.new_batch()
        pending = journal.take_pending()
        if pending:
            self.journal_rows(batch, pending)
        if self.writes or self.cleared:
            self.state_rows(batch)
        if self.images != self.images_written:
            batch.put(
                JOURNAL,
                entry_key(invocation.id, IMAGES_INDEX),
                self.codec.encode(self.images),
            )
            self.images_written = dict(self.images)
        sent = self.outbox
        if sent or not invocation.durable:
            if not invocation.durable:
                engine.durable_rows(invocation, batch)
            self.outbox = []
            engine.outbox_rows(sent, batch)
            await engine.commit_point(invocation, batch, sent)
        else:
            # The usual step of a running invocation: its journal entry, and state writes.
            await engine.commit(batch)
        self.dirty = False
        journal.committed(pending)
        if self.always_replay and pending:
            raise Replay  # only new journal entries give a re-execution something to replay

    async def await_slot(self, table: str, key: bytes, deadline: int | None) -> bytes | None:
        """Wait until `table[key]` is filled, or `deadline` (µs) passes: its outcome, or None.

        Killable: an operator's kill cancels the wait and raises `Killed`.
        """
        invocation = self.invocation
        while True:
            raw = self.reader.get(table, key)
            if raw is not None:
                return raw
            wait = float("inf") if deadline is None else (deadline - self.engine.now_us()) / 1e6
            if wait <= 0:
                return None
            self.check_cancel()
            limit = wait if self.suspend_after is None else min(wait, self.suspend_after)
            with trio.CancelScope() as invocation.scope:
                invocation.waiting = True
                invocation.waiting_outside = (table, key) if deadline is None else None
                event = self.engine.slot_event(table, key)
                try:
                    with trio.move_on_after(limit) as waited:
                        await event.wait()
                finally:
                    invocation.waiting = False
                    invocation.waiting_outside = None
            invocation.scope = None
            if invocation.kill_requested:
                raise Killed
            if invocation.pause_requested:
                raise PauseRequested
            self.check_cancel()
            if waited.cancelled_caught and limit < wait and self.reader.get(table, key) is None:
                raise Suspend(deadline, (table, key))

    def journal_rows(self, batch: Batch, entries: list[Entry]) -> None:
        codec = self.codec
        inv_id = self.invocation.id
        for entry in entries:
            batch.put(JOURNAL, entry_key(inv_id, entry.index), entry.encode(codec))

    def finish_rows(self, batch: Batch, *, keep_journal: bool = False) -> list[Any]:
        """At completion: state writes, sent messages, and the journal's deletion (unless
        `keep_journal`: a retained record keeps its journal for tools until it expires).
        Returns the messages to deliver once the batch is committed."""
        self.state_rows(batch)
        sent, self.outbox = self.outbox, []
        self.engine.outbox_rows(sent, batch)
        inv_id = self.invocation.id
        if keep_journal:
            self.journal_rows(batch, self.journal.entries()[self.journal.committed_length :])
        else:
            for index in range(self.journal.committed_length):
                batch.delete(JOURNAL, entry_key(inv_id, index))
        for entry in self.journal.entries():
            if entry.kind in (EntryKind.CALL, EntryKind.AWAKEABLE):
                batch.delete(SLOTS, slot_key(inv_id, entry.index))
        if self.images_written:
            batch.delete(JOURNAL, entry_key(inv_id, IMAGES_INDEX))
        return sent
