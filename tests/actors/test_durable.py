"""Durable execution: journaled steps, replay, durable sleep, exactly-once sends, and
non-determinism detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

import actors
from actors.testing import open_memory_node

from .durable_app import Clerk, Saga, Sink, instances

RETRY = actors.RetryPolicy(initial_interval=timedelta(seconds=1), max_attempts=5)
OPTIONS = actors.NodeOptions(retry_policy=RETRY)


@pytest.fixture(params=[False, True], ids=["normal", "always-replay"])
def options(request: pytest.FixtureRequest) -> actors.NodeOptions:
    return actors.NodeOptions(retry_policy=RETRY, always_replay=request.param)


async def test_steps_run_once_across_handler_retries(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink(fail_handler_after={"charge"})
    async with open_memory_node(instances(sink), options=options) as node:
        result = await node.call(Saga.checkout, "o1", "o1")
        assert result == ["o1:reserve", "o1:charge", "o1:confirm"]
        # The handler failed after "charge" and was re-executed: the journaled steps
        # returned their recorded results instead of running again.
        assert sink.effects == {"o1:reserve": 1, "o1:charge": 1, "o1:confirm": 1}
        assert node.get_state(Saga, "o1") == {"progress": result}
        [] = node.list_invocations()  # the journal is gone with the finished invocation


async def test_async_steps(autojump_clock: object, options: actors.NodeOptions) -> None:
    sink = Sink(fail_handler_after={"one"})
    async with open_memory_node(instances(sink), options=options) as node:
        assert await node.call(Saga.async_steps, "k", "o") == "o:one+o:two"
        assert sink.effects == {"o:one": 1, "o:two": 1}


async def test_reads_on_replay_see_what_the_first_execution_saw(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink(fail_handler_after={"step"})
    async with open_memory_node(instances(sink), options=options) as node:
        # First execution: x = 0 + 1, committed with the step; then it fails. The retry
        # must read x = 0 again (not the committed 1), or it would return 2.
        assert await node.call(Saga.increment_then_step, "k") == 1
        assert node.get_state(Saga, "k") == {"x": 1}
        assert sink.effects["k:step"] == 1


async def test_now_is_journaled(autojump_clock: object, options: actors.NodeOptions) -> None:
    sink = Sink(fail_handler_after={"noop"})
    async with open_memory_node(instances(sink), options=options) as node:
        start = datetime.now(UTC)
        moment = await node.call(Saga.stamp, "k")
        # The retry ran 1 s of virtual time later but returned the journaled time.
        assert moment - start < timedelta(seconds=1)


async def test_long_durable_sleeps_take_no_real_time(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink()
    async with open_memory_node(instances(sink), options=options) as node:
        start = trio.current_time()
        assert await node.call(Saga.nap, "k", timedelta(days=30).total_seconds()) == "awake"
        assert trio.current_time() - start == pytest.approx(timedelta(days=30).total_seconds())
        assert sink.effects["woke"] == 1


async def test_a_durable_sleep_resumes_after_a_restart(
    tmp_path: Path, autojump_clock: object
) -> None:
    sink = Sink()
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    first = actors.NodeOptions(clock=actors.TrioWallClock(start=t0))
    async with actors.open_node(tmp_path, instances(sink), options=first) as node:
        inv = await node.send(Saga.nap, "k", 3600.0)
        with trio.move_on_after(60):
            await node.attach(inv)  # gives up after a minute of the hour
    assert sink.effects["woke"] == 0
    # The node was down for two hours: on restart the sleep is already due.
    later = actors.NodeOptions(clock=actors.TrioWallClock(start=t0 + timedelta(hours=2)))
    async with actors.open_node(tmp_path, instances(sink), options=later) as node:
        start = trio.current_time()
        assert await node.attach(inv) == "awake"
        assert trio.current_time() == start
    assert sink.effects["woke"] == 1


async def test_run_retries_in_place_then_compensates(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink(flaky_effects={"pay": 10})
    async with open_memory_node(instances(sink), options=options) as node:
        assert await node.call(Saga.guarded, "k") == "compensated"
        assert sink.effects["pay"] == 3
        [message] = node.get_state(Saga, "k").values()
        assert "failed after 3 attempt(s)" in str(message)


async def test_run_non_retryable_error_is_terminal(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink(flaky_effects={"pay": 1})
    async with open_memory_node(instances(sink), options=options) as node:
        with pytest.raises(actors.TerminalError, match="unreachable") as info:
            await node.call(Saga.refused, "k")
        assert info.value.error_type == "ConnectionError"
        assert sink.effects["pay"] == 1


async def test_run_errors_without_a_policy_retry_the_invocation(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink(flaky_effects={"o:reserve": 2})
    async with open_memory_node(instances(sink), options=options) as node:
        assert await node.call(Saga.checkout, "k", "o") == ["o:reserve", "o:charge", "o:confirm"]
        assert sink.effects["o:reserve"] == 3
        assert sink.effects["o:charge"] == 1


async def test_sends_are_delivered_once(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink(fail_handler_after={"after-send"})
    async with open_memory_node(instances(sink), options=options) as node:
        await node.call(Saga.forward, "a", "m1", 3)
        await node.wait_idle()
        for key in ("a", "a+", "a++", "a+++"):
            assert node.get_state(Saga, key) == {"log": ["m1"]}
        assert node.get_state(Saga, "a++++") == {}


async def test_services_are_journaled(autojump_clock: object, options: actors.NodeOptions) -> None:
    sink = Sink(fail_handler_after={"stamp"})
    async with open_memory_node(instances(sink), options=options) as node:
        assert await node.call(Clerk.file, "d1") == "file:d1"
        await node.wait_idle()
        assert sink.effects["file:d1"] == 1
        assert node.get_state(Saga, "archive") == {"log": ["d1"]}


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ("rename", "asked for run 'charge*' but the journal recorded run 'charge'"),
        ("reorder", "asked for run 'confirm' but the journal recorded run 'charge'"),
        ("extra", "asked for run 'audit' but the journal recorded run 'charge'"),
        ("missing", "asked to return but the journal recorded run 'charge'"),
    ],
)
async def test_non_determinism_is_detected_and_pauses(
    autojump_clock: object, change: str, detail: str
) -> None:
    sink = Sink()

    @actors.virtual_object
    class Evolving:
        """Its code changes between the first execution and the retry."""

        def __init__(self) -> None:
            self.version = 1

        @actors.exclusive
        async def checkout(self, ctx: actors.ObjectContext, order: str) -> list[str]:
            if self.version == 1:
                steps = ["reserve", "charge", "confirm"]
            else:
                steps = {
                    "rename": ["reserve", "charge*", "confirm"],
                    "reorder": ["reserve", "confirm", "charge"],
                    "extra": ["reserve", "audit", "charge", "confirm"],
                    "missing": ["reserve"],
                }[change]
            done = []
            for step in steps:
                done.append(await ctx.run(step, sink.effect, f"{order}:{step}"))
                if self.version == 1 and step == "charge":
                    self.version = 2  # a deploy happens while the invocation is retrying
                    raise RuntimeError("the process died after charge")
            return done

    async with open_memory_node([Evolving()], options=OPTIONS) as node:
        with pytest.raises(actors.InvocationPaused, match="NonDeterministicHandler") as info:
            await node.call(Evolving.checkout, "k", "o")
        assert detail in info.value.last_error
        assert "Evolving.checkout" in info.value.last_error
        assert "at journal entry 1" in info.value.last_error
        record = node.get_invocation(info.value.invocation_id)
        assert record.status is actors.InvocationStatus.PAUSED
        assert record.attempts == 2  # paused at once, not retried again
        # No side effect of the diverging branch ran.
        assert sink.effects == {"o:reserve": 1, "o:charge": 1}


async def test_a_call_that_became_durable_outlives_its_caller(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink()
    async with open_memory_node(instances(sink), options=options) as node:
        with trio.move_on_after(10):
            await node.call(Saga.nap, "k", 3600.0)  # durable at its sleep: then the caller leaves
        [record] = node.list_invocations()
        await node.wait_idle()
        assert sink.effects["woke"] == 1
        assert trio.current_time() == pytest.approx(3600.0, abs=1e-3)
        with pytest.raises(actors.UnknownInvocation):
            node.get_invocation(str(record.id))


async def test_kill_a_durably_sleeping_invocation(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink()
    async with open_memory_node(instances(sink), options=options) as node:
        inv = await node.send(Saga.nap, "k", 3600.0, idempotency_key="nap")
        queued = await node.send(Saga.checkout, "k", "o")
        with trio.move_on_after(10):
            await node.attach(inv)
        await node.kill(inv)
        with pytest.raises(actors.InvocationKilled):
            await node.attach(inv)
        assert await node.attach(queued) == ["o:reserve", "o:charge", "o:confirm"]
        assert sink.effects["woke"] == 0
        assert trio.current_time() < 3600


async def test_delayed_sends(autojump_clock: object, options: actors.NodeOptions) -> None:
    sink = Sink()
    async with open_memory_node(instances(sink), options=options) as node:
        start = trio.current_time()
        inv = await node.send(Saga.forward, "d", "later", 0, delay=timedelta(minutes=5))
        assert node.get_invocation(inv).status is actors.InvocationStatus.SCHEDULED
        # A delayed message holds nothing: the key serves other work meanwhile.
        await node.call(Saga.forward, "d", "now", 0)
        assert node.get_state(Saga, "d") == {"log": ["now"]}
        assert await node.attach(inv) is None
        assert trio.current_time() - start == pytest.approx(300)
        assert node.get_state(Saga, "d") == {"log": ["now", "later"]}
        with pytest.raises(actors.InvalidArguments, match="non-negative timedelta"):
            await node.send(Saga.forward, "d", "x", 0, delay=timedelta(seconds=-1))


async def test_a_delayed_send_survives_a_restart(tmp_path: Path, autojump_clock: object) -> None:
    sink = Sink()
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    first = actors.NodeOptions(clock=actors.TrioWallClock(start=t0))
    async with actors.open_node(tmp_path, instances(sink), options=first) as node:
        inv = await node.send(Saga.forward, "d", "m", 0, delay=timedelta(hours=1))
        await trio.sleep(60)
        assert node.get_state(Saga, "d") == {}
    later = actors.NodeOptions(clock=actors.TrioWallClock(start=t0 + timedelta(minutes=30)))
    async with actors.open_node(tmp_path, instances(sink), options=later) as node:
        start = trio.current_time()
        assert node.get_invocation(inv).status is actors.InvocationStatus.SCHEDULED
        assert await node.attach(inv) is None
        assert trio.current_time() - start == pytest.approx(1800)
        assert node.get_state(Saga, "d") == {"log": ["m"]}


@actors.virtual_object
class Shop:
    """Sends a delayed message from a handler (the DESIGN's checkout example)."""

    @actors.exclusive
    async def checkout(self, ctx: actors.ObjectContext) -> str:
        return ctx.send(Saga.forward, "shipping", ctx.key, 0, delay=timedelta(minutes=5))


async def test_a_handler_sends_a_delayed_message(autojump_clock: object) -> None:
    sink = Sink()
    async with open_memory_node([*instances(sink), Shop()]) as node:
        shipped = await node.call(Shop.checkout, "alice")
        assert node.get_state(Saga, "shipping") == {}
        assert await node.attach(shipped) is None
        assert trio.current_time() == pytest.approx(300)
        assert node.get_state(Saga, "shipping") == {"log": ["alice"]}


@actors.virtual_object
class Trip:
    """Books, waits, and compensates when cancelled."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    @actors.exclusive
    async def book(self, ctx: actors.ObjectContext) -> str:
        await ctx.run("reserve", self.sink.effect, f"{ctx.key}:reserve")
        try:
            await ctx.sleep(timedelta(days=1))
            await ctx.run("pay", self.sink.effect, f"{ctx.key}:pay")
        except actors.InvocationCancelled:
            await ctx.run("release", self.sink.effect, f"{ctx.key}:release")
            ctx.set("status", "cancelled")
            raise
        return "booked"

    @actors.exclusive
    async def book_via(self, ctx: actors.ObjectContext, other: str) -> str:
        return await ctx.call(Trip.book, other)


async def test_cancel_runs_compensation(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink()
    async with open_memory_node([*instances(sink), Trip(sink)], options=options) as node:
        inv = await node.send(Trip.book, "t1")
        await trio.sleep(60)
        await node.cancel(inv)
        with pytest.raises(actors.TerminalError, match="cancelled") as info:
            await node.attach(inv)
        assert info.value.code == 409
        assert info.value.error_type == "InvocationCancelled"
        assert sink.effects == {"t1:reserve": 1, "t1:release": 1}
        assert node.get_state(Trip, "t1") == {"status": "cancelled"}
        assert trio.current_time() < 3600


async def test_cancel_a_queued_invocation(autojump_clock: object) -> None:
    sink = Sink()
    async with open_memory_node([*instances(sink), Trip(sink)]) as node:
        first = await node.send(Trip.book, "t2", idempotency_key="first")
        second = await node.send(Trip.book, "t2", idempotency_key="second")
        await node.cancel(second)
        with pytest.raises(actors.TerminalError, match="cancelled before it ran"):
            await node.attach(second)
        assert await node.attach(first) == "booked"
        assert sink.effects == {"t2:reserve": 1, "t2:pay": 1}


async def test_cancel_reaches_called_invocations(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink()
    async with open_memory_node([*instances(sink), Trip(sink)], options=options) as node:
        outer = await node.send(Trip.book_via, "agent", "t3")
        await trio.sleep(60)
        await node.cancel(outer)
        with pytest.raises(actors.TerminalError, match="cancelled"):
            await node.attach(outer)
        await node.wait_idle()
        assert sink.effects == {"t3:reserve": 1, "t3:release": 1}
        assert node.get_state(Trip, "t3") == {"status": "cancelled"}


async def test_get_journal(autojump_clock: object) -> None:
    sink = Sink()
    async with open_memory_node(instances(sink)) as node:
        inv = await node.send(Saga.nap, "k", 3600.0, idempotency_key="nap")
        await trio.sleep(60)
        [entry] = node.get_journal(inv)
        assert (entry.index, entry.kind, entry.name) == (0, "sleep", "")
        assert isinstance(entry.value, int)  # the durable wake-up time, µs since the epoch
        assert await node.attach(inv) == "awake"
        # Finished, it keeps its journal while its record is retained (the idempotency key).
        assert [e.kind for e in node.get_journal(inv)] == ["sleep"]


@actors.virtual_object
class Fanout:
    """Concurrent side effects inside one handler."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def fetch(self, tag: str, seconds: float) -> str:
        await trio.sleep(seconds)
        return self.sink.effect(tag)

    @actors.exclusive
    async def quotes(self, ctx: actors.ObjectContext) -> list[str]:
        results = await ctx.gather(
            ctx.step("slow", self.fetch, "slow", 3.0),
            ctx.step("fast", self.fetch, "fast", 1.0),
            ctx.step("sync", self.sink.effect, "sync"),
        )
        self.sink.maybe_fail("gathered")
        return results

    @actors.exclusive
    async def one_fails(self, ctx: actors.ObjectContext) -> str:
        async def refuse() -> str:
            raise actors.TerminalError("no quote", code=422)

        try:
            await ctx.gather(ctx.step("ok", self.fetch, "ok", 1.0), ctx.step("bad", refuse))
        except actors.TerminalError as exc:
            return f"{exc.code} {exc.message}"
        return "no error"


async def test_gather_runs_steps_concurrently_in_a_deterministic_order(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink(fail_handler_after={"gathered"})
    async with open_memory_node([*instances(sink), Fanout(sink)], options=options) as node:
        start = trio.current_time()
        assert await node.call(Fanout.quotes, "k") == ["slow", "fast", "sync"]
        # Concurrent: 3 s for the slowest, plus the 1 s retry backoff after the handler failed
        # (the retry replays the journaled results instead of fetching again).
        assert trio.current_time() - start == pytest.approx(4.0)
        assert sink.effects == {"slow": 1, "fast": 1, "sync": 1}


async def test_gather_terminal_failure(autojump_clock: object, options: actors.NodeOptions) -> None:
    sink = Sink()
    async with open_memory_node([*instances(sink), Fanout(sink)], options=options) as node:
        assert await node.call(Fanout.one_fails, "k") == "422 no quote"
        assert sink.effects == {"ok": 1}


async def test_pause_and_resume(autojump_clock: object, options: actors.NodeOptions) -> None:
    sink = Sink()
    async with open_memory_node([*instances(sink), Trip(sink)], options=options) as node:
        # A running (sleeping) invocation is paused at its wait and keeps its key.
        booking = await node.send(Trip.book, "t", idempotency_key="booking")
        queued = await node.send(Trip.book, "t", idempotency_key="queued")
        await trio.sleep(60)
        await node.pause(booking)
        with pytest.raises(actors.UsageError, match="already paused"):
            await node.pause(booking)
        with pytest.raises(actors.InvocationPaused, match="paused by an operator"):
            await node.attach(booking)
        assert node.get_invocation(booking).status is actors.InvocationStatus.PAUSED
        await trio.sleep(timedelta(days=3).total_seconds())
        assert sink.effects == {"t:reserve": 1}  # nothing moved while paused
        # Resumed, it replays its journal (reserve is not run again) and finishes.
        await node.resume(booking)
        assert await node.attach(booking) == "booked"
        assert await node.attach(queued) == "booked"
        assert sink.effects == {"t:reserve": 2, "t:pay": 2}


async def test_pause_a_queued_invocation(autojump_clock: object) -> None:
    sink = Sink()
    async with open_memory_node([*instances(sink), Trip(sink)]) as node:
        first = await node.send(Trip.book, "u", idempotency_key="first")
        second = await node.send(Trip.book, "u", idempotency_key="second")
        await node.pause(second)
        assert await node.attach(first) == "booked"
        with pytest.raises(actors.InvocationPaused):
            await node.attach(second)
        assert sink.effects == {"u:reserve": 1, "u:pay": 1}
        await node.resume(second)
        assert await node.attach(second) == "booked"
