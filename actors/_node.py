"""The embedded node: admission, per-key mailboxes, execution with retries, durable completion,
recovery at start-up, retention sweeps and lifecycle operations.

The call path is one durable commit: the state changes, the inbox removal and the invocation
record of a finished invocation go into a single batch, merged with other actors' batches by
the store's group commit (DESIGN §4, "The hot path").
"""

from __future__ import annotations

import functools
import heapq
import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar, TypeVarTuple, overload

import attrs
import trio

from storage import (
    Batch,
    BatchConflict,
    Codec,
    CodecError,
    StorageError,
    Store,
)

from . import _reads
from ._clock import WallClock, to_micros
from ._context import (
    ObjectContext,
    ServiceContext,
    SharedContext,
    WorkflowContext,
    WorkflowSharedContext,
    _AnyKeyedContext,
    _Services,
    pack_outcome,
)
from ._definitions import ActorKind, HandlerKind
from ._errors import (
    CallAbandoned,
    InvalidArguments,
    InvocationKilled,
    InvocationPaused,
    InvocationTimeout,
    NodeClosed,
    NonDeterministicHandler,
    TerminalError,
    UnknownHandler,
    UnknownInvocation,
    UsageError,
)
from ._execution import (
    Diverged,
    Execution,
    Killed,
    PauseRequested,
    Replay,
    Suspend,
)
from ._invocation import Invocation
from ._journal import JournalEntry
from ._layout import (
    EXPIRY,
    IDEMPOTENCY,
    INBOX,
    INVOCATIONS,
    JOURNAL,
    MAX_IDEMPOTENCY_KEY_BYTES,
    META,
    PROMISES,
    SLOTS,
    ActorId,
    InvocationId,
    actor_id,
    parse_slot_id,
    prefix_end,
    validate_key,
)
from ._mailbox import Mailbox
from ._observe import Counters, Observation, observe, outcome_of
from ._options import NodeOptions
from ._records import Failure, InvocationRecord, InvocationStatus
from ._registry import HandlerDef, Registry

R = TypeVar("R")
Ts = TypeVarTuple("Ts")

_log = logging.getLogger("actors")

_WORKFLOW_RUN = "workflow-run"
"""The idempotency key of a workflow's run: one run per workflow key."""
_SWEEP_BATCH = 1000
_OPENS = b"opens"


@attrs.frozen(kw_only=True)
class NodeStatistics:
    """A snapshot of a node's counters."""

    active_actors: int
    """Keys with a mailbox in memory (queued, running or paused work)."""
    invocations_in_memory: int
    """Invocations accepted and not yet finished."""
    commits: int
    """Durable LMDB commits so far."""
    batches: int
    """Batches committed (several share a commit under group commit)."""
    map_grows: int
    """Times the LMDB map was grown."""


def _terminal_failure(exc: BaseException) -> Failure:
    if isinstance(exc, TerminalError):
        return Failure.of(exc)
    return Failure(error_type=type(exc).__name__, message=str(exc), code=500)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _log_extra(inv: Invocation) -> dict[str, str]:
    """The fields a log record about `inv` carries (see `actors._logging`)."""
    return {"invocation_id": str(inv.id), "actor": str(inv.actor), "handler": inv.hdef.name}


