"""Invocation records: what the `invocations` table stores for each durable invocation."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

from ._clock import from_micros
from ._errors import TerminalError
from ._layout import ActorId, InvocationId

RECORD_VERSION = 1


class InvocationStatus(enum.Enum):
    """Where an invocation is in its lifecycle."""

    SCHEDULED = "scheduled"
    """Durably accepted with a delay: joins its key's mailbox when it is due."""
    INBOX = "inbox"
    """Durably accepted, waiting for its turn."""
    RUNNING = "running"
    """A handler attempt is executing (only seen in memory and in listings)."""
    BACKING_OFF = "backing_off"
    """An attempt failed with a retryable error; the next attempt is scheduled."""
    SUSPENDED = "suspended"
    """Waiting on a timer, promise, awakeable or call reply, out of memory: it resumes by
    replay when that completes. Holds its key meanwhile (exclusive and workflow runs)."""
    PAUSED = "paused"
    """All attempts failed; waiting for `resume` or `kill`. Blocks its key's mailbox."""
    COMPLETED = "completed"
    """Finished with a result or a terminal error (kept for the retention period)."""
    KILLED = "killed"
    """Stopped by an operator without completing."""

    @property
    def finished(self) -> bool:
        """True once the invocation will never run again."""
        return self in (InvocationStatus.COMPLETED, InvocationStatus.KILLED)


@attrs.frozen(kw_only=True)
class Failure:
    """A terminal failure, as stored and as reported to callers."""

    error_type: str
    message: str
    code: int = 500

    @classmethod
    def of(cls, error: TerminalError) -> Failure:
        """The failure a `TerminalError` describes."""
        return cls(error_type=error.error_type, message=error.message, code=error.code)

    def to_wire(self) -> list[Any]:
        """The stored form."""
        return [self.error_type, self.message, self.code]

    @classmethod
    def from_wire(cls, row: list[Any]) -> Failure:
        """Inverse of `to_wire`."""
        return cls(error_type=row[0], message=row[1], code=row[2])


@attrs.frozen(kw_only=True)
class InvocationRecord:
    """The durable record of one invocation. Times are µs since the Unix epoch."""

    id: InvocationId
    actor: ActorId
    handler: str
    args: bytes
    """The codec-encoded argument list."""
    status: InvocationStatus
    created_at: int
    modified_at: int
    inbox_seq: int | None = None
    """The sequence number of its `inbox` entry while it has one."""
    attempts: int = 0
    last_error: str | None = None
    next_retry_at: int | None = None
    idempotency_key: str | None = None
    result: bytes | None = None
    """The codec-encoded result once completed successfully."""
    failure: Failure | None = None
    expires_at: int | None = None
    """When a finished record is deleted (µs); None while unfinished or if not retained."""
    not_before: int | None = None
    """For a delayed send: when it is due (µs since the epoch)."""
    reply_to: bytes | None = None
    """For a `ctx.call`: the slot (caller id + journal index) its outcome is delivered to."""
    chain: tuple[str, ...] = ()
    """The actors (``Type/key``) whose exclusive invocations wait on this one, outermost
    first: a call into one of them would deadlock."""
    cancel_requested: bool = False
    """`Node.cancel` asked for it and the handler may not have reacted yet."""
    pause_requested: bool = False
    """`Node.pause` asked for it and it may not have paused yet."""

    def to_wire(self) -> dict[str, Any]:
        """The stored form: a map of builtins (fast to encode, versioned)."""
        return {
            "v": RECORD_VERSION,
            "type": self.actor.type,
            "key": self.actor.key,
            "handler": self.handler,
            "args": self.args,
            "status": self.status.value,
            "created": self.created_at,
            "modified": self.modified_at,
            "seq": self.inbox_seq,
            "attempts": self.attempts,
            "error": self.last_error,
            "retry_at": self.next_retry_at,
            "idem": self.idempotency_key,
            "result": self.result,
            "failure": None if self.failure is None else self.failure.to_wire(),
            "expires": self.expires_at,
            "reply": self.reply_to,
            "due": self.not_before,
            "chain": list(self.chain),
            "cancel": self.cancel_requested,
            "pause": self.pause_requested,
        }

    @classmethod
    def from_wire(cls, invocation_id: InvocationId, row: dict[str, Any]) -> InvocationRecord:
        """Inverse of `to_wire`."""
        if row.get("v") != RECORD_VERSION:
            raise ValueError(f"unknown invocation record version {row.get('v')!r}")
        failure = row["failure"]
        return cls(
            id=invocation_id,
            actor=ActorId(type=row["type"], key=row["key"]),
            handler=row["handler"],
            args=row["args"],
            status=InvocationStatus(row["status"]),
            created_at=row["created"],
            modified_at=row["modified"],
            inbox_seq=row["seq"],
            attempts=row["attempts"],
            last_error=row["error"],
            next_retry_at=row["retry_at"],
            idempotency_key=row["idem"],
            result=row["result"],
            failure=None if failure is None else Failure.from_wire(failure),
            expires_at=row["expires"],
            reply_to=row.get("reply"),
            not_before=row.get("due"),
            chain=tuple(row.get("chain") or ()),
            cancel_requested=bool(row.get("cancel")),
            pause_requested=bool(row.get("pause")),
        )

    @property
    def created(self) -> datetime:
        """Creation time as an aware datetime."""
        return from_micros(self.created_at)

    @property
    def modified(self) -> datetime:
        """Last modification time as an aware datetime."""
        return from_micros(self.modified_at)
