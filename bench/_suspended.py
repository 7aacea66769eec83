"""Workload (g): resident memory with many workflows suspended on a one-hour durable sleep.

N ``@actors.workflow`` runs (``node.start(Sleeper.run, f"w{i}")``, from a pool of concurrent
starters) each journal a one-hour ``ctx.sleep``. A sleep longer than
``NodeOptions.suspend_after`` (30 s by default) suspends at once: the invocation's task ends
and only a small entry per invocation stays in memory until the timer is due. The workload
shows that (no task per workflow is left, every run is ``SUSPENDED``) and reads the process's
memory then.

How it knows the runs are all suspended, without polling: a trio instrument watches task exits
and signals once the number of living tasks is back to what it was before the first start
(the node's own tasks and this one), i.e. every workflow's task has ended. That wait is
bounded; after it, ``node.list_invocations(status=SUSPENDED)`` counts the suspended runs once.
(``node.wait_idle`` cannot be used: it does not count an invocation suspended on a timer as
idle, since the timer will wake it without outside help.)

The node is real: a fresh data directory, LMDB with durable commits, the wall clock. Like (c)
it runs in a child process of its own (``python -m bench._suspended``, see `_child`), so its
RSS and ru_maxrss are this workload's alone.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from datetime import timedelta
from pathlib import Path

import trio

import actors

from ._child import run_child
from ._memory import read_memory

SLEEP = timedelta(hours=1)
"""How long every workflow sleeps: far longer than the run, so none wakes up."""

SETTLE_LIMIT_S = 120.0
"""How long, after the last start returned, the workload waits for every task to end."""

_MIB_IN_KIB = 1024


@actors.workflow
class Sleeper:
    """A workflow that sleeps durably for an hour, then returns. `entered` counts how often
    the run handler's code was entered (a replay would enter it again)."""

    def __init__(self) -> None:
        self.entered = 0

    @actors.run
    async def run(self, ctx: actors.WorkflowContext) -> None:
        """Sleep for an hour."""
        self.entered += 1
        await ctx.sleep(SLEEP)


class _TaskWatcher(trio.abc.Instrument):
    """Sets `settled` once a task exits and at most `target` tasks are left living."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.settled = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        self._signalled = False

    def check(self) -> None:
        """Signal (once, from the event loop) if the tasks are down to `target`."""
        if self._signalled or trio.lowlevel.current_statistics().tasks_living > self.target:
            return
        self._signalled = True
        # Not from inside the instrument hook: the scheduler runs the callback soon.
        self._token.run_sync_soon(self.settled.set)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        """Every task exit is a chance that the last workflow task has ended."""
        self.check()


async def suspended_workflows(
    path: Path, workflow_count: int, concurrency: int, settle_limit_s: float
) -> dict[str, float]:
    """Start `workflow_count` sleeping workflows, wait until their tasks ended, read memory.

    Raises:
        RuntimeError: not every workflow was suspended within the limit, or a handler ran
            more than once (the message has the evidence: counts, tasks, memory).
    """
    clock = time.perf_counter
    workflow = Sleeper()
    options = actors.NodeOptions()  # the defaults: suspend_after is 30 s
    suspend_after = options.suspend_after
    async with actors.open_node(path, [workflow], options=options) as node:
        gc.collect()
        baseline = read_memory()
        baseline_tasks = trio.lowlevel.current_statistics().tasks_living
        before = node.statistics()
        next_key = iter(range(workflow_count))

        async def starter() -> None:
            for i in next_key:
                await node.start(Sleeper.run, f"w{i}")

        watcher = _TaskWatcher(baseline_tasks)
        trio.lowlevel.add_instrument(watcher)
        try:
            started = clock()
            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(starter)
            starts_done = clock()
            watcher.check()
            with trio.move_on_after(settle_limit_s):
                await watcher.settled.wait()
            settled = clock()
        finally:
            trio.lowlevel.remove_instrument(watcher)
        tasks_living = trio.lowlevel.current_statistics().tasks_living
        gc.collect()
        memory = read_memory()
        stats = node.statistics()
        suspended = len(node.list_invocations(status=actors.InvocationStatus.SUSPENDED))
    growth = memory.rss_mb - baseline.rss_mb
    result = {
        "rss_mb": memory.rss_mb,
        "rss_anon_mb": memory.rss_anon_mb,
        "rss_file_mb": memory.rss_file_mb,
        "maxrss_mb": memory.maxrss_mb,
        "baseline_rss_mb": baseline.rss_mb,
        "rss_growth_mb": growth,
        "rss_growth_per_workflow_kb": growth * _MIB_IN_KIB / workflow_count,
        "workflows": float(workflow_count),
        "suspended": float(suspended),
        "handler_entries": float(workflow.entered),
        "tasks_living": float(tasks_living),
        "baseline_tasks_living": float(baseline_tasks),
        "invocations_in_memory": float(stats.invocations_in_memory),
        "active_actors": float(stats.active_actors),
        "starts_per_s": workflow_count / (starts_done - started),
        "settle_s": settled - starts_done,
        "suspended_per_s": workflow_count / (settled - started),
        "commits": float(stats.commits - before.commits),
        "commits_per_workflow": (stats.commits - before.commits) / workflow_count,
        "suspend_after_s": -1.0 if suspend_after is None else suspend_after.total_seconds(),
    }
    _check(result, workflow_count, settle_limit_s)
    return result


def _check(result: dict[str, float], workflow_count: int, settle_limit_s: float) -> None:
    problems = []
    if result["suspended"] != workflow_count:
        problems.append(f"{result['suspended']:,.0f} of {workflow_count:,} workflows suspended")
    if result["tasks_living"] > result["baseline_tasks_living"]:
        problems.append(
            f"{result['tasks_living']:,.0f} tasks living {settle_limit_s:g} s after the last"
            f" start returned, {result['baseline_tasks_living']:,.0f} before the first"
        )
    if result["handler_entries"] != workflow_count:
        problems.append(
            f"the run handler was entered {result['handler_entries']:,.0f} times for"
            f" {workflow_count:,} workflows"
        )
    if problems:
        evidence = ", ".join(f"{name}={value:g}" for name, value in result.items())
        raise RuntimeError(f"workload (g): {'; '.join(problems)} ({evidence})")


def run_suspended_workflows(
    path: Path, workflow_count: int, concurrency: int, settle_limit_s: float = SETTLE_LIMIT_S
) -> dict[str, float]:
    """Workload (g) in a child process; returns what the child measured.

    Raises:
        RuntimeError: the child failed (its stderr is in the message).
    """
    arguments = [
        "--dir",
        str(path),
        "--workflows",
        str(workflow_count),
        "--concurrency",
        str(concurrency),
        "--settle-limit",
        str(settle_limit_s),
    ]
    return run_child("bench._suspended", "g", arguments)


def _child_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._suspended", description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="fresh data directory")
    parser.add_argument("--workflows", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--settle-limit", type=float, default=SETTLE_LIMIT_S, metavar="SECONDS")
    args = parser.parse_args(argv)
    result = trio.run(
        suspended_workflows, args.dir, args.workflows, args.concurrency, args.settle_limit
    )
    print(json.dumps(result))


if __name__ == "__main__":
    _child_main()
