"""A workflow's promises go when its run's record expires (and with the completion when runs
are not retained), on virtual time; nothing else of the workflow, or of other keys, goes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import trio

import actors
from actors._layout import TABLES
from actors.testing import open_memory_node
from storage import open_lmdb_store

HOUR = 3600.0


@actors.workflow
class Order:
    @actors.run
    async def run(self, ctx: actors.WorkflowContext) -> str:
        ctx.set("status", "waiting")
        awakeable = ctx.awakeable()
        ctx.set("awakeable", awakeable.id)
        paid = await ctx.promise("paid").wait()
        ctx.set("status", f"paid {paid}")
        approved = await awakeable.wait()
        return f"{paid}/{approved}"

    @actors.shared
    async def peek(self, ctx: actors.WorkflowSharedContext, name: str) -> object:
        return ctx.promise(name).peek()


async def _finish(node: actors.Node, key: str) -> None:
    inv = await node.start(Order.run, key)
    await node.resolve_promise(Order, key, "paid", 10)
    await node.resolve_promise(Order, key, "note", "left at the door")
    await trio.sleep(1)
    await node.resolve_awakeable(node.get_state(Order, key)["awakeable"], "ok")
    assert await node.attach(inv) == "10/ok"


async def _tables(path: Path) -> dict[str, dict[bytes, bytes]]:
    async with open_lmdb_store(path, TABLES) as store:
        return {table: dict(store.scan(table)) for table in TABLES}


async def test_promises_go_with_the_expired_run_record(
    autojump_clock: object, tmp_path: Path
) -> None:
    path = tmp_path / "node"
    # One durable clock for the three opens, so that virtual time carries over.
    options = actors.NodeOptions(clock=actors.TrioWallClock())
    async with actors.open_node(path, [Order()], options=options) as node:
        await _finish(node, "done")
        running = await node.start(Order.run, "open")  # waits for its promise: not finished
        await node.resolve_promise(Order, "open", "note", "keep me")
        await trio.sleep(1)
    before = await _tables(path)
    assert len(before["promises"]) == 3
    # 23 hours later (of the default 24 h retention) nothing has expired yet.
    async with actors.open_node(path, [Order()], options=options) as node:
        await trio.sleep(23 * HOUR)
        assert await node.call(Order.peek, "done", "note") == "left at the door"
    kept = await _tables(path)
    del kept["meta"], before["meta"]  # the open count
    assert kept == before
    async with actors.open_node(path, [Order()], options=options) as node:
        await trio.sleep(2 * HOUR)
        assert await node.call(Order.peek, "done", "note") is None
        assert await node.call(Order.peek, "open", "note") == "keep me"
        assert node.get_state(Order, "done")["status"] == "paid 10"
        assert node.get_invocation(running).status is not actors.InvocationStatus.COMPLETED
    after = await _tables(path)
    gone = {table: sorted(set(rows) - set(after[table])) for table, rows in before.items() if rows}
    added = {t: sorted(set(after[t]) - set(before.get(t, {}))) for t in after if t != "meta"}
    assert not any(added.values()), added
    # Exactly the finished run's record, its idempotency and expiry rows, its two promises
    # and the journal kept with its record went; no slot rows were left (they go with the
    # run's completion).
    [done_id] = [k for k in before["invocations"] if k not in after["invocations"]]
    run_journal = [k for k in before["journal"] if k.startswith(done_id)]
    assert len(run_journal) >= 3  # awakeable, promise wait, awakeable wait
    assert {t: len(keys) for t, keys in gone.items() if keys} == {
        "invocations": 1,
        "idempotency": 1,
        "expiry": 1,
        "promises": 2,
        "journal": len(run_journal),
    }
    assert after["slots"] == {}
    for table in ("state", "inbox"):
        assert after[table] == before[table], table
    assert after["journal"] == {k: v for k, v in before["journal"].items() if k not in run_journal}


async def test_without_retention_promises_go_with_the_completion(
    autojump_clock: object,
) -> None:
    options = actors.NodeOptions(idempotency_retention=timedelta(0))
    async with open_memory_node([Order()], options=options) as node:
        await _finish(node, "w")
        assert await node.call(Order.peek, "w", "paid") is None
        assert await node.call(Order.peek, "w", "note") is None
        assert node.get_state(Order, "w")["status"] == "paid 10"
        # A new run of the key starts from fresh promises: it waits for "paid" again.
        again = await node.start(Order.run, "w")
        await trio.sleep(HOUR)
        assert node.get_invocation(again).status is not actors.InvocationStatus.COMPLETED
        await node.resolve_promise(Order, "w", "paid", 20)
        await trio.sleep(1)
        await node.resolve_awakeable(node.get_state(Order, "w")["awakeable"], "ok")
        assert await node.attach(again) == "20/ok"


@actors.virtual_object
class Trip:
    @actors.exclusive
    async def book(self, ctx: actors.ObjectContext) -> str:
        try:
            await ctx.sleep(timedelta(days=1))
        except actors.InvocationCancelled:
            await ctx.run("release", lambda: "released")
            raise
        return "booked"

    @actors.exclusive
    async def book_via(self, ctx: actors.ObjectContext, other: str) -> str:
        return await ctx.call(Trip.book, other)


async def test_a_reply_to_a_finished_caller_leaves_no_row(
    autojump_clock: object, tmp_path: Path
) -> None:
    path = tmp_path / "node"
    async with actors.open_node(path, [Trip()]) as node:
        outer = await node.send(Trip.book_via, "agent", "t", idempotency_key="via")
        await trio.sleep(60)
        # The caller finishes first; its callee compensates, then replies to nobody.
        await node.cancel(outer)
        await node.wait_idle()
        assert node.statistics().invocations_in_memory == 0
    tables = await _tables(path)
    assert tables["slots"] == {}
    # Only the journals kept with the two retained records (24 h, idempotency keys) remain.
    assert {key[:20] for key in tables["journal"]} <= set(tables["invocations"])
    assert tables["inbox"] == {}
