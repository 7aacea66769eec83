"""Handler contexts, typed by capability.

- `ServiceContext`: journaled side effects (`run`), durable `sleep`, `send`, and the
  deterministic helpers; no state (stateless services).
- `SharedContext`: reads the key's committed state from one snapshot; cannot write or take
  durable steps.
- `ObjectContext`: everything a service context can do, plus reading and writing the key's
  state. Writes are committed atomically with the invocation's next durable point.
"""

from __future__ import annotations

import functools
import inspect
import random as _random
import types
import uuid as _uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, TypeVarTuple, overload

import attrs
import trio

from storage import Codec, Reader

from ._clock import WallClock, from_micros, to_micros
from ._errors import CallCycle, ReadOnlyState, TerminalError, UsageError
from ._journal import Entry, EntryKind
from ._layout import (
    MAX_STATE_NAME_BYTES,
    PROMISES,
    SLOTS,
    STATE,
    ActorId,
    InvocationId,
    prefix_end,
    slot_id,
    slot_key,
)
from ._records import Failure
from ._retry import RetryPolicy

if TYPE_CHECKING:
    from ._execution import Execution

_SELF_DECODING = frozenset({int, float, str, bytes, bool, type(None)})
"""Exact types (not subclasses) whose decoded copy equals the value itself."""

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


def _virtual_time() -> bool:
    """Whether this trio run uses a virtual clock (trio's `MockClock`, in tests).

    Sync `ctx.run` functions then run on the event loop thread: in a worker thread every task
    would look blocked, and an autojump clock would leap ahead while the function runs.
    """
    return hasattr(trio.lowlevel.current_clock(), "autojump_threshold")


def _is_async(fn: Callable[..., Any]) -> bool:
    """`inspect.iscoroutinefunction`, with a fast yes for `async def` functions and methods
    (the usual step functions: the general check costs more than a step's own bookkeeping).
    Everything else gets the general check (which also knows functions marked with
    `inspect.markcoroutinefunction` on Python 3.12+)."""
    target = getattr(fn, "__func__", fn)
    if type(target) is types.FunctionType and target.__code__.co_flags & inspect.CO_COROUTINE:
        return True
    return inspect.iscoroutinefunction(fn)


