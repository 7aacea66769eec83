"""`ctx.gather` with calls: requests, side effects and replies in flight at once, journaled
in a fixed order (requests, then side-effect results, then replies), replayed exactly, and
crash-safe at every commit (real LMDB, reopened through `open_node`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import trio

import actors
from actors.testing import open_memory_node, run_until_crash

from .durable_app import Sink

RETRY = actors.RetryPolicy(initial_interval=timedelta(seconds=1), max_attempts=5)


@pytest.fixture(params=[False, True], ids=["normal", "always-replay"])
def options(request: pytest.FixtureRequest) -> actors.NodeOptions:
    return actors.NodeOptions(retry_policy=RETRY, always_replay=request.param)


@actors.virtual_object
class Ledger:
    """A callee: records each credit, optionally after a durable sleep."""

    @actors.exclusive
    async def credit(self, ctx: actors.ObjectContext, ref: str, amount: int, wait: float) -> int:
        if wait:
            await ctx.sleep(timedelta(seconds=wait))
        applied: list[str] = ctx.get("applied", default=[])
        applied.append(ref)
        ctx.set("applied", applied)
        balance: int = ctx.get("balance", default=0) + amount
        ctx.set("balance", balance)
        return balance

    @actors.exclusive
    async def refuse(self, ctx: actors.ObjectContext, why: str) -> int:
        raise actors.TerminalError(why, code=422)


@actors.service
class Rates:
    @actors.handler
    async def rate(self, ctx: actors.ServiceContext, currency: str) -> float:
        return {"EUR": 1.5, "USD": 1.0}[currency]


@actors.virtual_object
class Desk:
    """A caller that gathers two calls and a side effect."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def fee(self, ref: str, seconds: float) -> str:
        await trio.sleep(seconds)
        return self.sink.effect(f"{ref}:fee")

    @actors.exclusive
    async def split(self, ctx: actors.ObjectContext, ref: str, wait: float) -> list[object]:
        ctx.set("started", ref)
        results = await ctx.gather(
            ctx.call_step(Ledger.credit, "x", ref, 10, 3 * wait),
            ctx.step("fee", self.fee, ref, 2 * wait),
            ctx.call_step(Ledger.credit, "y", ref, 20, wait),
        )
        self.sink.maybe_fail("gathered")
        ctx.set("done", results)
        return results

    @actors.exclusive
    async def mixed(self, ctx: actors.ObjectContext) -> list[object]:
        return await ctx.gather(
            ctx.call_step(Rates.rate, "EUR"),
            ctx.step("a", self.sink.effect, "a"),
            ctx.step("b", self.sink.effect, "b"),
            ctx.call_step(Rates.rate, "USD"),
        )

    @actors.exclusive
    async def failing(self, ctx: actors.ObjectContext) -> str:
        async def refuse_step() -> str:
            raise actors.TerminalError("no fee", code=409)

        try:
            await ctx.gather(
                ctx.step("ok", self.sink.effect, "ok"),
                ctx.call_step(Ledger.refuse, "z", "no credit"),
                ctx.step("bad", refuse_step),
                ctx.call_step(Ledger.credit, "z", "after", 1, 0.0),
            )
        except actors.TerminalError as exc:
            return f"{exc.code} {exc.message}"
        return "no error"

    @actors.exclusive
    async def loop(self, ctx: actors.ObjectContext) -> list[object]:
        return await ctx.gather(ctx.call_step(Desk.mixed, ctx.key))

    @actors.exclusive
    async def twice(self, ctx: actors.ObjectContext) -> list[object]:
        call = ctx.call_step(Rates.rate, "EUR")
        await ctx.gather(call)
        return await ctx.gather(call)


def _instances(sink: Sink) -> list[object]:
    return [Ledger(), Rates(), Desk(sink)]


