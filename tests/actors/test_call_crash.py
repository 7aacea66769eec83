"""Crash at every commit of a request-response call between actors (real LMDB, reopened
through `open_node`): the callee runs once per request and the caller gets its reply once,
however the crash falls."""

from __future__ import annotations

from pathlib import Path

import actors
from actors.testing import run_until_crash


@actors.virtual_object
class Account:
    @actors.exclusive
    async def credit(self, ctx: actors.ObjectContext, transfer: str, amount: int) -> int:
        applied: list[str] = ctx.get("applied", default=[])
        applied.append(transfer)
        ctx.set("applied", applied)
        balance: int = ctx.get("balance", default=0) + amount
        ctx.set("balance", balance)
        return balance

    @actors.exclusive
    async def transfer(self, ctx: actors.ObjectContext, transfer: str, to: str, amount: int) -> int:
        theirs: int = await ctx.call(Account.credit, to, transfer, amount)
        ctx.set("balance", ctx.get("balance", default=100) - amount)
        ctx.set("last", transfer)
        return theirs


async def _workload(node: actors.Node) -> None:
    await node.call(Account.transfer, "a", "t1", "b", 10, idempotency_key="t1")
    await node.call(Account.transfer, "a", "t2", "b", 5, idempotency_key="t2")


async def test_crash_at_every_commit_of_a_call(tmp_path: Path) -> None:
    counting = await run_until_crash(tmp_path / "count", [Account()], _workload)
    total = counting.commits
    for mode in ("crash_at_commit", "crash_after_commit"):
        for k in range(1, total + 1):
            path = tmp_path / f"{mode}-{k}"
            report = await run_until_crash(path, [Account()], _workload, **{mode: k})
            assert report.crashed, (mode, k)
            async with actors.open_node(path, [Account()]) as node:
                assert (
                    await node.call(Account.transfer, "a", "t1", "b", 10, idempotency_key="t1")
                    == 10
                )
                assert (
                    await node.call(Account.transfer, "a", "t2", "b", 5, idempotency_key="t2") == 15
                )
                await node.wait_idle()
                b = node.get_state(Account, "b")
                assert b["applied"] == ["t1", "t2"], (mode, k, b)  # each credit once, in order
                assert b["balance"] == 15
                assert node.get_state(Account, "a")["balance"] == 85
    print(f"call crash sweep: boundaries_enumerated={total} runs={2 * total} duplicated=0 lost=0")