async def _call_step(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Call a side-effect function: awaited if async, else in a worker thread (inline under a
    virtual clock)."""
    if _is_async(fn):
        return await fn(*args)
    return await _call_sync(fn, args)


async def _call_sync(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Call a sync side-effect function in a worker thread (inline under a virtual clock)."""
    if _virtual_time():
        return fn(*args)
    return await trio.to_thread.run_sync(functools.partial(fn, *args))


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise UsageError(f"state names are non-empty str, got {name!r}")
    if len(name.encode()) > MAX_STATE_NAME_BYTES:
        raise UsageError(
            f"state name {name[:40]!r}... is longer than {MAX_STATE_NAME_BYTES} bytes; shorten it"
        )
    return name


class _Services:
    """What a context needs from its node (kept small and explicit)."""

    __slots__ = ("clock", "codec", "deadlock", "reader", "sender")

    def __init__(
        self,
        *,
        codec: Codec,
        reader: Reader,
        clock: WallClock,
        sender: Callable[..., Any] | None = None,
        deadlock: Callable[[Any, Any], str | None] | None = None,
    ) -> None:
        self.codec = codec
        self.reader = reader
        self.clock = clock
        self.sender = sender
        self.deadlock = deadlock
        """(caller, target) -> the path of a waits-for cycle the call would close, or None."""


class _BaseContext:
    __slots__ = ("_exec", "_handler", "_invocation_id", "_rng", "_services")

    def __init__(
        self,
        services: _Services,
        invocation_id: InvocationId,
        handler: str,
        execution: Execution | None = None,
    ) -> None:
        self._services = services
        self._invocation_id = invocation_id
        self._handler = handler
        self._rng: _random.Random | None = None
        self._exec = execution

    @property
    def invocation_id(self) -> str:
        """This invocation's id (``inv_...``)."""
        return str(self._invocation_id)

    def now(self) -> datetime:
        """The node's durable time (aware UTC); virtual under trio's `MockClock`."""
        return self._services.clock.now()

    def _random(self) -> _random.Random:
        if self._rng is None:
            # Seeded from the invocation id, so every execution of an invocation draws the
            # same sequence: deterministic on replay without journaling each draw.
            self._rng = _random.Random(int.from_bytes(self._invocation_id.raw, "big"))
        return self._rng

    def random(self) -> float:
        """A float in [0, 1) from a generator seeded by the invocation id (the same sequence
        on every execution of this invocation)."""
        return self._random().random()

    def uuid(self) -> _uuid.UUID:
        """A version-4 UUID from the invocation's seeded generator."""
        return _uuid.UUID(int=self._random().getrandbits(128), version=4)


class _KeyedContext(_BaseContext):
    __slots__ = ("_actor",)

    def __init__(
        self,
        services: _Services,
        invocation_id: InvocationId,
        handler: str,
        actor: ActorId,
        execution: Execution | None = None,
    ) -> None:
        super().__init__(services, invocation_id, handler, execution)
        self._actor = actor

    @property
    def key(self) -> str:
        """The key of the actor this invocation runs on."""
        return self._actor.key


class _DurableSteps(_BaseContext):
    """Journaled operations, shared by service and exclusive contexts."""

    __slots__ = ()

    def _execution(self) -> Execution:
        assert self._exec is not None, "context used outside its invocation"
        return self._exec

    def now(self) -> datetime:
        """The node's durable time (aware UTC), journaled: a re-execution of this invocation
        gets the same value at the same step."""
        execution = self._execution()
        entry = execution.match(EntryKind.NOW, "")
        if entry is not None:
            assert entry.value is not None
            return from_micros(self._services.codec.decode(entry.value))
        micros = to_micros(self._services.clock.now())
        execution.append(EntryKind.NOW, "", value=self._services.codec.encode(micros))
        return from_micros(micros)

    @overload
    async def run(
        self,
        name: str,
        fn: Callable[[*Ts], Awaitable[R]],
        *args: *Ts,
        retry: RetryPolicy | None = None,
        non_retryable: tuple[type[BaseException], ...] = (),
    ) -> R: ...
    @overload
    async def run(
        self,
        name: str,
        fn: Callable[[*Ts], R],
        *args: *Ts,
        retry: RetryPolicy | None = None,
        non_retryable: tuple[type[BaseException], ...] = (),
    ) -> R: ...
    async def run(  # type: ignore[misc]  # mypy cannot match *Ts overloads to *Any
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        retry: RetryPolicy | None = None,
        non_retryable: tuple[type[BaseException], ...] = (),
    ) -> Any:
        """Run a side effect once and journal its result.

        The result is committed (with the state changes made so far) before this returns;
        when the invocation is re-executed after a crash or a retry, the recorded result is
        returned and `fn` is not called again. A crash after `fn` ran but before its result
        was committed runs it again: make effects idempotent (key them by
        ``(ctx.invocation_id, name)``).

        Args:
            name: a step name, unique within the handler; checked on replay.
            fn: a function or async function; a sync one runs in a worker thread (on the
                event loop under trio's `MockClock`, so virtual time stays exact).
            args: arguments for `fn` (not journaled; they are recomputed on replay).
            retry: retry `fn` in place with this policy; after the last attempt the failure
                is journaled and raised as `TerminalError`. Without it, an exception from `fn`
                fails the whole attempt, which the invocation's retry policy retries (replaying
                the steps before this one).
            non_retryable: exception types that become a terminal failure at once.

        Returns:
            What `fn` returned (a decoded copy, as every replay will see it).

        Raises:
            TerminalError: `fn` raised one, or `retry` gave up (journaled).
        """
        if not isinstance(name, str) or not name:
            raise UsageError(f"ctx.run needs a non-empty step name, got {name!r}")
        execution = self._exec
        assert execution is not None, "context used outside its invocation"
        codec = self._services.codec
        entry = execution.match(EntryKind.RUN, name)
        if entry is not None:
            if entry.failure is not None:
                failure = Failure.from_wire(entry.failure)
                raise TerminalError(
                    failure.message, code=failure.code, error_type=failure.error_type
                )
            assert entry.value is not None
            value: Any = codec.decode(entry.value)
            return value
        attempt = 0
        is_async = _is_async(fn)
        while True:
            attempt += 1
            try:
                result = await fn(*args) if is_async else await _call_sync(fn, args)
                break
            except TerminalError as exc:
                await self._record_failure(name, Failure.of(exc), attempt)
            except Exception as exc:
                if retry is None and not isinstance(exc, non_retryable):
                    raise
                delay = None
                if retry is not None and not isinstance(exc, non_retryable):
                    delay = retry.next_delay(attempt)
                if delay is None:
                    await self._record_failure(
                        name,
                        Failure(
                            error_type=type(exc).__name__,
                            message=f"ctx.run {name!r} failed after {attempt} attempt(s): {exc}",
                            code=500,
                        ),
                        attempt,
                    )
                await trio.sleep(delay.total_seconds())
        encoded = codec.encode(result)
        execution.append(EntryKind.RUN, name, value=encoded, attempts=attempt)
        await execution.durable_point()
        if type(result) in _SELF_DECODING:
            return result  # decoding would give an equal value of the same type
        decoded: Any = codec.decode(encoded)
        return decoded

    def step(self, name: str, fn: Callable[..., Any], *args: Any) -> Step:
        """Describe a side effect for `gather` (nothing runs yet).

        Args:
            name: a step name, unique within the handler; checked on replay.
            fn: a function or async function, as for `run`.
            args: its arguments.
        """
        if not isinstance(name, str) or not name:
            raise UsageError(f"ctx.step needs a non-empty step name, got {name!r}")
        return Step(name=name, fn=fn, args=args)

    @overload
    def call_step(
        self,
        handler: Callable[[Any, ServiceContext, *Ts], Awaitable[Any]],
        /,
        *args: *Ts,
    ) -> CallStep: ...
    @overload
    def call_step(
        self,
        handler: Callable[[Any, _AnyKeyedContext, *Ts], Awaitable[Any]],
        key: str,
        /,
        *args: *Ts,
    ) -> CallStep: ...
    def call_step(  # type: ignore[misc]  # mypy cannot match *Ts overloads to *Any
        self, handler: Callable[..., Awaitable[Any]], /, *args: Any
    ) -> CallStep:
        """Describe a call of another actor's handler for `gather` (nothing is sent yet).

        The target and arguments are checked now, as `call` checks them; `gather` sends the
        request and waits for the reply. A described call is gathered once.

        Raises:
            UnknownHandler, InvalidKey, InvalidArguments, UnsupportedType, PayloadTooLarge.
        """
        self._execution()  # only inside its invocation
        assert self._services.sender is not None
        return CallStep(target=self._services.sender(handler, args))

    async def gather(self, *items: Step | CallStep) -> list[Any]:
        """Run side effects and calls concurrently; journal them in a fixed order.

        Three phases, each journaled in argument order whatever order things finish in:
        the requests of the calls are committed in one durable point (they are sent then);
        the side effects run concurrently, while the callees work, and their results are
        committed together; then the replies are awaited and committed together. A
        re-execution therefore returns the same results in the same order. If the process
        dies before the side effects' commit, every side effect of the group runs again (the
        same at-least-once window as `run`, for the whole group); requests are never sent
        twice.

        Args:
            items: side effects described by `step` and calls described by `call_step`.

        Returns:
            The results, in the order of `items`.

        Raises:
            TerminalError: a step or a callee raised one; every other result is journaled
                too, and the first failure (in argument order) is raised, on every execution.
            CallCycle: a call would deadlock (as for `call`); nothing is sent.
            Exception: any other error in a step fails the attempt (no step is journaled), as
                for `run` without a retry policy.
        """
        execution = self._execution()
        codec = self._services.codec
        if not items:
            return []
        for item in items:
            if isinstance(item, CallStep):
                if item.gathered:
                    raise UsageError("a ctx.call_step is gathered once; describe a new one")
                item.gathered = True
            elif not isinstance(item, Step):
                raise UsageError(
                    f"ctx.gather takes ctx.step(...) and ctx.call_step(...) items, got {item!r}"
                )
        # Phase 1: the requests, committed together (all or none is recorded).
        calls: dict[int, Entry] = {}
        new: dict[int, Any] = {}
        for position, item in enumerate(items):
            if isinstance(item, CallStep):
                entry = execution.match(EntryKind.CALL, item.target.hdef.qualified_name)
                if entry is None:
                    new[position] = item.target
                else:
                    calls[position] = entry
        if new:
            # Every call of the group is checked before any is journaled: a refused group
            # sends nothing.
            refusal = None
            for target in new.values():
                refusal = refusal or self._refusal(execution, target)
            for position, target in new.items():
                calls[position] = self._journal_call(execution, target, refusal)
            if refusal is None:
                await execution.durable_point()
        for entry in calls.values():
            _raise_refused(entry)
        # Phase 2: the side effects, run while the callees work.
        steps = [(p, item) for p, item in enumerate(items) if isinstance(item, Step)]
        runs = dict(zip((p for p, _ in steps), await self._run_steps(steps), strict=True))
        # Phase 3: the replies, committed together.
        replies: dict[int, bytes | None] = {}
        if calls:
            names = {p: f"call-{entry.index}" for p, entry in calls.items()}
            first = next(iter(calls))
            recorded = execution.match(EntryKind.OUTCOME, names[first])
            if recorded is not None:
                replies[first] = recorded.value
                for position in list(calls)[1:]:
                    found = execution.match(EntryKind.OUTCOME, names[position])
                    assert found is not None  # committed with the first one
                    replies[position] = found.value
            else:
                if execution.has_pending():
                    await execution.durable_point()
                for position, entry in calls.items():
                    # One wait after the other: the callees run concurrently anyway, and a
                    # reply that arrives early waits in its slot row.
                    key = slot_key(self._invocation_id, entry.index)
                    replies[position] = await execution.await_slot(SLOTS, key, None)
                for position in calls:
                    execution.append(EntryKind.OUTCOME, names[position], value=replies[position])
                await execution.durable_point()
        results: list[Any] = []
        for position in range(len(items)):
            if position in replies:
                results.append(unpack_outcome(codec, replies[position]))
                continue
            run = runs[position]
            if run.failure is not None:
                failure = Failure.from_wire(run.failure)
                raise TerminalError(
                    failure.message, code=failure.code, error_type=failure.error_type
                )
            assert run.value is not None
            results.append(codec.decode(run.value))
        return results

    async def _run_steps(self, steps: list[tuple[int, Step]]) -> list[Entry]:
        """Run `steps` concurrently (or replay them) and journal their results together, in
        order, in one durable point."""
        if not steps:
            return []
        execution = self._execution()
        codec = self._services.codec
        first = execution.match(EntryKind.RUN, steps[0][1].name)
        if first is not None:
            rest = [execution.match(EntryKind.RUN, s.name) for _, s in steps[1:]]
            assert all(e is not None for e in rest)  # committed with the first one
            return [first, *(e for e in rest if e is not None)]
        outcomes: list[Any] = [None] * len(steps)

        async def one(index: int, step: Step) -> None:
            try:
                value = await _call_step(step.fn, step.args)
                outcomes[index] = ("ok", codec.encode(value))
            except TerminalError as exc:
                outcomes[index] = ("failed", Failure.of(exc))

        try:
            async with trio.open_nursery() as nursery:
                for index, (_, step) in enumerate(steps):
                    nursery.start_soon(one, index, step)
        except BaseExceptionGroup as group:
            # A retryable error (or more) in some step: fail the attempt like `run` does.
            cause: BaseException = group.exceptions[0]
            while isinstance(cause, BaseExceptionGroup):
                cause = cause.exceptions[0]
            raise cause from group
        entries = []
        for (_, step), (kind, payload) in zip(steps, outcomes, strict=True):
            if kind == "ok":
                entries.append(
                    execution.append(EntryKind.RUN, step.name, value=payload, attempts=1)
                )
            else:
                entries.append(
                    execution.append(
                        EntryKind.RUN, step.name, failure=payload.to_wire(), attempts=1
                    )
                )
        await execution.durable_point()
        return entries

    def _refusal(self, execution: Execution, target: Any) -> str | None:
        """Why a call from this invocation to `target` would deadlock (None: it would not).

        Raises:
            CallCycle: `target` is already in this invocation's chain of callers (the check is
                deterministic: the chain is stored with the invocation).
        """
        caller = execution.invocation
        chain = tuple(caller.chain)
        if caller.hdef.kind.value in ("exclusive", "run"):
            chain = (*chain, str(caller.actor))
        if target.hdef.kind.value in ("exclusive", "run") and str(target.actor) in chain:
            path = " -> ".join((*chain, str(target.actor)))
            raise CallCycle(
                f"call cycle {path}: {target.actor} is waiting (directly or through other"
                " calls) for this invocation, so this call would deadlock. Use ctx.send"
                " for one of the directions, or move the shared work into a service"
            )
        target.chain = chain
        deadlock = self._services.deadlock
        if deadlock is None:
            return None
        cycle = deadlock(caller, target)
        if cycle is None:
            return None
        return (
            f"call cycle {cycle}: {target.actor} is held by an invocation that is waiting"
            " (through calls started elsewhere) for this one, so this call would deadlock; it"
            " is refused. Use ctx.send for one of the directions, or let one of them finish"
            " first"
        )

    def _journal_call(self, execution: Execution, target: Any, refusal: str | None = None) -> Entry:
        """Journal a new request to `target` (pending until the next durable point, which
        enqueues it), or, with `refusal`, the refusal of the call (so that a re-execution
        refuses it again whatever the other invocations do by then)."""
        name = target.hdef.qualified_name
        if refusal is not None:
            failure = Failure(error_type="CallCycle", message=refusal, code=409)
            return execution.append(EntryKind.CALL, name, failure=failure.to_wire())
        entry = execution.append(
            EntryKind.CALL, name, value=self._services.codec.encode(str(target.id))
        )
        target.reply_to = slot_key(self._invocation_id, entry.index)
        execution.outbox.append(target)
        return entry

    async def _record_failure(self, name: str, failure: Failure, attempts: int) -> NoReturn:
        execution = self._execution()
        execution.append(EntryKind.RUN, name, failure=failure.to_wire(), attempts=attempts)
        await execution.durable_point()
        raise TerminalError(failure.message, code=failure.code, error_type=failure.error_type)

    async def sleep(self, duration: timedelta) -> None:
        """Sleep durably: the wake-up time is journaled, so after a restart the invocation
        resumes and sleeps only what is left. Time is virtual under trio's `MockClock`."""
        if duration < timedelta(0):
            raise UsageError(f"ctx.sleep needs a non-negative duration, got {duration}")
        await self._sleep_until_us(None, duration)

    async def sleep_until(self, when: datetime) -> None:
        """Sleep durably until `when` (an aware datetime)."""
        if when.tzinfo is None:
            raise UsageError("ctx.sleep_until needs an aware datetime (e.g. with tzinfo=UTC)")
        await self._sleep_until_us(to_micros(when), None)

    async def _sleep_until_us(self, wake: int | None, duration: timedelta | None) -> None:
        execution = self._execution()
        codec = self._services.codec
        entry = execution.match(EntryKind.SLEEP, "")
        if entry is not None:
            assert entry.value is not None
            wake = codec.decode(entry.value)
        else:
            if wake is None:
                assert duration is not None
                wake = to_micros(self._services.clock.now() + duration)
            execution.append(EntryKind.SLEEP, "", value=codec.encode(wake))
            await execution.durable_point()
        assert wake is not None
        remaining = (wake - to_micros(self._services.clock.now())) / 1e6
        execution.check_cancel()
        if execution.suspend_after is not None and remaining > execution.suspend_after:
            from ._execution import Suspend

            raise Suspend(wake, None)
        if remaining > 0:
            invocation = execution.invocation
            with trio.CancelScope() as invocation.scope:
                invocation.waiting = True
                try:
                    await trio.sleep(remaining)
                finally:
                    invocation.waiting = False
            invocation.scope = None
            if invocation.kill_requested:
                from ._execution import Killed

                raise Killed
            if invocation.pause_requested:
                from ._execution import PauseRequested

                raise PauseRequested
            execution.check_cancel()

    async def _wait_slot(self, name: str, table: str, key: bytes, limit: timedelta | None) -> Any:
        """A journaled wait for a slot (a promise, an awakeable or a call reply) to be
        filled: the deadline and the outcome are journal entries, so a re-execution waits for
        the same deadline and gets the same outcome. Returns None on timeout."""
        execution = self._execution()
        codec = self._services.codec
        deadline: int | None = None
        if limit is not None:
            entry = execution.match(EntryKind.DEADLINE, name)
            if entry is None:
                deadline = to_micros(self._services.clock.now() + limit)
                execution.append(EntryKind.DEADLINE, name, value=codec.encode(deadline))
                await execution.durable_point()
            else:
                assert entry.value is not None
                deadline = codec.decode(entry.value)
        outcome = execution.match(EntryKind.OUTCOME, name)
        if outcome is not None:
            raw = outcome.value
        else:
            if execution.has_pending():
                # Commit what came before the wait (an awakeable's id sent somewhere, state
                # for shared handlers to read) so that the wait can ever complete.
                await execution.durable_point()
            raw = await execution.await_slot(table, key, deadline)
            execution.append(EntryKind.OUTCOME, name, value=raw)
            await execution.durable_point()
        return unpack_outcome(codec, raw)

    def awakeable(self) -> Awakeable:
        """A durable future that anyone can complete by its id, with
        `Node.resolve_awakeable` or `Node.reject_awakeable` (hand the id out with a
        `ctx.run` or `ctx.send` step)."""
        execution = self._execution()
        entry = execution.match(EntryKind.AWAKEABLE, "")
        if entry is None:
            entry = execution.append(EntryKind.AWAKEABLE, "")
        key = slot_key(self._invocation_id, entry.index)
        return Awakeable(self, slot_id(key), key, f"awakeable-{entry.index}")

    @overload
    async def call(
        self,
        handler: Callable[[Any, ServiceContext, *Ts], Awaitable[R]],
        /,
        *args: *Ts,
    ) -> R: ...
    @overload
    async def call(
        self,
        handler: Callable[[Any, _AnyKeyedContext, *Ts], Awaitable[R]],
        key: str,
        /,
        *args: *Ts,
    ) -> R: ...
    async def call(self, handler: Callable[..., Awaitable[Any]], /, *args: Any) -> Any:  # type: ignore[misc]
        """Call another actor's handler and wait for its result, durably.

        The request is enqueued exactly once (with this invocation's next durable point); the
        reply is journaled, so a re-execution gets it without calling again. While it waits,
        an exclusive caller keeps its key.

        Raises:
            TerminalError: the callee failed terminally (its message and code).
            CallCycle: the call would wait on an actor that is itself waiting for this one
                (A -> B -> A): it would deadlock, so it is refused.
            UnknownHandler, InvalidKey, InvalidArguments, UnsupportedType, PayloadTooLarge.
        """
        execution = self._execution()
        assert self._services.sender is not None
        target = self._services.sender(handler, args)
        name = target.hdef.qualified_name
        entry = execution.match(EntryKind.CALL, name)
        if entry is None:
            refusal = self._refusal(execution, target)
            entry = self._journal_call(execution, target, refusal)
            if refusal is None:
                await execution.durable_point()
        _raise_refused(entry)
        return await self._wait_slot(
            f"call-{entry.index}", SLOTS, slot_key(self._invocation_id, entry.index), None
        )

    @overload
    def send(
        self,
        handler: Callable[[Any, ServiceContext, *Ts], Awaitable[Any]],
        /,
        *args: *Ts,
        delay: timedelta | None = None,
    ) -> str: ...
    @overload
    def send(
        self,
        handler: Callable[[Any, _AnyKeyedContext, *Ts], Awaitable[Any]],
        key: str,
        /,
        *args: *Ts,
        delay: timedelta | None = None,
    ) -> str: ...
    def send(  # type: ignore[misc]
        self,
        handler: Callable[..., Awaitable[Any]],
        /,
        *args: Any,
        delay: timedelta | None = None,
    ) -> str:
        """Send a one-way message to another actor (or service): durable and exactly once.

        The message is enqueued in the same transaction as this invocation's next durable
        point (or its completion), so it is sent exactly once however often this invocation
        is re-executed. With `delay`, it runs no earlier than that after this step (a
        durable timer: it survives restarts).

        Returns:
            The id of the invocation the message creates.

        Raises:
            UnknownHandler, InvalidKey, InvalidArguments, UnsupportedType, PayloadTooLarge.
        """
        execution = self._execution()
        assert self._services.sender is not None
        target = self._services.sender(handler, args, delay)
        name = target.hdef.qualified_name
        entry = execution.match(EntryKind.SEND, name)
        if entry is not None:
            assert entry.value is not None
            sent_id: str = self._services.codec.decode(entry.value)
            return sent_id
        execution.append(EntryKind.SEND, name, value=self._services.codec.encode(str(target.id)))
        execution.outbox.append(target)
        return str(target.id)


class ServiceContext(_DurableSteps):
    """The context of a stateless service handler."""

    __slots__ = ()


class SharedContext(_KeyedContext):
    """The context of a shared handler: reads the committed state of its key.

    All reads of one invocation come from one snapshot of the key's state, taken at the first
    read, so a shared handler never sees a half-applied update.
    """

    __slots__ = ("_promise_writes", "_snapshot")

    def __init__(
        self,
        services: _Services,
        invocation_id: InvocationId,
        handler: str,
        actor: ActorId,
        execution: Execution | None = None,
    ) -> None:
        super().__init__(services, invocation_id, handler, actor, execution)
        self._snapshot: dict[str, bytes] | None = None
        self._promise_writes: dict[str, bytes] = {}

    def _committed(self) -> dict[str, bytes]:
        if self._snapshot is None:
            prefix = self._actor.prefix
            n = len(prefix)
            rows = self._services.reader.scan(STATE, start=prefix, stop=prefix_end(prefix))
            self._snapshot = {k[n:].decode(): v for k, v in rows}
        return self._snapshot

    def get(self, name: str, default: Any = None) -> Any:
        """The value stored under `name`, or `default` if there is none.

        Each call decodes a fresh copy: mutating it changes nothing until you `set` it.
        """
        raw = self._committed().get(_check_name(name))
        return default if raw is None else self._services.codec.decode(raw)

    def keys(self) -> list[str]:
        """The names with a stored value, sorted."""
        return sorted(self._committed())

    if not TYPE_CHECKING:  # at runtime only, so mypy still reports `ctx.set` in shared code

        def __getattr__(self, name: str) -> NoReturn:
            _refuse(self, name)


def _refuse(ctx: SharedContext, name: str) -> NoReturn:
    """The clear error for a write or a durable step attempted in a shared handler."""
    if name in ("set", "clear", "clear_all"):
        raise ReadOnlyState(
            f"ctx.{name}() is not available in shared handler {ctx._handler}: shared handlers"
            " are read-only. Make the handler @actors.exclusive to change state"
        )
    if name in (
        "run",
        "sleep",
        "sleep_until",
        "send",
        "call",
        "awakeable",
        "step",
        "call_step",
        "gather",
    ):
        raise ReadOnlyState(
            f"ctx.{name}() is not available in shared handler {ctx._handler}: shared handlers"
            " take no durable steps. Use an @actors.exclusive handler or a service"
        )
    raise AttributeError(f"{type(ctx).__name__!r} object has no attribute {name!r}")


class ObjectContext(_DurableSteps, SharedContext):
    """The context of an exclusive handler: its key's state, plus durable steps.

    Writes are buffered and committed atomically with the invocation's next durable point
    (a `run`, a `sleep`, or its completion); shared handlers see them only after that commit.
    Reads see this invocation's own writes; on re-execution they see exactly what the first
    execution saw.
    """

    __slots__ = ()

    def get(self, name: str, default: Any = None) -> Any:
        """The value of `name` as this handler last set it, or as committed, else `default`."""
        _check_name(name)
        execution = self._execution()
        if name in execution.writes:
            raw = execution.writes[name]
        elif execution.cleared:
            raw = None
        else:
            raw = execution.committed_value(name)
        return default if raw is None else self._services.codec.decode(raw)

    def keys(self) -> list[str]:
        """The names with a value (committed or set by this handler), sorted."""
        execution = self._execution()
        names = set() if execution.cleared else execution.committed_names()
        for name, raw in execution.writes.items():
            if raw is None:
                names.discard(name)
            else:
                names.add(name)
        return sorted(names)

    def set(self, name: str, value: Any) -> None:
        """Store `value` under `name` (encoded now, so a bad value fails right here).

        Raises:
            UnsupportedType: the value cannot be encoded (register its class with the node).
            PayloadTooLarge: the encoded value exceeds the node's value size limit.
            UsageError: the name is not a non-empty str of at most 128 bytes.
        """
        execution = self._execution()
        execution.writes[_check_name(name)] = self._services.codec.encode(value)
        execution.dirty = True

    def clear(self, name: str) -> None:
        """Remove the value stored under `name` (no error if there is none)."""
        execution = self._execution()
        execution.writes[_check_name(name)] = None
        execution.dirty = True

    def clear_all(self) -> None:
        """Remove every value of this key's state."""
        execution = self._execution()
        execution.writes.clear()
        execution.cleared = True
        execution.dirty = True


def _raise_refused(entry: Entry) -> None:
    """Raise the `CallCycle` a `CALL` entry recorded instead of a request, if it did."""
    if entry.failure is not None:
        raise CallCycle(Failure.from_wire(entry.failure).message)


def pack_outcome(
    codec: Codec, *, value: bytes | None = None, failure: Failure | None = None
) -> bytes:
    """The stored form of a slot's outcome: an encoded value or a terminal failure."""
    if failure is not None:
        return codec.encode({"ok": False, "failure": failure.to_wire()})
    return codec.encode({"ok": True, "value": value})


def unpack_outcome(codec: Codec, raw: bytes | None) -> Any:
    """The value of a packed outcome (None for a timeout).

    Raises:
        TerminalError: the outcome is a failure (a rejection, or a callee's terminal error).
    """
    if raw is None:
        return None
    outcome = codec.decode(raw)
    if not outcome["ok"]:
        failure = Failure.from_wire(outcome["failure"])
        raise TerminalError(failure.message, code=failure.code, error_type=failure.error_type)
    value = outcome["value"]
    return None if value is None else codec.decode(value)


@attrs.frozen(kw_only=True)
class Step:
    """A side effect described by `ctx.step`, run by `ctx.gather`."""

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]


