"""An invocation in memory, from admission until it finishes (the runtime's mutable view of
an `InvocationRecord`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ._layout import ActorId, InvocationId
from ._records import Failure, InvocationRecord, InvocationStatus
from ._registry import HandlerDef

if TYPE_CHECKING:
    from ._execution import Execution


class Invocation:
    """An invocation in memory, from admission until it finishes.

    A plain mutable object: the hot path changes fields in place and builds an
    `InvocationRecord` only when it writes one (a durable point) or when asked for one.
    """

    __slots__ = (
        "_event",
        "actor",
        "args",
        "attempts",
        "cancel_requested",
        "chain",
        "created_at",
        "durable",
        "error",
        "executing",
        "execution",
        "expires_at",
        "failure",
        "hdef",
        "id",
        "idempotency_key",
        "idempotency_table_key",
        "inbox_seq",
        "kill_requested",
        "last_error",
        "modified_at",
        "next_retry_at",
        "not_before",
        "pause_requested",
        "reply_to",
        "result",
        "scope",
        "settled",
        "status",
        "waiting",
        "waiting_outside",
        "wake_at",
    )

    def __init__(
        self,
        *,
        id: InvocationId,
        actor: ActorId,
        hdef: HandlerDef,
        args: bytes,
        created_at: int,
        idempotency_key: str | None,
    ) -> None:
        self.id = id
        self.actor = actor
        self.hdef = hdef
        self.args = args
        self.status = InvocationStatus.INBOX
        self.attempts = 0
        self.created_at = created_at
        self.modified_at = created_at
        self.idempotency_key = idempotency_key
        self.idempotency_table_key: bytes | None = (
            None if idempotency_key is None else actor.idempotency_key(hdef.name, idempotency_key)
        )
        """The `idempotency` table key of this invocation's idempotency key, if it has one."""
        self.inbox_seq: int | None = None
        self.last_error: str | None = None
        self.next_retry_at: int | None = None
        self.result: bytes | None = None
        self.failure: Failure | None = None
        self.expires_at: int | None = None
        self.reply_to: bytes | None = None
        self.not_before: int | None = None
        self.wake_at: int | None = None
        self.chain: tuple[str, ...] = ()
        self.cancel_requested = False
        self.pause_requested = False
        self.waiting = False
        self.waiting_outside: tuple[str, bytes] | None = None
        """The slot (table, key) it waits for in memory with no deadline (a promise, an
        awakeable or a call reply): until that slot is filled, `Node.wait_idle` counts it as
        idle."""
        self.execution: Execution | None = None
        self.durable = False
        self.error: Exception | None = None
        self.scope: trio.CancelScope | None = None
        self.kill_requested = False
        self.executing = False
        self.settled = False
        self._event: trio.Event | None = None

    @classmethod
    def from_record(cls, record: InvocationRecord, hdef: HandlerDef) -> Invocation:
        inv = cls(
            id=record.id,
            actor=record.actor,
            hdef=hdef,
            args=record.args,
            created_at=record.created_at,
            idempotency_key=record.idempotency_key,
        )
        inv.status = record.status
        inv.attempts = record.attempts
        inv.modified_at = record.modified_at
        inv.inbox_seq = record.inbox_seq
        inv.last_error = record.last_error
        inv.next_retry_at = record.next_retry_at
        inv.result = record.result
        inv.failure = record.failure
        inv.expires_at = record.expires_at
        inv.reply_to = record.reply_to
        inv.not_before = record.not_before
        inv.chain = record.chain
        inv.cancel_requested = record.cancel_requested
        inv.pause_requested = record.pause_requested
        inv.durable = True
        return inv

    def record(self) -> InvocationRecord:
        """A snapshot of this invocation as a stored record."""
        return InvocationRecord(
            id=self.id,
            actor=self.actor,
            handler=self.hdef.name,
            args=self.args,
            status=self.status,
            created_at=self.created_at,
            modified_at=self.modified_at,
            inbox_seq=self.inbox_seq,
            attempts=self.attempts,
            last_error=self.last_error,
            next_retry_at=self.next_retry_at,
            idempotency_key=self.idempotency_key,
            result=self.result,
            failure=self.failure,
            expires_at=self.expires_at,
            reply_to=self.reply_to,
            not_before=self.not_before,
            chain=self.chain,
            cancel_requested=self.cancel_requested,
            pause_requested=self.pause_requested,
        )

    @property
    def key(self) -> InvocationId:
        return self.id

    def killed(self) -> bool:
        """Whether a kill was requested (a method, so checks after an await are not
        narrowed away by the type checker)."""
        return self.kill_requested

    def settle(self) -> None:
        """Wake everyone waiting for the current outcome (paused, finished or failed)."""
        self.settled = True
        if self._event is not None:
            self._event.set()

    def reopen(self) -> None:
        """Start a new waiting period (after a paused invocation is resumed)."""
        self.settled = False
        self._event = None

    async def wait(self) -> None:
        # The event is created only when somebody actually waits: a call that runs its own
        # invocation never needs one.
        if not self.settled:
            if self._event is None:
                self._event = trio.Event()
            await self._event.wait()

    def __repr__(self) -> str:
        return f"<invocation {self.id} {self.hdef.qualified_name} on {self.actor}>"
