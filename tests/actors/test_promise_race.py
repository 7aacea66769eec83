"""Two sent shared handlers race to complete the same promise: the loser fails cleanly, and
nothing of it (not even its inbox row) is left behind, across a restart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import trio

import actors


@actors.workflow
class Race:
    @actors.run
    async def run(self, ctx: actors.WorkflowContext) -> object:
        return await ctx.promise("p").wait()

    @actors.shared
    async def sig(self, ctx: actors.WorkflowSharedContext, value: str) -> None:
        ctx.promise("p").resolve(value)
        await trio.sleep(1)  # both resolve before either commits


async def test_the_loser_of_a_promise_race_leaves_nothing(
    tmp_path: Path, autojump_clock: object
) -> None:
    options = actors.NodeOptions(completed_retention=timedelta(hours=1))
    async with actors.open_node(tmp_path, [Race()], options=options) as node:
        first = await node.send(Race.sig, "k", "a")
        second = await node.send(Race.sig, "k", "b")
        await node.wait_idle()
        records = {inv: node.get_invocation(inv) for inv in (first, second)}
        failures = [r.failure for r in records.values() if r.failure is not None]
        assert len(failures) == 1
        assert failures[0].error_type == "UsageError"
        assert "already completed" in failures[0].message
        assert all(r.status is actors.InvocationStatus.COMPLETED for r in records.values())
    async with actors.open_node(tmp_path, [Race()], options=options) as node:
        await node.wait_idle()
        assert node.statistics().invocations_in_memory == 0
        assert node._store.scan("inbox") == []
