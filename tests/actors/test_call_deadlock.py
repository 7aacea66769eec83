"""Call cycles between independent chains of calls (an invocation on `x` calls `y` while one on
`y`, started elsewhere, calls `x`): the newest call is refused with `CallCycle`, journaled so
that a re-execution refuses it again, and the rest completes."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio

import actors
from actors.testing import open_memory_node

RETRY = actors.RetryPolicy(initial_interval=timedelta(seconds=1), max_attempts=3)


@pytest.fixture(params=[False, True], ids=["normal", "always-replay"])
def options(request: pytest.FixtureRequest) -> actors.NodeOptions:
    return actors.NodeOptions(retry_policy=RETRY, always_replay=request.param)


@actors.virtual_object
class Desk:
    @actors.exclusive
    async def relay(self, ctx: actors.ObjectContext, other: str, after: float) -> str:
        """Hold this key for `after` seconds, then call `other`."""
        await ctx.sleep(timedelta(seconds=after))
        reply: str = await ctx.call(Desk.stamp, other, ctx.key)
        return reply

    @actors.exclusive
    async def relay_or_note(self, ctx: actors.ObjectContext, other: str, after: float) -> str:
        """Like `relay`, but goes on without the reply when the call is refused."""
        await ctx.sleep(timedelta(seconds=after))
        try:
            reply: str = await ctx.call(Desk.stamp, other, ctx.key)
        except actors.CallCycle as exc:
            # Taken again on every re-execution: the refusal is journaled.
            ctx.set("refused", str(exc))
            await ctx.run("note", lambda: "noted")
            return "refused"
        return reply

    @actors.exclusive
    async def relay_via(self, ctx: actors.ObjectContext, other: str, after: float) -> str:
        """Like `relay`, through a service in the middle."""
        await ctx.sleep(timedelta(seconds=after))
        reply: str = await ctx.call(Hop.forward, other, ctx.key)
        return reply

    @actors.exclusive
    async def gather_two(self, ctx: actors.ObjectContext, a: str, b: str, after: float) -> str:
        await ctx.sleep(timedelta(seconds=after))
        replies = await ctx.gather(
            ctx.call_step(Desk.stamp, a, ctx.key), ctx.call_step(Desk.stamp, b, ctx.key)
        )
        return "+".join(str(r) for r in replies)

    @actors.exclusive
    async def stamp(self, ctx: actors.ObjectContext, sender: str) -> str:
        seen: list[str] = ctx.get("seen", default=[])
        seen.append(sender)
        ctx.set("seen", seen)
        return f"{ctx.key} from {sender}"


@actors.service
class Hop:
    @actors.handler
    async def forward(self, ctx: actors.ServiceContext, to: str, sender: str) -> str:
        reply: str = await ctx.call(Desk.stamp, to, sender)
        return reply


async def test_the_newest_call_of_a_cross_chain_cycle_is_refused(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    async with open_memory_node([Desk(), Hop()], options=options) as node:
        # x calls y at t=1 s (queued behind y's relay); y calls x at t=2 s: a deadlock.
        first = await node.send(Desk.relay, "x", "y", 1.0, idempotency_key="x")
        second = await node.send(Desk.relay, "y", "x", 2.0, idempotency_key="y")
        with trio.fail_after(60):
            with pytest.raises(actors.TerminalError) as info:
                await node.attach(second)
            assert await node.attach(first) == "y from x"
        assert info.value.error_type == "CallCycle"
        assert "call cycle Desk/y -> Desk/x -> Desk/y" in info.value.message
        assert node.get_state(Desk, "y") == {"seen": ["x"]}
        assert node.get_state(Desk, "x") == {}  # the refused request was never sent
        await node.wait_idle()
        assert node.statistics().invocations_in_memory == 0


async def test_a_refused_call_can_be_caught_and_replays_the_same(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    async with open_memory_node([Desk(), Hop()], options=options) as node:
        first = await node.send(Desk.relay, "x", "y", 1.0, idempotency_key="x")
        second = await node.send(Desk.relay_or_note, "y", "x", 2.0, idempotency_key="y")
        with trio.fail_after(60):
            assert await node.attach(second) == "refused"
            assert await node.attach(first) == "y from x"
        assert "Desk/y -> Desk/x -> Desk/y" in node.get_state(Desk, "y")["refused"]


async def test_a_cycle_through_a_service_is_refused(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    async with open_memory_node([Desk(), Hop()], options=options) as node:
        first = await node.send(Desk.relay, "x", "y", 1.0, idempotency_key="x")
        second = await node.send(Desk.relay_via, "y", "x", 2.0, idempotency_key="y")
        with trio.fail_after(60):
            with pytest.raises(actors.TerminalError, match="call cycle") as info:
                await node.attach(second)
            assert await node.attach(first) == "y from x"
        # The service's call was the newest one: it failed, and its caller with it.
        assert info.value.error_type == "CallCycle"
        assert "call cycle Hop -> Desk/x -> Desk/y -> Hop:" in info.value.message


async def test_a_gather_that_would_close_a_cycle_sends_nothing(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    async with open_memory_node([Desk(), Hop()], options=options) as node:
        first = await node.send(Desk.relay, "x", "y", 1.0, idempotency_key="x")
        second = await node.send(Desk.gather_two, "y", "z", "x", 2.0, idempotency_key="y")
        with trio.fail_after(60):
            with pytest.raises(actors.TerminalError, match="call cycle") as info:
                await node.attach(second)
            assert await node.attach(first) == "y from x"
        assert info.value.error_type == "CallCycle"
        assert node.get_state(Desk, "z") == {}  # the group's other call was not sent either


async def test_calls_that_only_queue_are_not_refused(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    async with open_memory_node([Desk(), Hop()], options=options) as node:
        # x calls y while y's own relay calls z: y is busy, not waiting on x.
        first = await node.send(Desk.relay, "x", "y", 1.0, idempotency_key="x")
        second = await node.send(Desk.relay, "y", "z", 2.0, idempotency_key="y")
        with trio.fail_after(60):
            assert await node.attach(first) == "y from x"
            assert await node.attach(second) == "z from y"
