"""Cancel and pause requests survive a crash between the request and its delivery: a crash at
every commit of a workload that requests them (real LMDB, reopened through `open_node`, on
virtual time). An acknowledged request always takes effect after the restart, and a cancelled
caller never leaves the invocation it called running."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import trio

import actors
from actors.testing import run_until_crash

from .durable_app import Sink

DAY = timedelta(days=1).total_seconds()


@actors.virtual_object
class Trip:
    """Books, sleeps a day, pays; compensates when cancelled."""

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
        ctx.set("status", "booked")
        return "booked"

    @actors.exclusive
    async def book_via(self, ctx: actors.ObjectContext, other: str) -> str:
        return await ctx.call(Trip.book, other)


async def _sweep(
    tmp_path: Path,
    workload_for: object,
    check: object,
) -> int:
    """Crash at every commit of the workload; `check(node, sink, acked)` after reopening."""
    assert callable(workload_for) and callable(check)
    acked: list[str] = []
    counting = await run_until_crash(tmp_path / "count", [Trip(Sink())], workload_for(acked))
    assert not counting.crashed
    assert acked  # the request was acknowledged in the run without a crash
    total = counting.commits
    for mode in ("crash_at_commit", "crash_after_commit"):
        for k in range(1, total + 1):
            sink = Sink()
            acked = []
            path = tmp_path / f"{mode}-{k}"
            report = await run_until_crash(path, [Trip(sink)], workload_for(acked), **{mode: k})
            assert report.crashed, (mode, k)
            async with actors.open_node(path, [Trip(sink)]) as node:
                await check(node, sink, bool(acked), (mode, k))
    return total


def _cancel_workload(acked: list[str]) -> object:
    async def workload(node: actors.Node) -> None:
        inv = await node.send(Trip.book, "t", idempotency_key="trip")
        await trio.sleep(60)
        await node.cancel(inv)
        acked.append(inv)
        with pytest.raises(actors.TerminalError, match="cancelled"):
            await node.attach(inv)

    return workload


async def test_a_cancel_request_survives_a_crash(autojump_clock: object, tmp_path: Path) -> None:
    async def check(node: actors.Node, sink: Sink, acked: bool, where: object) -> None:
        inv = await node.send(Trip.book, "t", idempotency_key="trip")
        try:
            outcome = await node.attach(inv)
        except actors.TerminalError as exc:
            outcome = exc.error_type
        if acked:
            assert outcome == "InvocationCancelled", where
        if outcome == "InvocationCancelled":
            assert node.get_state(Trip, "t") == {"status": "cancelled"}, where
            assert sink.effects["t:pay"] == 0, where
            # Twice at most: the crash may take the commit of the release's own result.
            assert 1 <= sink.effects["t:release"] <= 2, where
        else:
            assert outcome == "booked", where
            assert sink.effects["t:release"] == 0, where

    total = await _sweep(tmp_path, _cancel_workload, check)
    print(f"cancel request crash sweep: boundaries_enumerated={total} runs={2 * total}")


def _pause_workload(acked: list[str]) -> object:
    async def workload(node: actors.Node) -> None:
        inv = await node.send(Trip.book, "p", idempotency_key="trip")
        await trio.sleep(60)
        await node.pause(inv)
        acked.append(inv)
        await trio.sleep(2 * DAY)

    return workload


async def test_a_pause_request_survives_a_crash(autojump_clock: object, tmp_path: Path) -> None:
    async def check(node: actors.Node, sink: Sink, acked: bool, where: object) -> None:
        inv = await node.send(Trip.book, "p", idempotency_key="trip")
        await trio.sleep(1.5 * DAY)
        status = node.get_invocation(inv).status
        if acked:
            assert status is actors.InvocationStatus.PAUSED, where
            assert sink.effects["p:pay"] == 0, where
        if status is actors.InvocationStatus.PAUSED:
            await node.resume(inv)
        assert await node.attach(inv) == "booked", where
        assert sink.effects["p:pay"] == 1, where

    total = await _sweep(tmp_path, _pause_workload, check)
    print(f"pause request crash sweep: boundaries_enumerated={total} runs={2 * total}")


def _cancel_via_workload(acked: list[str]) -> object:
    async def workload(node: actors.Node) -> None:
        outer = await node.send(Trip.book_via, "agent", "t3", idempotency_key="via")
        await trio.sleep(60)
        await node.cancel(outer)
        acked.append(outer)
        await node.wait_idle()

    return workload


async def test_a_cancel_reaches_the_called_invocation_after_a_crash(
    autojump_clock: object, tmp_path: Path
) -> None:
    async def check(node: actors.Node, sink: Sink, acked: bool, where: object) -> None:
        outer = await node.send(Trip.book_via, "agent", "t3", idempotency_key="via")
        try:
            outcome = await node.attach(outer)
        except actors.TerminalError as exc:
            outcome = exc.error_type
        await node.wait_idle()
        if acked:
            assert outcome == "InvocationCancelled", where
        # Caller and callee agree, whatever commit the crash hit: a cancelled caller never
        # leaves its callee to pay.
        if outcome == "InvocationCancelled":
            assert node.get_state(Trip, "t3") == {"status": "cancelled"}, where
            assert sink.effects["t3:pay"] == 0, where
        else:
            assert outcome == "booked", where
            assert node.get_state(Trip, "t3") == {"status": "booked"}, where
        assert node.statistics().invocations_in_memory == 0, where

    total = await _sweep(tmp_path, _cancel_via_workload, check)
    print(f"cancel-through-calls crash sweep: boundaries_enumerated={total} runs={2 * total}")
