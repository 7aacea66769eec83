"""The journal of one invocation and its replay rules (a sans-IO core).

Every context operation that must give the same answer when the handler is re-executed
(`ctx.run`, `ctx.sleep`, `ctx.now`, `ctx.send`) is an entry ``(index, kind, name, result)``.
On re-execution each operation is matched against the entry at its index: a recorded entry
returns its result without doing anything; a different kind or name at that index is a
divergence. Entries made since the last durable point are *pending*: they are committed
together with the next durable point (or the invocation's completion), never alone.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

from storage import Codec

ENTRY_VERSION = 1


class EntryKind(enum.Enum):
    """What a journal entry records."""

    RUN = "run"
    """The result (or terminal failure) of a `ctx.run` side effect."""
    SLEEP = "sleep"
    """The wake-up time (µs since the epoch) of a durable `ctx.sleep`."""
    NOW = "now"
    """The durable time `ctx.now()` returned (µs since the epoch)."""
    SEND = "send"
    """A one-way message to another actor (the id of the invocation it created)."""
    CALL = "call"
    """A request to another actor (the id of the invocation it created); its reply arrives
    in the slot addressed to this entry."""
    AWAKEABLE = "awakeable"
    """An awakeable was created (its id is derived from this entry's position)."""
    DEADLINE = "deadline"
    """The durable deadline (µs since the epoch, or None) of a wait that follows."""
    OUTCOME = "outcome"
    """What a wait on a promise, awakeable or call reply produced."""
    CANCEL = "cancel"
    """The point where a cancellation was delivered to the handler."""


@attrs.define(kw_only=True)
class Entry:
    """One journal entry. `value` is codec-encoded; `failure` is a terminal failure row.

    `at` and `attempts` are informational (the console's timeline), never used by replay;
    entries written before they existed decode with None. Treat entries as immutable; the
    class is not frozen only because a frozen attrs class takes twice as long to build, and
    one is built for every durable step.
    """

    index: int
    kind: EntryKind
    name: str
    value: bytes | None = None
    failure: list[Any] | None = None
    at: int | None = None
    """When the entry was recorded (µs since the epoch, the node's durable clock)."""
    attempts: int | None = None
    """For a `run` step: how many times its function was called in the attempt that
    recorded it (more than 1 when it retried in place)."""

    def encode(self, codec: Codec) -> bytes:
        """The stored form, encoded.

        Raises:
            PayloadTooLarge: the encoded entry is larger than `codec.max_size`.
        """
        return codec.encode(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "v": ENTRY_VERSION,
            "kind": self.kind._value_,  # `.value` is a property: two calls per entry
            "name": self.name,
            "value": self.value,
            "failure": self.failure,
            "at": self.at,
            "n": self.attempts,
        }

    @classmethod
    def from_wire(cls, index: int, row: dict[str, Any]) -> Entry:
        """Inverse of `to_wire`."""
        if row.get("v") != ENTRY_VERSION:
            raise ValueError(f"unknown journal entry version {row.get('v')!r}")
        return cls(
            index=index,
            kind=EntryKind(row["kind"]),
            name=row["name"],
            value=row["value"],
            failure=row["failure"],
            at=row.get("at"),
            attempts=row.get("n"),
        )


@attrs.frozen(kw_only=True)
class Divergence:
    """What a non-deterministic re-execution did differently from the recorded one."""

    handler: str
    index: int
    expected: tuple[EntryKind, str] | None
    """What the re-execution asked for at `index` (None: it returned instead)."""
    recorded: tuple[EntryKind, str] | None
    """What the journal holds there (None: the journal is shorter, which cannot diverge)."""

    def describe(self) -> str:
        """A message naming the handler, the index, and both sides."""
        if self.expected is None:
            asked = "to return"
        else:
            asked = f"for {self.expected[0].value} {self.expected[1]!r}"
        if self.recorded is None:
            recorded = "nothing"
        else:
            recorded = f"{self.recorded[0].value} {self.recorded[1]!r}"
        return (
            f"non-deterministic handler {self.handler}: at journal entry {self.index} the"
            f" re-execution asked {asked} but the journal recorded {recorded}. Handler code"
            " must take the same steps in the same order on every execution; deploy code that"
            " is compatible with running invocations, or kill them"
        )


@attrs.frozen(kw_only=True)
class JournalEntry:
    """One step of an invocation's journal, as tools show it (see `Node.get_journal`)."""

    index: int
    kind: str
    """``run``, ``sleep``, ``now``, ``send``, ``call``, ``awakeable``, ``deadline``,
    ``outcome`` or ``cancel``."""
    name: str
    value: Any
    """The recorded result (decoded), a wake-up time, a sent invocation's id, ..."""
    failure: str | None
    """The terminal failure a `run` step recorded, if any."""
    recorded_at: datetime | None = None
    """When the step was recorded (the node's durable clock); None for entries written by a
    version that did not record it."""
    attempts: int | None = None
    """For a `run` step: how many times its function ran before its result (or terminal
    failure) was recorded (more than 1 when it retried in place); None for other kinds."""


class Journal:
    """The replay cursor of one invocation attempt.

    Args:
        handler: ``Type.handler``, for messages.
        recorded: the committed entries, in index order (empty for a first execution).
    """

    def __init__(self, handler: str, recorded: list[Entry]) -> None:
        for position, entry in enumerate(recorded):
            if entry.index != position:
                raise ValueError(f"journal of {handler} has a gap at entry {position}")
        self._handler = handler
        self._recorded = recorded
        self._pending: list[Entry] = []
        self._cursor = 0

    @property
    def replaying(self) -> bool:
        """True while the handler is still re-executing recorded steps."""
        return self._cursor < len(self._recorded)

    @property
    def length(self) -> int:
        """Entries recorded or pending (the index of the next new entry)."""
        return len(self._recorded) + len(self._pending)

    @property
    def committed_length(self) -> int:
        """Entries known to be committed."""
        return len(self._recorded)

    def match(self, kind: EntryKind, name: str) -> Entry | Divergence | None:
        """The next operation of the handler: its recorded entry (replay), a `Divergence`, or
        None when it is new and must be executed."""
        if self._cursor < len(self._recorded):
            entry = self._recorded[self._cursor]
            if entry.kind is not kind or entry.name != name:
                return Divergence(
                    handler=self._handler,
                    index=self._cursor,
                    expected=(kind, name),
                    recorded=(entry.kind, entry.name),
                )
            self._cursor += 1
            return entry
        return None

    def next_recorded(self) -> Entry | None:
        """The recorded entry the next operation will be matched against, if any."""
        if self._cursor < len(self._recorded):
            return self._recorded[self._cursor]
        return None

    def unreplayed(self) -> Divergence | None:
        """At the handler's return: a divergence if recorded steps were never replayed."""
        if self._cursor >= len(self._recorded):
            return None
        entry = self._recorded[self._cursor]
        return Divergence(
            handler=self._handler,
            index=self._cursor,
            expected=None,
            recorded=(entry.kind, entry.name),
        )

    def append(
        self,
        kind: EntryKind,
        name: str,
        *,
        value: bytes | None = None,
        failure: list[Any] | None = None,
        at: int | None = None,
        attempts: int | None = None,
    ) -> Entry:
        """Record a new entry (pending until `committed` is called); `at` (µs) and `attempts`
        are informational."""
        recorded = len(self._recorded)
        if self._cursor < recorded:
            raise RuntimeError("cannot append while recorded entries are still being replayed")
        entry = Entry(
            index=recorded + len(self._pending),
            kind=kind,
            name=name,
            value=value,
            failure=failure,
            at=at,
            attempts=attempts,
        )
        self._pending.append(entry)
        return entry

    def entries(self) -> list[Entry]:
        """Every entry, recorded and pending, in index order."""
        return [*self._recorded, *self._pending]

    @property
    def has_pending(self) -> bool:
        """Whether entries await the next durable point."""
        return bool(self._pending)

    def take_pending(self) -> list[Entry]:
        """The entries to commit at this durable point."""
        return list(self._pending)

    def committed(self, entries: list[Entry]) -> None:
        """`entries` (from `take_pending`) are durable now."""
        count = len(entries)
        pending = self._pending
        # Entries are only ever appended, so checking the ends is enough.
        if count and (
            len(pending) < count
            or pending[0] is not entries[0]
            or pending[count - 1] is not entries[-1]
        ):
            raise RuntimeError("committed entries are not the pending ones")
        self._recorded.extend(entries)
        del pending[:count]
        self._cursor = len(self._recorded)