class Node:
    """A running node. Get one from `actors.open_node`; do not construct it directly."""

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        codec: Codec,
        options: NodeOptions,
        clock: WallClock,
        nursery: trio.Nursery,
    ) -> None:
        self._store = store
        self._registry = registry
        self._codec = codec
        self._options = options
        self._clock = clock
        self._nursery = nursery
        self._rng = random.Random(options.seed)  # reseeded by `_start` with the open count
        self._services = _Services(
            codec=codec,
            reader=store,
            clock=clock,
            sender=self._prepare_send,
            deadlock=self._deadlock,
        )
        # The engine interface of `Execution` (actors/_execution.py). Plain attributes rather
        # than methods: they are called at every durable step, and each layer costs.
        fast_now = getattr(clock, "now_micros", None)
        self.now_us: Callable[[], int] = (
            fast_now if callable(fast_now) else (lambda: to_micros(clock.now()))
        )
        """Durable time now, in µs since the epoch."""
        self.new_batch: Callable[[], Batch] = functools.partial(
            Batch, max_value_size=options.max_value_size + 4096
        )
        """An empty batch with this node's size limits."""
        self.commit: Callable[[Batch], Awaitable[None]] = store.commit
        """Commit a durable point that makes nothing else durable (see `commit_point`)."""
        self._mailboxes: dict[ActorId, Mailbox[Invocation]] = {}
        self._invocations: dict[InvocationId, Invocation] = {}
        self._by_idempotency: dict[bytes, Invocation] = {}
        self._next_seq = 0
        self._idle = trio.Event()
        self._idle.set()
        self._idle_wanted = False
        self._idle_horizon: int | None = None
        self._sweep_wakeup = trio.Event()
        self._closed = False
        self._slot_events: dict[tuple[str, bytes], trio.Event] = {}
        self._timers: list[tuple[int, bytes, Invocation]] = []
        self._slot_waiters: dict[tuple[str, bytes], list[Invocation]] = {}
        self._timer_wakeup = trio.Event()
        self._counters = Counters()
        self._callees: dict[InvocationId, set[Invocation]] = {}
        """Unfinished invocations called through `ctx.call`, by the id of their caller."""

    # ----------------------------------------------------------------------------- public API

    @property
    def codec(self) -> Codec:
        """The codec this node encodes arguments, results and state with."""
        return self._codec

    @overload
    async def call(
        self,
        handler: Callable[[Any, ServiceContext, *Ts], Awaitable[R]],
        /,
        *args: *Ts,
        idempotency_key: str | None = None,
    ) -> R: ...
    @overload
    async def call(
        self,
        handler: Callable[[Any, _AnyKeyedContext, *Ts], Awaitable[R]],
        key: str,
        /,
        *args: *Ts,
        idempotency_key: str | None = None,
    ) -> R: ...
    async def call(  # type: ignore[misc]  # mypy cannot match *Ts overloads to *Any
        self,
        handler: Callable[..., Awaitable[Any]],
        /,
        *args: Any,
        idempotency_key: str | None = None,
    ) -> Any:
        """Invoke a handler and wait for its result.

        ``await node.call(Cart.add_item, "alice", "apple")`` for a virtual object (the key comes
        first), ``await node.call(Greeter.greet, "bob")`` for a service. The invocation becomes
        durable at its first durable point: for a short handler, its completion, committed in
        one transaction with its state changes. The handler runs in the caller's task when its
        key is free: a caller cancelled before the first durable point cancels the call (it
        took no effect); after it, the invocation goes on in the background (`attach` to it).

        Args:
            handler: the handler function, e.g. ``Cart.add_item``.
            args: the key (virtual objects), then the handler's arguments.
            idempotency_key: calls with the same key (for the same actor and handler) run once
                and return the same result while the record is retained.

        Returns:
            The handler's return value (a decoded copy).

        Raises:
            UnknownHandler, InvalidKey, InvalidArguments, UnsupportedType, PayloadTooLarge:
                the request was refused before anything ran.
            TerminalError: the handler failed terminally.
            InvocationPaused: every retry failed; the invocation is paused (resumable).
            InvocationKilled: an operator killed the invocation.
            StorageError: the result could not be committed (nothing took effect).
        """
        if self._registry.handler_for(handler).kind is HandlerKind.RUN:
            # A workflow run executes once per key: calling it starts it (or attaches).
            inv, new = await self._admit(handler, args, _WORKFLOW_RUN, durable=True)
            if new:
                self._dispatch(inv)
            return await self._outcome(inv)
        inv, new = await self._admit(handler, args, idempotency_key, durable=False)
        if new:
            await self._run_in_caller(inv)
        return await self._outcome(inv)

    @overload
    async def send(
        self,
        handler: Callable[[Any, ServiceContext, *Ts], Awaitable[Any]],
        /,
        *args: *Ts,
        idempotency_key: str | None = None,
        delay: timedelta | None = None,
    ) -> str: ...
    @overload
    async def send(
        self,
        handler: Callable[[Any, _AnyKeyedContext, *Ts], Awaitable[Any]],
        key: str,
        /,
        *args: *Ts,
        idempotency_key: str | None = None,
        delay: timedelta | None = None,
    ) -> str: ...
    async def send(  # type: ignore[misc]  # mypy cannot match *Ts overloads to *Any
        self,
        handler: Callable[..., Awaitable[Any]],
        /,
        *args: Any,
        idempotency_key: str | None = None,
        delay: timedelta | None = None,
    ) -> str:
        """Durably enqueue an invocation and return its id without waiting for it to run.

        Returns only once the invocation is committed to the inbox: a crash after that never
        loses it. Use `attach` to wait for its result later.

        Args:
            handler: the handler function, e.g. ``Cart.checkout``.
            args: the key (virtual objects), then the handler's arguments.
            idempotency_key: a repeated send with the same key returns the first invocation's id.
            delay: run it no earlier than this from now (durable: it survives restarts; it
                joins its key's mailbox only when due, so it holds nothing meanwhile).

        Returns:
            The invocation id (``inv_...``).

        Raises:
            UnknownHandler, InvalidKey, InvalidArguments, UnsupportedType, PayloadTooLarge:
                refused before anything was enqueued.
            StorageFull, StorageError: the enqueue could not be committed.
        """
        if self._registry.handler_for(handler).kind is HandlerKind.RUN:
            idempotency_key = _WORKFLOW_RUN  # sending a workflow run starts it, once
        inv, new = await self._admit(handler, args, idempotency_key, durable=True, delay=delay)
        if new:
            self._dispatch(inv)
        return str(inv.id)

    async def start(
        self,
        handler: Callable[[Any, WorkflowContext, *Ts], Awaitable[Any]],
        key: str,
        /,
        *args: *Ts,
    ) -> str:
        """Start a workflow's run for `key`, once: a later `start` for the same key returns the
        same invocation (while its record is retained: `NodeOptions.idempotency_retention`
        after it finishes), whatever its arguments.

        Returns:
            The run's invocation id; `attach` to it for the result.

        Raises:
            UnknownHandler: `handler` is not a workflow's `@actors.run` handler.
            InvalidKey, InvalidArguments, UnsupportedType, PayloadTooLarge: refused.
        """
        hdef = self._registry.handler_for(handler)
        if hdef.kind is not HandlerKind.RUN:
            raise UnknownHandler(
                f"{hdef.qualified_name} is not a workflow run handler; use node.call or"
                " node.send for other handlers"
            )
        inv, new = await self._admit(handler, (key, *args), _WORKFLOW_RUN, durable=True)
        if new:
            self._dispatch(inv)
        return str(inv.id)

    async def resolve_promise(
        self, workflow: type | str, key: str, name: str, value: Any = True
    ) -> None:
        """Resolve a workflow's durable promise from outside (as a shared handler could).

        Raises:
            UsageError: the promise is already resolved or rejected.
            UnknownHandler, InvalidKey: no such workflow type or a bad key.
        """
        encoded = self._codec.encode(value)
        await self._complete_promise(workflow, key, name, pack_outcome(self._codec, value=encoded))

    async def reject_promise(
        self, workflow: type | str, key: str, name: str, message: str, *, code: int = 500
    ) -> None:
        """Reject a workflow's durable promise: its waiter gets `TerminalError(message)`."""
        failure = Failure(error_type="TerminalError", message=message, code=code)
        await self._complete_promise(
            workflow, key, name, pack_outcome(self._codec, failure=failure)
        )

    async def _complete_promise(
        self, workflow: type | str, key: str, name: str, outcome: bytes
    ) -> None:
        type_name = workflow if isinstance(workflow, str) else self._type_name(workflow)
        actor_def = self._registry.actors.get(type_name)
        if actor_def is None or actor_def.kind is not ActorKind.WORKFLOW:
            raise UnknownHandler(f"{type_name!r} is not a workflow registered on this node")
        actor = actor_id(type_name, validate_key(key))
        await self._fill_slot(
            PROMISES, actor.state_key(name), outcome, f"promise {name!r} of {actor}"
        )

    async def resolve_awakeable(self, awakeable_id: str, value: Any) -> None:
        """Complete an awakeable (`ctx.awakeable()`) with `value`.

        Raises:
            UnknownInvocation: not an awakeable id.
            UsageError: it is already completed.
        """
        key = self._awakeable_key(awakeable_id)
        outcome = pack_outcome(self._codec, value=self._codec.encode(value))
        await self._fill_slot(SLOTS, key, outcome, f"awakeable {awakeable_id}")

    def _awakeable_key(self, awakeable_id: str) -> bytes:
        key = parse_slot_id(awakeable_id)
        owner = InvocationId(key[:20])
        if owner not in self._invocations:
            raise UnknownInvocation(
                f"awakeable {awakeable_id} belongs to invocation {owner}, which is not running"
                " on this node (it finished, was killed, or never existed)"
            )
        return key

    async def reject_awakeable(self, awakeable_id: str, message: str, *, code: int = 500) -> None:
        """Fail an awakeable: its waiter gets `TerminalError(message)`."""
        key = self._awakeable_key(awakeable_id)
        failure = Failure(error_type="TerminalError", message=message, code=code)
        await self._fill_slot(
            SLOTS, key, pack_outcome(self._codec, failure=failure), f"awakeable {awakeable_id}"
        )

    async def attach(self, invocation_id: str) -> Any:
        """Wait for an invocation's result (by the id `send` returned).

        Raises:
            UnknownInvocation: no such invocation, or its record was not retained.
            TerminalError, InvocationPaused, InvocationKilled: as for `call`.
        """
        inv_id = InvocationId.parse(invocation_id)
        inv = self._invocations.get(inv_id)
        if inv is not None:
            return await self._outcome(inv)
        return self._stored_outcome(self._load_record(inv_id))

    def get_invocation(self, invocation_id: str) -> InvocationRecord:
        """The current record of an invocation.

        Raises:
            UnknownInvocation: no such invocation, or its record was not retained.
        """
        inv_id = InvocationId.parse(invocation_id)
        inv = self._invocations.get(inv_id)
        if inv is not None:
            return inv.record()
        return self._load_record(inv_id)

    def get_journal(self, invocation_id: str) -> list[JournalEntry]:
        """The committed journal of an invocation: while it runs, and after it completed for
        as long as its record is retained (`NodeOptions.completed_retention`,
        `idempotency_retention`).

        Raises:
            UnknownInvocation: not an invocation id.
        """
        return _reads.read_journal(self._store, self._codec, InvocationId.parse(invocation_id))

    def handler(self, type_name: str, handler_name: str) -> Callable[..., Awaitable[Any]]:
        """The handler function registered under these names, for callers that only have
        names (the HTTP ingress, the command line): ``node.handler("Cart", "add_item")``.

        Raises:
            UnknownHandler: no such actor type or handler (the message lists what exists).
        """
        return self._registry.lookup(type_name, handler_name).function

    def _handler_def(self, type_name: str, handler_name: str) -> HandlerDef:
        """The registered definition behind `handler` (its parameters and their resolved
        annotations), for the node's own HTTP layer."""
        return self._registry.lookup(type_name, handler_name)

    def describe(self) -> dict[str, dict[str, Any]]:
        """The hosted actor types: ``{type: {"kind": ..., "handlers": {name: kind}}}``."""
        return {
            name: {
                "kind": actor.kind.value,
                "handlers": {h.name: h.kind.value for h in actor.handlers.values()},
            }
            for name, actor in sorted(self._registry.actors.items())
        }

    def list_invocations(
        self,
        *,
        status: InvocationStatus | None = None,
        actor_type: str | None = None,
        key: str | None = None,
        handler: str | None = None,
        limit: int | None = None,
    ) -> list[InvocationRecord]:
        """Invocations in memory and retained in storage, optionally filtered (by status,
        actor type, actor key, handler name), newest first, at most `limit` of them."""
        found = _reads.stored_records(self._store, self._codec)
        for inv in self._invocations.values():
            found[inv.id] = inv.record()
        return _reads.select_records(
            found.values(),
            status=status,
            actor_type=actor_type,
            key=key,
            handler=handler,
            limit=limit,
        )

    def get_state(self, actor: type | str, key: str) -> dict[str, Any]:
        """The committed state of one virtual object, decoded (for tools and tests).

        Raises:
            UnknownHandler: the actor type is not registered on this node.
            InvalidKey: the key is not valid.
        """
        name = actor if isinstance(actor, str) else self._type_name(actor)
        actor_id = ActorId(type=name, key=validate_key(key))
        return _reads.read_state(self._store, self._codec, actor_id)

    async def resume(self, invocation_id: str) -> None:
        """Give a paused invocation a fresh round of attempts.

        Raises:
            UnknownInvocation: no such invocation in memory.
            UsageError: the invocation is not paused.
        """
        inv = self._live(invocation_id)
        if inv.status is not InvocationStatus.PAUSED:
            raise UsageError(f"invocation {invocation_id} is {inv.status.value}, not paused")
        _log.info("invocation %s resumed by an operator", inv.id, extra=_log_extra(inv))
        inv.status = InvocationStatus.INBOX
        inv.attempts = 0
        inv.last_error = None
        inv.pause_requested = False
        await self._write_record(inv)
        self._busy()
        inv.reopen()
        mailbox = self._mailboxes.get(inv.actor)
        if inv.hdef.holds_key and mailbox is not None:
            if mailbox.resume():
                self._nursery.start_soon(self._consume, inv.actor, mailbox)
        else:
            self._nursery.start_soon(self._execute, inv)

    async def pause(self, invocation_id: str) -> None:
        """Pause an invocation until `resume`: durably, keeping its key (like an invocation
        that used up its retries). A running handler is paused at its next durable step or
        wait, and resumes by replay; a queued or scheduled one is paused when its turn comes.

        Raises:
            UnknownInvocation: no such invocation in memory.
            UsageError: it is already paused.
        """
        inv = self._live(invocation_id)
        if inv.status is InvocationStatus.PAUSED or inv.pause_requested:
            raise UsageError(f"invocation {invocation_id} is already paused")
        inv.pause_requested = True
        _log.info("invocation %s paused by an operator", inv.id, extra=_log_extra(inv))
        if inv.status is InvocationStatus.SUSPENDED:
            await self._pause_now(inv)
            return
        await self._persist_request(inv)
        if inv.executing and inv.waiting and inv.scope is not None:
            inv.scope.cancel()

    async def _pause_now(self, inv: Invocation) -> None:
        inv.status = InvocationStatus.PAUSED
        inv.next_retry_at = None
        inv.last_error = inv.last_error or "paused by an operator"
        try:
            await self._write_record(inv)
        except StorageError as exc:
            _log.error("could not record the pause of %s: %s", inv.id, exc, extra=_log_extra(inv))
        inv.settle()
        self._check_idle()

    async def kill(self, invocation_id: str) -> None:
        """Stop an invocation without running any more of its handler code.

        Its uncommitted state changes are discarded; the key's mailbox moves on.

        Raises:
            UnknownInvocation: no such invocation in memory (it may have finished already).
        """
        inv = self._live(invocation_id)
        if inv.kill_requested:
            return
        inv.kill_requested = True
        _log.warning("invocation %s killed by an operator", inv.id, extra=_log_extra(inv))
        if inv.executing:
            # The task running it finalizes the kill: right away if it is in an attempt or a
            # backoff wait, else at its next check.
            if inv.scope is not None:
                inv.scope.cancel()
            return
        mailbox = self._mailboxes.get(inv.actor)
        if mailbox is not None and mailbox.remove(inv.key):
            self._nursery.start_soon(self._consume, inv.actor, mailbox)
        await self._finish_killed(inv)
        if mailbox is not None and mailbox.idle and self._mailboxes.get(inv.actor) is mailbox:
            del self._mailboxes[inv.actor]

    async def cancel(self, invocation_id: str) -> None:
        """Cancel an invocation cooperatively.

        A running handler gets `InvocationCancelled` (a `TerminalError`) at its next durable
        step or wait, so its `except`/`finally` compensation runs; the invocations it is
        waiting on through `ctx.call` are cancelled too. A queued, scheduled or paused
        invocation completes at once with that error, without running.

        Raises:
            UnknownInvocation: no such invocation in memory (it may have finished already).
        """
        inv = self._live(invocation_id)
        if inv.cancel_requested:
            return
        inv.cancel_requested = True
        _log.info("invocation %s cancelled by an operator", inv.id, extra=_log_extra(inv))
        if (
            inv.executing
            or inv.status is InvocationStatus.SUSPENDED
            or (inv.status is not InvocationStatus.PAUSED and self._started(inv))
        ):
            # The handler gets the cancellation at its wait (a suspended one by replay, once
            # woken), so its compensation runs; the invocations it waits on are cancelled too.
            # The request is stored first, so that a restart before the handler reacts still
            # delivers it (recovery also cancels the calls again, see `_cancel_calls`).
            await self._persist_request(inv)
            if inv.waiting and inv.scope is not None:
                inv.scope.cancel()
            self._wake(inv)
            await self._cancel_calls(inv)
            return
        mailbox = self._mailboxes.get(inv.actor)
        if mailbox is not None and mailbox.remove(inv.key):
            self._nursery.start_soon(self._consume, inv.actor, mailbox)
        failure = Failure(
            error_type="InvocationCancelled",
            message=f"invocation {inv.id} was cancelled before it ran",
            code=409,
        )
        batch = self.new_batch()
        self._retire(batch, inv, InvocationStatus.COMPLETED, failure=failure)
        if batch:
            await self._store.commit(batch)
        self._forget(inv)
        if mailbox is not None and mailbox.idle and self._mailboxes.get(inv.actor) is mailbox:
            del self._mailboxes[inv.actor]

    def _started(self, inv: Invocation) -> bool:
        """Whether `inv` has committed journal entries (an attempt began before a restart or
        a retry): it must take the cancellation where its handler is, to compensate."""
        if not inv.durable:
            return False
        start = inv.id.raw
        return bool(self._store.scan(JOURNAL, start=start, stop=prefix_end(start), limit=1))

    async def _cancel_calls(self, inv: Invocation) -> None:
        """Cancel the invocations `inv` called and has no reply from yet."""
        execution = inv.execution or self._load_execution(inv)
        await self._cancel_all(execution.outstanding_calls())

    async def _cancel_all(self, invocation_ids: list[str]) -> None:
        for invocation_id in invocation_ids:
            try:
                await self.cancel(invocation_id)
            except UnknownInvocation:
                pass  # it finished meanwhile

    async def _persist_request(self, inv: Invocation) -> None:
        """Store a cancel or pause request in the record of a durable invocation that has not
        reacted to it yet, so that a restart delivers it. The write requires the record to be
        unchanged since it was read: a record rewritten meanwhile is read again, and one
        deleted or finished meanwhile needs nothing."""
        while inv.durable and self._invocations.get(inv.id) is inv:
            raw = self._store.get(INVOCATIONS, inv.id.raw)
            if raw is None:
                return
            record = InvocationRecord.from_wire(inv.id, self._codec.decode(raw))
            if record.status.finished:
                return
            updated = attrs.evolve(
                record,
                cancel_requested=inv.cancel_requested,
                pause_requested=inv.pause_requested,
            )
            if updated == record:
                return
            batch = self.new_batch()
            batch.require(INVOCATIONS, inv.id.raw, raw)
            batch.put(INVOCATIONS, inv.id.raw, self._codec.encode(updated.to_wire()))
            try:
                await self._store.commit(batch)
            except BatchConflict:
                continue
            return

    async def wait_idle(self, *, horizon: timedelta | None = None) -> None:
        """Wait until nothing can make progress without outside help: no invocation is
        running or runnable (paused invocations, those waiting for a promise, awakeable or
        reply, and work queued behind them on their key, do not count).

        Args:
            horizon: also count as idle what waits for a timer further away than this (a
                suspended durable sleep, a delayed send): "nothing will happen within
                `horizon`". A graceful stop uses it so that an hour-long sleep does not hold
                up the stop. None (the default): every timer is progress to wait for.
        """
        self._idle_horizon = (
            None if horizon is None else self.now_us() + horizon // timedelta(microseconds=1)
        )
        self._idle_wanted = True
        if self._idle.is_set():
            self._idle = trio.Event()  # judged again, under this horizon
        self._check_idle()
        await self._idle.wait()

    def statistics(self) -> NodeStatistics:
        """Counters of this node and its store."""
        stats = self._store.statistics()
        return NodeStatistics(
            active_actors=len(self._mailboxes),
            invocations_in_memory=len(self._invocations),
            commits=stats.commits,
            batches=stats.batches,
            map_grows=stats.map_grows,
        )

    def observation(self) -> Observation:
        """Counters and gauges for metrics (``GET /metrics``): one pass over the invocations
        and mailboxes in memory, so call it per scrape, not per request."""
        stats = self._store.statistics()
        return observe(
            self._counters,
            self._invocations.values(),
            self._mailboxes.values(),
            commits=stats.commits,
            batches=stats.batches,
            records=stats.records,
            map_size=stats.map_size,
            map_grows=stats.map_grows,
        )

    # ----------------------------------------------------------------------------- admission

    def _type_name(self, cls: type) -> str:
        for actor in self._registry.actors.values():
            if actor.cls is cls:
                return actor.name
        raise UnknownHandler(f"{cls.__qualname__} is not registered on this node")

    async def _admit(
        self,
        handler: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        idempotency_key: str | None,
        *,
        durable: bool,
        delay: timedelta | None = None,
    ) -> tuple[Invocation, bool]:
        """Validate and create an invocation (durably enqueued if `durable`).

        Returns the invocation and whether it is new (False: an earlier one with the same
        idempotency key, which the caller attaches to).
        """
        inv = self._prepare(handler, args, idempotency_key, delay)
        idem_key = inv.idempotency_table_key
        if idem_key is not None:
            existing = self._find_idempotent(idem_key)
            if existing is not None:
                return existing, False
        if idem_key is not None:
            # Registered before the first await, so a concurrent admission with the same key
            # attaches to this one instead of racing it to the store.
            self._by_idempotency[idem_key] = inv
        if durable:
            try:
                await self._make_durable(inv)
            except BaseException as exc:
                if idem_key is not None and self._by_idempotency.get(idem_key) is inv:
                    del self._by_idempotency[idem_key]
                inv.error = (
                    exc
                    if isinstance(exc, Exception)
                    else NodeClosed(f"invocation {inv.id} was not accepted; submit it again")
                )
                inv.settle()  # wake anyone who attached meanwhile
                raise
        return inv, True

    def _prepare_send(
        self,
        handler: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        delay: timedelta | None = None,
    ) -> Invocation:
        """A message sent by a handler (`ctx.send`, `ctx.call`): validated now, enqueued at
        the sender's next durable point.

        Raises:
            UsageError: the target is a workflow's run (start workflows with `node.start`:
                a run executes once per key, which a message from a handler cannot promise).
        """
        inv = self._prepare(handler, args, None, delay, admission=False)
        if inv.hdef.kind is HandlerKind.RUN:
            raise UsageError(
                f"{inv.hdef.qualified_name} is a workflow run: start it with node.start (once"
                " per key), and signal it through its shared handlers from other actors"
            )
        return inv

    def _prepare(
        self,
        handler: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        idempotency_key: str | None,
        delay: timedelta | None = None,
        *,
        admission: bool = True,
    ) -> Invocation:
        """Validate a request and build its invocation (nothing is written)."""
        if delay is not None and (not isinstance(delay, timedelta) or delay < timedelta(0)):
            raise InvalidArguments(f"delay must be a non-negative timedelta, got {delay!r}")
        if admission and self._closed:
            raise NodeClosed("the node is closed; open a new one with actors.open_node")
        hdef = self._registry.handler_for(handler)
        if hdef.actor.kind is ActorKind.SERVICE:
            actor = actor_id(hdef.actor.name, "")
        else:
            if not args:
                raise InvalidArguments(
                    f"{hdef.qualified_name} is a virtual-object handler: pass the key first,"
                    f" e.g. node.call({hdef.actor.cls.__name__}.{hdef.function.__name__}, key, ...)"
                )
            actor = actor_id(hdef.actor.name, validate_key(args[0]))
            args = args[1:]
        hdef.check_args(args)
        encoded_args = self._codec.encode(list(args))
        if idempotency_key is not None:
            self._check_idempotency_key(idempotency_key)
        inv = Invocation(
            id=InvocationId.new(actor.placement, self._rng.randbytes(12)),
            actor=actor,
            hdef=hdef,
            args=encoded_args,
            created_at=self.now_us(),
            idempotency_key=idempotency_key,
        )
        if delay:
            inv.not_before = inv.created_at + delay // timedelta(microseconds=1)
            inv.status = InvocationStatus.SCHEDULED
        return inv

    @staticmethod
    def _check_idempotency_key(key: object) -> None:
        if not isinstance(key, str) or not key:
            raise InvalidArguments(f"idempotency keys are non-empty str, got {key!r}")
        if len(key.encode()) > MAX_IDEMPOTENCY_KEY_BYTES:
            raise InvalidArguments(
                f"idempotency key is longer than {MAX_IDEMPOTENCY_KEY_BYTES} bytes; hash it"
            )

    def _find_idempotent(self, idem_key: bytes) -> Invocation | None:
        live = self._by_idempotency.get(idem_key)
        if live is not None:
            return live
        raw = self._store.get(IDEMPOTENCY, idem_key)
        if raw is None:
            return None
        inv_id = InvocationId(raw)
        live = self._invocations.get(inv_id)
        if live is not None:
            return live
        try:
            record = self._load_record(inv_id)
        except UnknownInvocation:
            return None
        finished = Invocation.from_record(
            record, self._registry.lookup(record.actor.type, record.handler)
        )
        finished.settle()
        return finished

    async def _make_durable(self, inv: Invocation) -> None:
        """Commit the inbox entry and record of `inv` (its first durable point)."""
        batch = self.new_batch()
        self.durable_rows(inv, batch)
        await self.commit_point(inv, batch, [])

    # ----------------------------------------------------------------------------- engine
    # (what an `Execution` needs from its node; see actors/_execution.py)

    def durable_rows(self, invocation: Any, batch: Batch) -> None:
        """The inbox entry and record that make `invocation` durable (committed by the
        caller; `commit_point` marks it durable once the commit lands)."""
        inv: Invocation = invocation
        if inv.inbox_seq is None:
            inv.inbox_seq = self._next_seq
            self._next_seq += 1
        batch.put(INBOX, inv.actor.inbox_key(inv.inbox_seq), inv.id.raw)
        batch.require(INVOCATIONS, inv.id.raw, None)  # ids are random; never overwrite one
        batch.put(INVOCATIONS, inv.id.raw, self._codec.encode(inv.record().to_wire()))
        idem_key = inv.idempotency_table_key
        if idem_key is not None:
            batch.require(IDEMPOTENCY, idem_key, None)
            batch.put(IDEMPOTENCY, idem_key, inv.id.raw)

    def outbox_rows(self, targets: list[Any], batch: Batch) -> None:
        """Enqueue messages sent by a handler: locally, straight into the targets' inboxes in
        the sender's transaction (exactly once)."""
        for target in targets:
            self.durable_rows(target, batch)

    async def commit_point(self, invocation: Any, batch: Batch, sent: list[Any]) -> None:
        """Commit a durable point; then `invocation` is durable and `sent` are dispatched."""
        inv: Invocation = invocation
        try:
            await self._store.commit(batch)
        except BaseException:
            if not inv.durable:
                inv.inbox_seq = None
            for target in sent:
                target.inbox_seq = None
            raise
        inv.durable = True
        self._deliver(sent)

    def slot_event(self, table: str, key: bytes) -> trio.Event:
        """An event set once `table[key]` (a promise, awakeable or call reply) is filled."""
        event = self._slot_events.get((table, key))
        if event is None:
            event = self._slot_events[(table, key)] = trio.Event()
        self._check_idle()  # the caller may now wait for the outside world
        return event

    def _notify(self, table: str, key: bytes) -> None:
        event = self._slot_events.pop((table, key), None)
        if event is not None:
            self._busy()  # an invocation waiting in memory goes on
            event.set()
        for inv in self._slot_waiters.pop((table, key), ()):
            self._wake(inv)

    async def _fill_slot(self, table: str, key: bytes, outcome: bytes, what: str) -> None:
        batch = self.new_batch()
        batch.require(table, key, None)
        batch.put(table, key, outcome)
        try:
            await self._store.commit(batch)
        except BatchConflict as exc:
            raise UsageError(f"{what} is already completed; it is completed once") from exc
        self._notify(table, key)

    def _deliver(self, sent: list[Any]) -> None:
        for target in sent:
            target.durable = True
            if not self._closed:
                self._dispatch(target)

    # ----------------------------------------------------------------------------- execution

    def _busy(self) -> None:
        if self._idle.is_set():
            self._idle = trio.Event()

    def _check_idle(self) -> None:
        # Only computed while someone waits in `wait_idle`: it is off the hot path.
        if self._idle_wanted and not self._idle.is_set() and self._quiescent():
            self._idle.set()

    def _quiescent(self) -> bool:
        # Paused invocations, and those suspended on a slot with no deadline, need outside
        # help; so does everything queued behind them on their key.
        horizon = self._idle_horizon
        stuck = {
            inv.id
            for inv in self._invocations.values()
            if inv.status is InvocationStatus.PAUSED
            or (
                inv.status is InvocationStatus.SUSPENDED
                and (inv.wake_at is None or (horizon is not None and inv.wake_at > horizon))
            )
            or (
                inv.status is InvocationStatus.SCHEDULED
                and horizon is not None
                and inv.not_before is not None
                and inv.not_before > horizon
            )
            or (inv.waiting_outside is not None and inv.waiting_outside in self._slot_events)
        }
        count = len(stuck)
        for mailbox in self._mailboxes.values():
            blocker = mailbox.blocked_by
            if blocker is not None and blocker.id in stuck:
                count += len(mailbox) - 1
            elif (running := mailbox.running) is not None and running.id in stuck:
                count += len(mailbox)
        return count == len(self._invocations)

    async def _run_in_caller(self, inv: Invocation) -> None:
        """Run a call's invocation in the caller's own task when its key is free.

        This saves a task spawn and two task switches per call. If the caller is cancelled
        (or the node stops) before the invocation is durable, it never took effect; if it is
        already durable, a background consumer takes it over.
        """
        self._invocations[inv.id] = inv
        self._busy()
        mailbox: Mailbox[Invocation] | None = None
        if inv.hdef.holds_key:
            mailbox = self._mailboxes.get(inv.actor)
            if mailbox is None:
                mailbox = self._mailboxes[inv.actor] = Mailbox()
            if not mailbox.push(inv):
                return  # queued behind other work: the key's consumer will run it
            taken = mailbox.take()
            assert taken is inv
        try:
            await self._execute(inv, inline=True)
        except BaseException:
            self._abandon(inv, mailbox)
            raise
        if inv.status is InvocationStatus.BACKING_OFF:
            # Its first attempt failed and was recorded: it is durable now, and the retries
            # belong to a background consumer (the caller keeps waiting for the outcome).
            self._abandon(inv, mailbox)
            return
        if mailbox is not None:
            if inv.status is InvocationStatus.PAUSED or inv.status is InvocationStatus.SUSPENDED:
                mailbox.pause(inv)
            else:
                mailbox.done(inv)
            self._release(inv.actor, mailbox)

    def _abandon(self, inv: Invocation, mailbox: Mailbox[Invocation] | None) -> None:
        """The task running `inv` inline is going away before `inv` finished."""
        inv.executing = False
        inv.scope = None
        if inv.durable and not self._closed:
            if inv.status is InvocationStatus.RUNNING:
                inv.status = InvocationStatus.BACKING_OFF
            if mailbox is not None:
                mailbox.requeue(inv)
            else:
                self._nursery.start_soon(self._execute, inv)
        else:
            if mailbox is not None:
                mailbox.done(inv)
            if inv.error is None:
                inv.error = CallAbandoned(
                    f"the caller running invocation {inv.id} ({inv.hdef.qualified_name}) was"
                    " cancelled before it became durable; it did not take effect"
                )
            self._forget(inv)
        if mailbox is not None:
            self._release(inv.actor, mailbox)

    def _release(self, actor: ActorId, mailbox: Mailbox[Invocation]) -> None:
        if mailbox.release():
            if not self._closed:
                self._nursery.start_soon(self._consume, actor, mailbox)
        elif mailbox.idle and self._mailboxes.get(actor) is mailbox:
            del self._mailboxes[actor]

    def _track_call(self, inv: Invocation) -> None:
        if inv.reply_to is not None:
            self._callees.setdefault(InvocationId(inv.reply_to[:20]), set()).add(inv)

    def _dispatch(self, inv: Invocation) -> None:
        self._invocations[inv.id] = inv
        self._track_call(inv)
        self._busy()
        if inv.status is InvocationStatus.SCHEDULED:
            if inv.not_before is not None and inv.not_before > self.now_us():
                heapq.heappush(self._timers, (inv.not_before, inv.id.raw, inv))
                self._timer_wakeup.set()
                return
            inv.status = InvocationStatus.INBOX
        if inv.hdef.holds_key:
            mailbox = self._mailboxes.get(inv.actor)
            if mailbox is None:
                mailbox = self._mailboxes[inv.actor] = Mailbox()
            if mailbox.push(inv):
                self._nursery.start_soon(self._consume, inv.actor, mailbox)
        else:
            self._nursery.start_soon(self._execute, inv)

    def _deadlock(self, caller: Any, target: Any) -> str | None:
        """The waits-for cycle that `caller` would close by waiting on `target`, as a path of
        actors, or None.

        An invocation waits for the invocations it called, and one queued behind the
        holder of its key (the invocation running there, or suspended or paused at its
        head) waits for that holder. The call closes a cycle if, from `target`, those waits
        lead back to `caller`. This sees cycles between independent chains of calls (an
        invocation on `x` calls `y` while one on `y`, started elsewhere, calls `x`), which the
        chain carried by each call cannot.
        """
        if not target.hdef.holds_key:
            return None  # a shared handler or a service does not queue behind anyone
        parents: dict[int, Invocation | None] = {}
        stack: list[tuple[Invocation, Invocation | None]] = []
        mailbox = self._mailboxes.get(target.actor)
        holder = None if mailbox is None else (mailbox.running or mailbox.blocked_by)
        if holder is None:
            return None
        stack.append((holder, None))
        while stack:
            inv, parent = stack.pop()
            if id(inv) in parents:
                continue
            parents[id(inv)] = parent
            if inv is caller:
                back: list[Invocation] = []
                step = parent
                while step is not None:
                    back.append(step)
                    step = parents[id(step)]
                names: list[str] = []
                for waiting in (caller, target, *reversed(back), caller):
                    if not names or names[-1] != str(waiting.actor):
                        names.append(str(waiting.actor))
                return " -> ".join(names)
            stack.extend((callee, inv) for callee in self._callees.get(inv.id, ()))
            if inv.hdef.holds_key:
                box = self._mailboxes.get(inv.actor)
                head = None if box is None else (box.running or box.blocked_by)
                if head is not None and head is not inv:
                    stack.append((head, inv))  # queued behind the holder of its key
        return None

    def _suspend(self, inv: Invocation, suspend: Suspend) -> None:
        """Take a waiting invocation out of memory until its timer or slot wakes it."""
        inv.status = InvocationStatus.SUSPENDED
        inv.execution = None
        inv.wake_at = suspend.wake_at
        if suspend.wake_at is not None:
            heapq.heappush(self._timers, (suspend.wake_at, inv.id.raw, inv))
            self._timer_wakeup.set()
        self._counters.suspended()
        if suspend.slot is not None:
            self._slot_waiters.setdefault(suspend.slot, []).append(inv)
            if self._store.get(*suspend.slot) is not None:
                self._notify(*suspend.slot)  # filled while it was unwinding
        self._check_idle()

    def _wake(self, inv: Invocation) -> None:
        """Resume a suspended invocation (by replay) in a task of its own."""
        if inv.status is not InvocationStatus.SUSPENDED or inv.id not in self._invocations:
            return  # woken already (a timer and a slot can both fire), or finished
        inv.status = InvocationStatus.RUNNING
        self._busy()
        mailbox = self._mailboxes.get(inv.actor) if inv.hdef.holds_key else None
        if mailbox is not None and mailbox.blocked_by is inv:
            if mailbox.resume():
                self._nursery.start_soon(self._consume, inv.actor, mailbox)
        else:
            self._nursery.start_soon(self._execute, inv)

    async def _consume(self, actor: ActorId, mailbox: Mailbox[Invocation]) -> None:
        """The single consumer of one key's mailbox; exits (deactivates) when it drains."""
        while (inv := mailbox.take()) is not None:
            await self._execute(inv)
            if inv.status is InvocationStatus.PAUSED or inv.status is InvocationStatus.SUSPENDED:
                mailbox.pause(inv)
            else:
                mailbox.done(inv)
        if mailbox.idle and self._mailboxes.get(actor) is mailbox:
            del self._mailboxes[actor]

    async def _execute(self, inv: Invocation, *, inline: bool = False) -> None:
        """Run attempts until the invocation completes, pauses or is killed.

        With `inline` (a call running in its caller's task) only the first attempt runs here,
        without a cancel scope of its own; after a recorded failure it returns with the
        invocation BACKING_OFF for a background consumer to retry.
        """
        if inv.status.finished:
            return  # killed while it waited for its task to start
        inv.executing = True
        try:
            await self._attempts(inv, inline)
        finally:
            inv.executing = False

    async def _attempts(self, inv: Invocation, inline: bool) -> None:
        policy = self._options.retry_policy
        while True:
            if inv.kill_requested:
                await self._finish_killed(inv)
                return
            if inv.pause_requested:
                await self._pause_now(inv)
                return
            if inv.next_retry_at is not None:
                wait = (inv.next_retry_at - self.now_us()) / 1e6
                if wait > 0:
                    with trio.CancelScope() as inv.scope:
                        inv.waiting = True
                        try:
                            await trio.sleep(wait)
                        finally:
                            inv.waiting = False
                    inv.scope = None
                    if inv.killed() or inv.pause_requested:
                        continue
            inv.status = InvocationStatus.RUNNING
            inv.attempts += 1
            ctx, result, failure, error = await self._attempt(inv, scoped=not inline)
            if inv.killed():
                continue
            if isinstance(error, Replay):
                inv.attempts -= 1  # always-replay mode: not a failure, just re-execute
                continue
            if isinstance(error, PauseRequested):
                inv.attempts -= 1
                await self._pause_now(inv)
                return
            if isinstance(error, Suspend):
                inv.attempts -= 1  # not a failure: it resumes by replay when woken
                self._suspend(inv, error)
                return
            if isinstance(error, Diverged):
                # Re-executing cannot help: pause for an operator (or a compatible deploy).
                await self._failed_attempt(inv, NonDeterministicHandler(str(error)), None)
                return
            if error is None:
                try:
                    await self._complete(inv, ctx, result, failure)
                    return
                except (StorageError, CodecError) as exc:
                    if not inv.durable:
                        # Nothing was committed: the caller gets a definite failure.
                        inv.error = exc
                        self._forget(inv)
                        return
                    error = exc
            await self._failed_attempt(inv, error, policy.next_delay(inv.attempts))
            if inv.status is InvocationStatus.PAUSED or inline:
                return

    async def _attempt(
        self, inv: Invocation, *, scoped: bool
    ) -> tuple[ServiceContext | SharedContext, bytes | None, Failure | None, BaseException | None]:
        """One attempt: returns (ctx, encoded result, terminal failure, retryable error).

        A background attempt runs in a cancel scope that `kill` (and `attempt_timeout`) can
        cancel. An inline first attempt skips the scope when there is no timeout (it costs
        several µs per call); killing it then takes effect when the attempt returns, and its
        caller's own cancel scope bounds it.
        """
        hdef = inv.hdef
        ctx: ServiceContext | SharedContext
        if hdef.kind is HandlerKind.SHARED:
            shared_type = (
                WorkflowSharedContext if hdef.actor.kind is ActorKind.WORKFLOW else SharedContext
            )
            ctx = shared_type(self._services, inv.id, hdef.qualified_name, inv.actor)
        else:
            keyed = hdef.holds_key
            execution = inv.execution = self._load_execution(inv)
            if keyed:
                object_type = WorkflowContext if hdef.kind is HandlerKind.RUN else ObjectContext
                ctx = object_type(self._services, inv.id, hdef.qualified_name, inv.actor, execution)
            else:
                ctx = ServiceContext(self._services, inv.id, hdef.qualified_name, execution)
        timeout = self._options.attempt_timeout
        try:
            if not scoped and timeout is None:
                return ctx, await self._run_handler(inv, ctx), None, None
            deadline = (
                math.inf if timeout is None else trio.current_time() + timeout.total_seconds()
            )
            with trio.CancelScope(deadline=deadline) as inv.scope:
                return ctx, await self._run_handler(inv, ctx), None, None
            if inv.kill_requested:
                return ctx, None, None, InvocationKilled("killed")
            return (
                ctx,
                None,
                None,
                InvocationTimeout(f"attempt ran longer than attempt_timeout={timeout}"),
            )
        except (TerminalError, UsageError, CodecError) as exc:
            # Deterministic failures: retrying cannot help.
            return ctx, None, _terminal_failure(exc), None
        except Exception as exc:  # noqa: BLE001 - the one boundary that classifies user errors
            return ctx, None, None, exc
        except (Diverged, Replay, Suspend, PauseRequested) as signal:
            # Runtime control signals: `_attempts` acts on each by its type.
            return ctx, None, None, signal
        except Killed:
            return ctx, None, None, InvocationKilled("killed")
        finally:
            inv.scope = None

    def _load_execution(self, inv: Invocation) -> Execution:
        """The journal, state view and outbox for a new attempt of `inv`."""
        suspend_after = self._options.suspend_after
        execution = Execution.load(
            engine=self,
            invocation=inv,
            inv_id=inv.id,
            handler=inv.hdef.qualified_name,
            reader=self._store,
            actor=inv.actor if inv.hdef.holds_key else None,
            durable=inv.durable,
            always_replay=self._options.always_replay,
            suspend_after=None if suspend_after is None else suspend_after.total_seconds(),
        )
        if execution.journal.committed_length:
            self._counters.replayed()
        return execution

    async def _run_handler(self, inv: Invocation, ctx: ServiceContext | SharedContext) -> bytes:
        hdef = inv.hdef
        value = await hdef.function(hdef.actor.instance, ctx, *self._codec.decode(inv.args))
        if ctx._exec is not None:
            ctx._exec.check_complete()
        return self._codec.encode(value)

    async def _failed_attempt(
        self, inv: Invocation, error: BaseException, delay: timedelta | None
    ) -> None:
        """Record a retryable failure durably: back off, or pause after the last attempt."""
        described = _describe(error)
        log_extra = _log_extra(inv)
        inv.last_error = described
        self._counters.failed_attempt(inv.hdef.actor.name, inv.hdef.name)
        if delay is None:
            _log.error(
                "invocation %s (%s on %s) paused after %d attempts: %s",
                inv.id,
                inv.hdef.qualified_name,
                inv.actor,
                inv.attempts,
                described,
                extra=log_extra,
            )
            inv.status = InvocationStatus.PAUSED
            inv.next_retry_at = None
        else:
            _log.warning(
                "invocation %s (%s on %s) attempt %d failed, retrying in %s: %s",
                inv.id,
                inv.hdef.qualified_name,
                inv.actor,
                inv.attempts,
                delay,
                described,
                extra=log_extra,
            )
            inv.status = InvocationStatus.BACKING_OFF
            inv.next_retry_at = to_micros(self._clock.now() + delay)
        try:
            await self._write_record(inv)
        except StorageError as exc:
            _log.error(
                "could not record the failed attempt of %s: %s", inv.id, exc, extra=log_extra
            )
        if inv.status is InvocationStatus.PAUSED:
            inv.settle()
            self._check_idle()

    async def _complete(
        self,
        inv: Invocation,
        ctx: ServiceContext | SharedContext,
        result: bytes | None,
        failure: Failure | None,
    ) -> None:
        """Commit the outcome with the state changes: the invocation's one durable commit."""
        inbox_seq = inv.inbox_seq  # `_retire` clears it; a retry below needs it back
        batch = self.new_batch()
        sent: list[Any] = []
        execution = ctx._exec
        if execution is not None:
            sent = execution.finish_rows(batch, keep_journal=self._retention(inv) > timedelta(0))
        promises: list[bytes] = []
        if isinstance(ctx, SharedContext):
            for name, outcome in ctx._promise_writes.items():
                key = inv.actor.state_key(name)
                batch.require(PROMISES, key, None)
                batch.put(PROMISES, key, outcome)
                promises.append(key)
        self._retire(batch, inv, InvocationStatus.COMPLETED, result=result, failure=failure)
        if batch:
            try:
                await self._store.commit(batch)
            except BatchConflict:
                if not promises:
                    raise
                # Another handler completed one of these promises first: this invocation
                # fails instead, with nothing of it written.
                inv.inbox_seq = inbox_seq
                inv.status = InvocationStatus.RUNNING
                inv.expires_at = None
                await self._complete(
                    inv,
                    SharedContext(self._services, inv.id, inv.hdef.qualified_name, inv.actor),
                    None,
                    Failure(
                        error_type="UsageError",
                        message="the promise was already completed by another handler; a"
                        " promise is resolved or rejected once",
                        code=409,
                    ),
                )
                return
            except BaseException:
                for target in sent:
                    target.inbox_seq = None
                raise
        self._deliver(sent)  # before `_forget`, which may declare the node idle
        self._forget(inv)
        for key in promises:
            self._notify(PROMISES, key)

    def _retire(
        self,
        batch: Batch,
        inv: Invocation,
        status: InvocationStatus,
        *,
        result: bytes | None = None,
        failure: Failure | None = None,
    ) -> None:
        """Add the end of an invocation's life to `batch` and to `inv`: drop its inbox entry,
        and keep its record for the retention period or delete it."""
        if inv.inbox_seq is not None:
            batch.delete(INBOX, inv.actor.inbox_key(inv.inbox_seq))
        inv.status = status
        inv.result = result
        inv.failure = failure
        inv.inbox_seq = None
        inv.next_retry_at = None
        if inv.reply_to is not None and self._caller_waits(inv.reply_to):
            if status is InvocationStatus.KILLED:
                failure = Failure(
                    error_type="InvocationKilled",
                    message=f"the called invocation {inv.id} was killed",
                    code=500,
                )
            batch.put(
                SLOTS,
                inv.reply_to,
                pack_outcome(self._codec, value=result, failure=failure),
            )
        retention = self._retention(inv)
        if retention > timedelta(0):
            now = self._clock.now()
            inv.modified_at = to_micros(now)
            inv.expires_at = to_micros(now + retention)
            batch.put(INVOCATIONS, inv.id.raw, self._codec.encode(inv.record().to_wire()))
            batch.put(EXPIRY, inv.expires_at.to_bytes(8, "big") + inv.id.raw, b"")
            idem_key = inv.idempotency_table_key
            if idem_key is not None and not inv.durable:
                batch.put(IDEMPOTENCY, idem_key, inv.id.raw)
        elif inv.durable:
            batch.delete(INVOCATIONS, inv.id.raw)
            idem_key = inv.idempotency_table_key
            if idem_key is not None:
                batch.delete(IDEMPOTENCY, idem_key)
            if inv.hdef.kind is HandlerKind.RUN:
                self._drop_run_rows(batch, inv.actor, inv.id)  # no retention: it expires now

    def _caller_waits(self, reply_to: bytes) -> bool:
        """Whether the caller a reply is addressed to has not finished: a caller that was
        cancelled or killed while it waited deleted its slots, and a late reply would stay
        behind forever."""
        caller_id = InvocationId(reply_to[:20])
        caller = self._invocations.get(caller_id)
        if caller is not None:
            return not caller.status.finished
        raw = self._store.get(INVOCATIONS, caller_id.raw)
        if raw is None:
            return False
        return not InvocationRecord.from_wire(caller_id, self._codec.decode(raw)).status.finished

    def _forget(self, inv: Invocation) -> None:
        """Drop a finished (or failed, never durable) invocation from memory, after its last
        commit landed, and wake its waiters."""
        if inv.reply_to is not None and inv.status.finished:
            self._notify(SLOTS, inv.reply_to)
        if inv.expires_at is not None:
            self._sweep_wakeup.set()  # only now is its expiry row committed
        if self._invocations.pop(inv.id, None) is not None:
            failure = inv.failure
            self._counters.finished(
                inv.hdef.actor.name,
                inv.hdef.name,
                outcome_of(inv.status, failure.error_type if failure else None, inv.durable),
                (self.now_us() - inv.created_at) / 1e6,
            )
        if inv.reply_to is not None:
            caller_id = InvocationId(inv.reply_to[:20])
            callees = self._callees.get(caller_id)
            if callees is not None:
                callees.discard(inv)
                if not callees:
                    del self._callees[caller_id]
        idem_key = inv.idempotency_table_key
        if idem_key is not None and self._by_idempotency.get(idem_key) is inv:
            del self._by_idempotency[idem_key]
        inv.settle()
        self._check_idle()

    async def _write_record(self, inv: Invocation) -> None:
        """Durably write an invocation's record (making it durable if it was not yet)."""
        inv.modified_at = self.now_us()
        if not inv.durable:
            await self._make_durable(inv)
            return
        batch = self.new_batch()
        batch.put(INVOCATIONS, inv.id.raw, self._codec.encode(inv.record().to_wire()))
        await self._store.commit(batch)

    async def _finish_killed(self, inv: Invocation) -> None:
        batch = self.new_batch()
        if inv.durable:
            # Its journal and the slots addressed to it go with it.
            start = inv.id.raw
            for table in (JOURNAL, SLOTS):
                for key, _ in self._store.scan(table, start=start, stop=prefix_end(start)):
                    batch.delete(table, key)
        self._retire(batch, inv, InvocationStatus.KILLED)
        if batch:
            await self._store.commit(batch)
        self._forget(inv)

    # ----------------------------------------------------------------------------- outcomes

    async def _outcome(self, inv: Invocation) -> Any:
        await inv.wait()
        if inv.error is not None:
            raise inv.error
        if inv.status is InvocationStatus.COMPLETED and inv.failure is None:
            assert inv.result is not None
            return self._codec.decode(inv.result)
        return self._stored_outcome(inv.record())

    def _stored_outcome(self, record: InvocationRecord) -> Any:
        status = record.status
        if status is InvocationStatus.COMPLETED:
            if record.failure is not None:
                f = record.failure
                raise TerminalError(f.message, code=f.code, error_type=f.error_type)
            assert record.result is not None
            return self._codec.decode(record.result)
        if status is InvocationStatus.PAUSED:
            raise InvocationPaused(str(record.id), record.last_error or "unknown error")
        if status is InvocationStatus.KILLED:
            raise InvocationKilled(f"invocation {record.id} was killed")
        raise UnknownInvocation(
            f"invocation {record.id} is {status.value} and is not running on this node"
        )

    def _live(self, invocation_id: str) -> Invocation:
        inv = self._invocations.get(InvocationId.parse(invocation_id))
        if inv is None:
            raise UnknownInvocation(
                f"invocation {invocation_id} is not queued, running or paused on this node"
            )
        return inv

    def _load_record(self, inv_id: InvocationId) -> InvocationRecord:
        return _reads.load_record(self._store, self._codec, inv_id)

    # ----------------------------------------------------------------------------- start-up

    async def _drop_stale_inbox_rows(self, keys: list[bytes]) -> None:
        if keys:
            batch = self.new_batch()
            for key in keys:
                batch.delete(INBOX, key)
            await self._store.commit(batch)
            _log.warning("dropped %d inbox rows of invocations that had finished", len(keys))

    async def _start(self) -> None:
        """Count this open durably and derive the invocation-id generator from it, so a
        fixed `NodeOptions.seed` gives reproducible ids that never repeat across reopens."""
        raw = self._store.get(META, _OPENS)
        opens = 0 if raw is None else int.from_bytes(raw, "big")
        batch = self.new_batch()
        batch.put(META, _OPENS, (opens + 1).to_bytes(8, "big"))
        await self._store.commit(batch)
        if self._options.seed is not None:
            self._rng = random.Random(f"{self._options.seed}/{opens}")

    def _recover(self) -> list[bytes]:
        """Re-admit every durably accepted, unfinished invocation, in inbox order.

        Returns:
            Inbox rows of invocations that had already finished, to delete.
        """
        stale: list[bytes] = []
        for key, raw_id in self._store.scan(INBOX):
            actor, rest = ActorId.parse_prefix(key)
            self._next_seq = max(self._next_seq, int.from_bytes(rest, "big") + 1)
            inv_id = InvocationId(raw_id)
            try:
                record = self._load_record(inv_id)
                hdef = self._registry.lookup(record.actor.type, record.handler)
            except (UnknownInvocation, UnknownHandler, StorageError, ValueError) as exc:
                _log.error(
                    "invocation %s cannot run on this node and stays stored (%s); it runs when a"
                    " node that registers its handler opens this directory",
                    inv_id,
                    exc,
                    extra={"invocation_id": str(inv_id), "actor": str(actor)},
                )
                continue
            if record.status.finished:
                # A finished invocation whose inbox row outlived it: drop the row.
                stale.append(key)
                continue
            inv = Invocation.from_record(record, hdef)
            _log.debug(
                "recovered invocation %s (%s)", inv.id, record.status.value, extra=_log_extra(inv)
            )
            idem_key = inv.idempotency_table_key
            if idem_key is not None:
                self._by_idempotency[idem_key] = inv
            if record.status is InvocationStatus.PAUSED:
                self._invocations[inv.id] = inv
                self._track_call(inv)
                inv.settle()
                if hdef.holds_key:
                    self._mailboxes.setdefault(actor, Mailbox()).block(inv)
            else:
                self._dispatch(inv)
                if inv.cancel_requested:
                    # The crash may have come before the request reached its calls (read
                    # now, before the invocation runs and its journal can go away).
                    children = self._load_execution(inv).outstanding_calls()
                    self._nursery.start_soon(self._cancel_all, children)
        return stale

    async def _fire_timers(self) -> None:
        """Move delayed invocations into their mailboxes when they are due. The due-time
        index is in memory, rebuilt at start-up from the stored records (it is derived)."""
        while True:
            self._timer_wakeup = trio.Event()
            now = self.now_us()
            while self._timers and self._timers[0][0] <= now:
                _, _, inv = heapq.heappop(self._timers)
                if inv.status is InvocationStatus.SUSPENDED:
                    self._wake(inv)
                elif inv.status is InvocationStatus.SCHEDULED and not (
                    inv.kill_requested or inv.cancel_requested
                ):
                    inv.status = InvocationStatus.INBOX
                    self._dispatch(inv)
            wait = math.inf if not self._timers else (self._timers[0][0] - now) / 1e6
            with trio.move_on_after(wait):
                await self._timer_wakeup.wait()

    async def _sweep_expired(self) -> None:
        """Delete finished records whose retention has passed (a derived index, by time)."""
        while True:
            self._sweep_wakeup = trio.Event()
            now = self.now_us()
            rows = self._store.scan(EXPIRY, limit=_SWEEP_BATCH)
            due = [k for k, _ in rows if int.from_bytes(k[:8], "big") <= now]
            if due:
                batch = self.new_batch()
                for key in due:
                    batch.delete(EXPIRY, key)
                    self._expire(batch, InvocationId(key[8:]), int.from_bytes(key[:8], "big"))
                await self._store.commit(batch)
                continue
            # Every expiry row is written by a commit that signals `_sweep_wakeup`, so with
            # nothing to expire there is nothing to wait for but that signal.
            wait = math.inf
            if rows:
                wait = (int.from_bytes(rows[0][0][:8], "big") - now) / 1e6
            with trio.move_on_after(wait):
                await self._sweep_wakeup.wait()

    def _retention(self, inv: Invocation) -> timedelta:
        """How long `inv`'s record (and journal) is kept once it finishes."""
        if inv.idempotency_key is not None:
            return self._options.idempotency_retention
        return self._options.completed_retention

    def _expire(self, batch: Batch, inv_id: InvocationId, expires_at: int) -> None:
        raw = self._store.get(INVOCATIONS, inv_id.raw)
        if raw is None or inv_id in self._invocations:
            return
        record = InvocationRecord.from_wire(inv_id, self._codec.decode(raw))
        if record.expires_at != expires_at:
            return
        batch.delete(INVOCATIONS, inv_id.raw)
        for key, _ in self._store.scan(JOURNAL, start=inv_id.raw, stop=prefix_end(inv_id.raw)):
            batch.delete(JOURNAL, key)  # the journal kept for tools goes with the record
        if record.idempotency_key is not None:
            idem = record.actor.idempotency_key(record.handler, record.idempotency_key)
            if self._store.get(IDEMPOTENCY, idem) == inv_id.raw:
                batch.delete(IDEMPOTENCY, idem)
        actor_def = self._registry.actors.get(record.actor.type)
        handler = None if actor_def is None else actor_def.handlers.get(record.handler)
        if handler is not None and handler.kind is HandlerKind.RUN:
            self._drop_run_rows(batch, record.actor, inv_id)

    def _drop_run_rows(self, batch: Batch, actor: ActorId, inv_id: InvocationId) -> None:
        """When a workflow run's record goes: its key's promises, and any slot row still
        addressed to the run (a late call reply or awakeable completion), go with it."""
        for table, start in ((PROMISES, actor.prefix), (SLOTS, inv_id.raw)):
            for key, _ in self._store.scan(table, start=start, stop=prefix_end(start)):
                batch.delete(table, key)

    async def _close(self) -> None:
        self._closed = True
        for inv in list(self._invocations.values()):
            if not inv.durable and inv.error is None:
                inv.error = NodeClosed(
                    f"the node closed before invocation {inv.id} finished; it was not durable"
                    " yet, so it did not take effect: retry it"
                )
            inv.settle()