async def test_calls_and_steps_run_concurrently(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink()
    async with open_memory_node(_instances(sink), options=options) as node:
        start = trio.current_time()
        assert await node.call(Desk.split, "d", "r1", 1.0) == [10, "r1:fee", 20]
        # The slowest branch (the credit of x, 3 s) bounds the whole group.
        assert trio.current_time() - start == pytest.approx(3.0)
        assert sink.effects == {"r1:fee": 1}
        assert node.get_state(Ledger, "x") == {"applied": ["r1"], "balance": 10}
        assert node.get_state(Ledger, "y") == {"applied": ["r1"], "balance": 20}
        assert node.get_state(Desk, "d") == {"started": "r1", "done": [10, "r1:fee", 20]}


async def test_journal_order_is_requests_then_results_then_replies(
    autojump_clock: object,
) -> None:
    sink = Sink()
    async with open_memory_node(_instances(sink)) as node:
        inv = await node.send(Desk.split, "d", "r1", 60.0, idempotency_key="split")
        await trio.sleep(150)  # the fee (120 s) and y (60 s) are done, x (180 s) is not
        kinds = [(e.kind, e.name) for e in node.get_journal(inv)]
        assert kinds == [
            ("call", "Ledger.credit"),
            ("call", "Ledger.credit"),
            ("run", "fee"),
        ]
        assert await node.attach(inv) == [10, "r1:fee", 20]
        assert trio.current_time() == pytest.approx(180.0)


async def test_replay_after_a_failure_sends_nothing_again(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink(fail_handler_after={"gathered"})
    async with open_memory_node(_instances(sink), options=options) as node:
        assert await node.call(Desk.split, "d", "r2", 0.0) == [10, "r2:fee", 20]
        # The handler failed once after the gather and was re-executed: the requests, the
        # fee and the replies came from the journal.
        assert sink.effects == {"r2:fee": 1}
        assert node.get_state(Ledger, "x")["applied"] == ["r2"]
        assert node.get_state(Ledger, "y")["applied"] == ["r2"]


async def test_services_and_several_steps(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink()
    async with open_memory_node(_instances(sink), options=options) as node:
        assert await node.call(Desk.mixed, "m") == [1.5, "a", "b", 1.0]
        assert sink.effects == {"a": 1, "b": 1}


async def test_first_failure_in_argument_order_after_everything_finished(
    autojump_clock: object, options: actors.NodeOptions
) -> None:
    sink = Sink()
    async with open_memory_node(_instances(sink), options=options) as node:
        # The callee's refusal comes before the failing step in the arguments.
        assert await node.call(Desk.failing, "f") == "422 no credit"
        assert sink.effects == {"ok": 1}
        # The call after both failures was still sent and applied, once.
        assert node.get_state(Ledger, "z") == {"applied": ["after"], "balance": 1}


async def test_suspended_while_gathering(autojump_clock: object) -> None:
    sink = Sink()
    options = actors.NodeOptions(retry_policy=RETRY, suspend_after=timedelta(seconds=5))
    async with open_memory_node(_instances(sink), options=options) as node:
        inv = await node.send(Desk.split, "d", "r3", 60.0)
        await trio.sleep(150)  # the fee is journaled; the wait for x suspended at 125 s
        assert node.get_invocation(inv).status is actors.InvocationStatus.SUSPENDED
        assert await node.attach(inv) == [10, "r3:fee", 20]
        assert sink.effects == {"r3:fee": 1}
        assert trio.current_time() == pytest.approx(180.0)


async def test_cancel_reaches_gathered_calls(autojump_clock: object) -> None:
    sink = Sink()
    async with open_memory_node(_instances(sink)) as node:
        inv = await node.send(Desk.split, "d", "r4", 60.0, idempotency_key="r4")
        await trio.sleep(150)
        await node.cancel(inv)
        with pytest.raises(actors.TerminalError, match="cancelled"):
            await node.attach(inv)
        await node.wait_idle()
        # y had replied already; x was cancelled at its sleep, before its credit.
        assert node.get_state(Ledger, "y")["applied"] == ["r4"]
        assert node.get_state(Ledger, "x") == {}


async def test_gathered_cycle_and_reuse_are_refused(autojump_clock: object) -> None:
    sink = Sink()
    async with open_memory_node(_instances(sink)) as node:
        with pytest.raises(actors.TerminalError, match="call cycle Desk/c -> Desk/c") as info:
            await node.call(Desk.loop, "c")
        assert info.value.error_type == "CallCycle"
        with pytest.raises(actors.TerminalError, match="gathered once"):
            await node.call(Desk.twice, "t")


async def _workload(node: actors.Node) -> None:
    await node.call(Desk.split, "d", "r1", 0.0, idempotency_key="r1")
    await node.call(Desk.split, "d", "r2", 0.0, idempotency_key="r2")


async def test_crash_at_every_commit_of_a_gather(tmp_path: Path) -> None:
    counting = await run_until_crash(tmp_path / "count", _instances(Sink()), _workload)
    assert not counting.crashed
    total = counting.commits
    reruns = 0
    for mode in ("crash_at_commit", "crash_after_commit"):
        for k in range(1, total + 1):
            sink = Sink()
            path = tmp_path / f"{mode}-{k}"
            report = await run_until_crash(path, _instances(sink), _workload, **{mode: k})
            assert report.crashed, (mode, k)
            async with actors.open_node(path, _instances(sink)) as node:
                for ref in ("r1", "r2"):
                    result = await node.call(Desk.split, "d", ref, 0.0, idempotency_key=ref)
                    assert result == [10 if ref == "r1" else 20, f"{ref}:fee", 20 * int(ref[1])]
                await node.wait_idle()
                for key, amount in (("x", 10), ("y", 20)):
                    state = node.get_state(Ledger, key)
                    # Each request applied once, in order, whatever commit the crash hit.
                    assert state == {"applied": ["r1", "r2"], "balance": 2 * amount}, (mode, k)
            for ref in ("r1", "r2"):
                assert 1 <= sink.effects[f"{ref}:fee"] <= 2, (mode, k, sink.effects)
            extra = sum(sink.effects.values()) - 2
            # Only the fee whose own commit was the one lost can run again.
            assert extra <= (1 if mode == "crash_at_commit" else 0), (mode, k, sink.effects)
            reruns += extra
    print(
        f"gather crash sweep: boundaries_enumerated={total} runs={2 * total} lost=0"
        f" duplicated_calls=0 step_reruns_in_crash_window={reruns}"
    )