@attrs.define(kw_only=True)
class CallStep:
    """A call described by `ctx.call_step`, sent and awaited by `ctx.gather` (once)."""

    target: Any
    """The callee's invocation, built (and checked) when the call was described."""
    gathered: bool = False


class Awakeable:
    """A durable future completed from outside by its id (see `ctx.awakeable`)."""

    __slots__ = ("_ctx", "_key", "_name", "id")

    def __init__(self, ctx: _DurableSteps, awakeable_id: str, key: bytes, name: str) -> None:
        self._ctx = ctx
        self._key = key
        self._name = name
        self.id = awakeable_id
        """The id to hand to whoever completes it (``awk_...``)."""

    # A durable deadline, journaled: a cancel scope could not survive a restart.
    async def wait(self, timeout: timedelta | None = None) -> Any:  # noqa: ASYNC109
        """Wait (durably) for the value it is resolved with.

        Returns:
            The value, or None if `timeout` passed first.

        Raises:
            TerminalError: it was rejected.
        """
        return await self._ctx._wait_slot(self._name, SLOTS, self._key, timeout)


class DurablePromise:
    """A workflow's named durable promise, as its run handler sees it."""

    __slots__ = ("_ctx", "_name")

    def __init__(self, ctx: WorkflowContext, name: str) -> None:
        self._ctx = ctx
        self._name = name

    # A durable deadline, journaled: a cancel scope could not survive a restart.
    async def wait(self, timeout: timedelta | None = None) -> Any:  # noqa: ASYNC109
        """Wait (durably) until a shared handler or `Node.resolve_promise` resolves it.

        Returns:
            The value, or None if `timeout` passed first (the deadline is durable: it holds
            across restarts).

        Raises:
            TerminalError: the promise was rejected.
        """
        ctx = self._ctx
        return await ctx._wait_slot(
            f"promise:{self._name}", PROMISES, ctx._actor.state_key(self._name), timeout
        )


