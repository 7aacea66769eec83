"""The durable-execution workloads (issue 3, "Performance"): journaled ``ctx.run`` steps.

These workloads were written before workflows (``@actors.workflow``) existed, so a "10-step
workflow" here is one exclusive handler of a virtual object that runs 10 ``ctx.run`` steps of a
trivial async function (it returns an int; nothing else happens on the step's path), and
returns the sum of their results.

- (d) 10-step workflow, sequential: one key, one invocation after another.
- (e) 10-step workflow, concurrent: one caller per key, all keys at once (group commit).
- (f) replay of a long journal: one invocation records N steps, fails once with a retryable
  error, and its second attempt re-executes every step from the journal.

How commits are counted: each ``ctx.run`` is one durable point, so one commit when it runs alone
(the first one also carries the invocation's inbox entry and record: it makes the invocation
durable), and the completion is one more commit (inbox removal, record deletion and journal
deletion). A 10-step workflow is therefore 11 commits, which the workloads measure from the
store's counters rather than assume.

Every run uses a fresh node on a fresh data directory, under plain trio: real time, real fsyncs.
Each workload checks its results (sums, how often each step function ran, attempts), so a
benchmark of a broken runtime fails instead of printing fast numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import trio

import actors

from ._bare import bare_step_loop, bare_step_loop_process, handoff_floor
from ._stats import Latencies
from ._workloads import _Meter

STEPS = 10
"""``ctx.run`` steps per workflow in (d) and (e)."""
COMMITS_PER_WORKFLOW = STEPS + 1
"""Durable commits per sequential workflow: one per step, plus the completion."""

_STEP_NAMES = tuple(f"step-{i}" for i in range(STEPS))


async def _step_value(i: int) -> int:
    """The trivial side effect of every step."""
    return i


@actors.virtual_object
class TenSteps:
    """The stand-in for a 10-step workflow: an exclusive handler taking 10 ``ctx.run`` steps.

    `step_calls` counts how often a step function really ran (a replay would not run it);
    `step_samples`, when not None, collects the wall time of each ``ctx.run`` as seen inside the
    handler (call to return: the step's function plus its durable commit).
    """

    def __init__(self) -> None:
        self.step_calls = 0
        self.step_samples: list[float] | None = None

    async def _step(self, i: int) -> int:
        self.step_calls += 1
        return await _step_value(i)

    @actors.exclusive
    async def run(self, ctx: actors.ObjectContext) -> int:
        """Take the 10 steps; returns the sum of their results (45)."""
        total = 0
        samples = self.step_samples
        if samples is None:
            for i, name in enumerate(_STEP_NAMES):
                value: int = await ctx.run(name, self._step, i)
                total += value
        else:
            clock = time.perf_counter
            for i, name in enumerate(_STEP_NAMES):
                t0 = clock()
                value = await ctx.run(name, self._step, i)
                samples.append(clock() - t0)
                total += value
        return total


_WORKFLOW_RESULT = sum(range(STEPS))


class _ReplayMe(Exception):
    """The one retryable failure of workload (f)."""


@actors.virtual_object
class LongJournal:
    """An exclusive handler with `entries` ``ctx.run`` steps that fails once after the last
    step (so its retry re-executes every step from the journal), with timestamps per attempt.
    """

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self.fail_once = True
        self.step_calls = 0
        self.entered: list[float] = []
        self.steps_done: list[float] = []

    async def _step(self, i: int) -> int:
        self.step_calls += 1
        return i

    @actors.exclusive
    async def run(self, ctx: actors.ObjectContext) -> int:
        """Take the steps; the first attempt then fails retryably; returns the sum."""
        clock = time.perf_counter
        self.entered.append(clock())
        total = 0
        for i in range(self.entries):
            value: int = await ctx.run(f"step-{i}", self._step, i)
            total += value
        self.steps_done.append(clock())
        if self.fail_once:
            self.fail_once = False
            raise _ReplayMe("fail once so that the next attempt replays the journal")
        return total


def _latencies(samples: list[float], prefix: str = "") -> dict[str, float]:
    latencies = Latencies.from_seconds(samples)
    return {
        f"{prefix}p50_us": latencies.p50_us,
        f"{prefix}p99_us": latencies.p99_us,
        f"{prefix}max_us": latencies.max_us,
    }


def _per_workflow(measured: dict[str, float], prefix: str = "") -> dict[str, float]:
    """`_Meter` counters (named per call) renamed per workflow, plus per-step figures."""
    return {
        f"{prefix}workflows_per_s": measured["calls_per_s"],
        f"{prefix}steps_per_s": measured["calls_per_s"] * STEPS,
        f"{prefix}commits": measured["commits"],
        f"{prefix}commits_per_s": measured["commits_per_s"],
        f"{prefix}commits_per_workflow": (
            1 / measured["calls_per_commit"] if measured["calls_per_commit"] else 0.0
        ),
        f"{prefix}batches_per_commit": measured["batches_per_commit"],
        f"{prefix}batches_per_workflow": measured["batches_per_call"],
        f"{prefix}loop_cpu_per_step_us": measured["loop_cpu_per_call_us"] / STEPS,
        f"{prefix}process_cpu_per_step_us": measured["process_cpu_per_call_us"] / STEPS,
    }


async def sequential_workflows(path: Path, invocations: int, warmup: int) -> dict[str, float]:
    """Workload (d): `invocations` 10-step workflows one after another on one key.

    Returns the p50/p99 per workflow (µs), the per-step cost (workflow p50 divided by the
    11 commits of a workflow), the p50 of one ``ctx.run`` timed inside the handler, and the
    commit and CPU counters of the timed part.
    """
    actor = TenSteps()
    async with actors.open_node(path, [actor]) as node:
        for _ in range(warmup):
            await node.call(TenSteps.run, "wf")
        actor.step_calls = 0
        actor.step_samples = []
        samples: list[float] = []
        results: list[int] = []
        clock = time.perf_counter
        meter = _Meter(node)
        for _ in range(invocations):
            t0 = clock()
            results.append(await node.call(TenSteps.run, "wf"))
            samples.append(clock() - t0)
        measured = meter.stop(invocations)
        step_samples = actor.step_samples
    _check_workflows("d", results, invocations, actor.step_calls)
    metrics = {**_latencies(samples), **_per_workflow(measured)}
    metrics["step_p50_us"] = metrics["p50_us"] / COMMITS_PER_WORKFLOW
    metrics.update(_latencies(step_samples, "run_"))
    return metrics


async def concurrent_workflows(
    path: Path, invocations: int, keys: int, warmup_per_key: int
) -> dict[str, float]:
    """Workload (e): `keys` concurrent callers, one per key, `invocations` workflows in total.

    Caller i runs ``node.call(TenSteps.run, f"wf{i}")`` back to back; the workflows are split
    as evenly as possible between the callers, which all start together. The clock runs from
    their start until the last workflow returns.
    """
    shares = [invocations // keys + (1 if i < invocations % keys else 0) for i in range(keys)]
    names = [f"wf{i}" for i in range(keys)]
    samples: list[float] = []
    results: list[int] = []
    clock = time.perf_counter
    ready = 0
    all_ready = trio.Event()
    go = trio.Event()
    actor = TenSteps()

    async def caller(key: str, count: int) -> None:
        nonlocal ready
        ready += 1
        if ready == keys:
            all_ready.set()
        await go.wait()
        record = samples.append
        for _ in range(count):
            t0 = clock()
            results.append(await node.call(TenSteps.run, key))
            record(clock() - t0)

    async def warm(key: str) -> None:
        for _ in range(warmup_per_key):
            await node.call(TenSteps.run, key)

    async with actors.open_node(path, [actor]) as node:
        async with trio.open_nursery() as nursery:
            for key in names:
                nursery.start_soon(warm, key)
        actor.step_calls = 0
        async with trio.open_nursery() as nursery:
            for key, count in zip(names, shares, strict=True):
                nursery.start_soon(caller, key, count)
            # Every caller is parked on `go` before the clock starts, so they start together.
            await all_ready.wait()
            meter = _Meter(node)
            go.set()
        measured = meter.stop(invocations)
    _check_workflows("e", results, invocations, actor.step_calls)
    floor = await handoff_floor(keys, max(1, invocations * STEPS // keys))
    bare = await bare_step_loop(path.with_name(path.name + "-bare"), invocations, keys, STEPS)
    bare_process = await bare_step_loop_process(
        path.with_name(path.name + "-bare-process"), invocations, keys, STEPS
    )
    metrics = {**_latencies(samples), **_per_workflow(measured), **floor, **bare, **bare_process}
    metrics["steps_x_bare"] = metrics["steps_per_s"] / bare["bare_steps_per_s"]
    metrics["steps_x_bare_process"] = (
        metrics["steps_per_s"] / bare_process["bare_process_steps_per_s"]
    )
    return metrics


def _check_workflows(workload: str, results: list[int], invocations: int, step_calls: int) -> None:
    wrong = [r for r in results if r != _WORKFLOW_RESULT]
    if len(results) != invocations or wrong:
        raise RuntimeError(
            f"workload ({workload}): {len(results)} workflows returned, {len(wrong)} with a"
            f" result other than {_WORKFLOW_RESULT}; expected {invocations}"
        )
    if step_calls != invocations * STEPS:
        raise RuntimeError(
            f"workload ({workload}): the step functions ran {step_calls} times,"
            f" expected {invocations * STEPS}"
        )


@contextmanager
def _quiet_retries() -> Iterator[None]:
    """Hide the runtime's warning about the one planned failed attempt of (f)."""
    logger = logging.getLogger("actors")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


async def replay_journal(path: Path, entries: int) -> dict[str, float]:
    """Workload (f): record an invocation with `entries` journaled steps, then replay it.

    The handler takes `entries` ``ctx.run`` steps (one durable commit each), then raises a
    retryable error once. The node's retry policy retries at once, and the second attempt
    re-executes every step from the journal (no step function runs, nothing is committed)
    before it returns and completes. Timestamps taken inside the handler split the time into:

    - record: the first attempt, from handler entry to its last step (`entries` commits);
    - reload: from the first attempt's failure to the second attempt's entry (the failed
      attempt's record is committed, the journal is read back and decoded, the retry starts);
    - replay: the second attempt, from handler entry to the end of its replayed steps;
    - resume = reload + replay: from the failure until the invocation has caught up with its
      journal (the number the target is about);
    - complete: from there until ``node.call`` returns (the completion commit, which deletes
      the whole journal).
    """
    options = actors.NodeOptions(
        retry_policy=actors.RetryPolicy(initial_interval=timedelta(0), max_attempts=3)
    )
    actor = LongJournal(entries)
    clock = time.perf_counter
    with _quiet_retries():
        async with actors.open_node(path, [actor], options=options) as node:
            before = node.statistics()
            result = await node.call(LongJournal.run, "journal")
            returned = clock()
            after = node.statistics()
    if result != sum(range(entries)):
        raise RuntimeError(f"workload (f): result {result}, expected {sum(range(entries))}")
    if actor.step_calls != entries:
        raise RuntimeError(
            f"workload (f): the step function ran {actor.step_calls} times, expected {entries}"
            " (a replay must not run it again)"
        )
    if len(actor.entered) != 2 or len(actor.steps_done) != 2:
        raise RuntimeError(
            f"workload (f): expected 2 attempts, the handler was entered {len(actor.entered)}"
            f" times and finished its steps {len(actor.steps_done)} times"
        )
    first_in, second_in = actor.entered
    first_done, second_done = actor.steps_done
    record_s = first_done - first_in
    replay_s = second_done - second_in
    return {
        "entries": float(entries),
        "record_s": record_s,
        "record_step_us": record_s / entries * 1e6,
        "reload_s": second_in - first_done,
        "replay_s": replay_s,
        "replay_entry_us": replay_s / entries * 1e6,
        "resume_s": second_done - first_done,
        "complete_s": returned - second_done,
        "commits": float(after.commits - before.commits),
    }


def run_sequential_workflows(path: Path, invocations: int, warmup: int) -> dict[str, float]:
    """Workload (d) in a trio run of its own."""
    return trio.run(sequential_workflows, path, invocations, warmup)


def run_concurrent_workflows(
    path: Path, invocations: int, keys: int, warmup_per_key: int
) -> dict[str, float]:
    """Workload (e) in a trio run of its own."""
    return trio.run(concurrent_workflows, path, invocations, keys, warmup_per_key)


def run_replay_journal(path: Path, entries: int) -> dict[str, float]:
    """Workload (f) in a trio run of its own."""
    return trio.run(replay_journal, path, entries)