class PromiseHandle:
    """A workflow's named durable promise, as its shared handlers see it: resolve it once."""

    __slots__ = ("_ctx", "_name")

    def __init__(self, ctx: WorkflowSharedContext, name: str) -> None:
        self._ctx = ctx
        self._name = name

    def _key(self) -> bytes:
        return self._ctx._actor.state_key(self._name)

    def peek(self) -> Any:
        """The resolved value, or None if it is not resolved yet.

        Raises:
            TerminalError: the promise was rejected.
        """
        ctx = self._ctx
        return unpack_outcome(ctx._services.codec, ctx._services.reader.get(PROMISES, self._key()))

    def resolve(self, value: Any = True) -> None:
        """Resolve the promise with `value` (committed when this handler completes).

        Raises:
            UsageError: it is already resolved or rejected.
        """
        codec = self._ctx._services.codec
        self._set(pack_outcome(codec, value=codec.encode(value)))

    def reject(self, message: str, *, code: int = 500) -> None:
        """Reject the promise: the run handler's `wait` raises `TerminalError(message)`."""
        failure = Failure(error_type="TerminalError", message=message, code=code)
        self._set(pack_outcome(self._ctx._services.codec, failure=failure))

    def _set(self, outcome: bytes) -> None:
        ctx = self._ctx
        if self._name in ctx._promise_writes or (
            ctx._services.reader.get(PROMISES, self._key()) is not None
        ):
            raise UsageError(
                f"promise {self._name!r} of {ctx._actor} is already completed; a promise is"
                " resolved or rejected once"
            )
        ctx._promise_writes[self._name] = outcome


class WorkflowContext(ObjectContext):
    """The context of a workflow's run handler: an `ObjectContext` plus durable promises."""

    __slots__ = ()

    def promise(self, name: str) -> DurablePromise:
        """The workflow's durable promise called `name`."""
        return DurablePromise(self, _check_name(name))


class WorkflowSharedContext(SharedContext):
    """The context of a workflow's shared handlers: read its state, complete its promises."""

    __slots__ = ()

    def promise(self, name: str) -> PromiseHandle:
        """The workflow's durable promise called `name`."""
        return PromiseHandle(self, _check_name(name))


if TYPE_CHECKING:

    class _AnyKeyedContext(WorkflowContext, WorkflowSharedContext):  # type: ignore[misc]
        """The context type that fits every keyed handler in the typed `send`/`call`
        overloads (exclusive handlers take `ObjectContext`, shared ones `SharedContext`,
        workflow handlers their workflow contexts)."""

else:
    _AnyKeyedContext = ObjectContext
