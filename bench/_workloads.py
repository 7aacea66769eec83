"""The node workloads (a) and (b): a counter actor called durably, sequentially on one key and
concurrently on many keys.

Every call is a real durable `node.call` on a fresh node in a fresh data directory, under plain
trio (real time, real fsyncs). Each workload checks the counters' final values, so a benchmark
of a broken runtime fails instead of printing fast numbers.
"""

from __future__ import annotations

import time
from pathlib import Path

import trio

import actors
from examples.counter import Counter

from ._stats import Latencies


class _Meter:
    """Wall time, CPU time and node counters over the timed part of a workload.

    CPU is read twice: `time.thread_time` on the trio thread (the event loop's own cost per
    call, which DESIGN §4 puts at 12-15 µs for the prototype) and `time.process_time` for every
    thread (adding the store's writer thread and the kernel time of the commits).
    """

    def __init__(self, node: actors.Node) -> None:
        self._node = node
        self._before = node.statistics()
        self._wall = time.perf_counter()
        self._loop_cpu = time.thread_time()
        self._process_cpu = time.process_time()

    def stop(self, calls: int) -> dict[str, float]:
        """The counters since construction, for `calls` calls."""
        elapsed = time.perf_counter() - self._wall
        loop_cpu = time.thread_time() - self._loop_cpu
        process_cpu = time.process_time() - self._process_cpu
        after = self._node.statistics()
        commits = after.commits - self._before.commits
        batches = after.batches - self._before.batches
        return {
            "calls_per_s": calls / elapsed,
            "commits": float(commits),
            "commits_per_s": commits / elapsed,
            "calls_per_commit": calls / commits if commits else 0.0,
            "batches_per_commit": batches / commits if commits else 0.0,
            "batches_per_call": batches / calls,
            "loop_cpu_per_call_us": loop_cpu / calls * 1e6,
            "process_cpu_per_call_us": process_cpu / calls * 1e6,
        }


def _latencies(samples: list[float]) -> dict[str, float]:
    latencies = Latencies.from_seconds(samples)
    return {"p50_us": latencies.p50_us, "p99_us": latencies.p99_us, "max_us": latencies.max_us}


async def sequential_calls(path: Path, calls: int, warmup: int) -> dict[str, float]:
    """Workload (a): `calls` sequential ``node.call(Counter.add, "k", 1)`` on one key.

    Returns latency percentiles (µs), calls/s, commit counters and CPU per call, measured over
    the timed calls (the `warmup` calls before them are not counted).
    """
    async with actors.open_node(path, [Counter()]) as node:
        for _ in range(warmup):
            await node.call(Counter.add, "k", 1)
        samples: list[float] = []
        clock = time.perf_counter
        meter = _Meter(node)
        for _ in range(calls):
            t0 = clock()
            await node.call(Counter.add, "k", 1)
            samples.append(clock() - t0)
        measured = meter.stop(calls)
        final = await node.call(Counter.get, "k")
    if final != warmup + calls:
        raise RuntimeError(f"workload (a): counter is {final}, expected {warmup + calls}")
    return {**_latencies(samples), **measured}


async def concurrent_calls(
    path: Path, calls: int, keys: int, warmup_per_key: int
) -> dict[str, float]:
    """Workload (b): `keys` concurrent callers, one per key, `calls` calls in total.

    Caller i calls ``node.call(Counter.add, f"k{i}", 1)`` back to back; the calls are split as
    evenly as possible between the callers. All callers start together; the clock runs from
    their start until the last call returns.
    """
    shares = [calls // keys + (1 if i < calls % keys else 0) for i in range(keys)]
    names = [f"k{i}" for i in range(keys)]
    samples: list[float] = []
    clock = time.perf_counter
    ready = 0
    all_ready = trio.Event()
    go = trio.Event()

    async def caller(key: str, count: int) -> None:
        nonlocal ready
        ready += 1
        if ready == keys:
            all_ready.set()
        await go.wait()
        record = samples.append
        for _ in range(count):
            t0 = clock()
            await node.call(Counter.add, key, 1)
            record(clock() - t0)

    async def warm(key: str) -> None:
        for _ in range(warmup_per_key):
            await node.call(Counter.add, key, 1)

    async with actors.open_node(path, [Counter()]) as node:
        async with trio.open_nursery() as nursery:
            for key in names:
                nursery.start_soon(warm, key)
        async with trio.open_nursery() as nursery:
            for key, count in zip(names, shares, strict=True):
                nursery.start_soon(caller, key, count)
            # Every caller is parked on `go` before the clock starts, so they start together.
            await all_ready.wait()
            meter = _Meter(node)
            go.set()
        measured = meter.stop(calls)
        finals = [await node.call(Counter.get, key) for key in names]
    expected = [warmup_per_key + count for count in shares]
    if finals != expected:
        raise RuntimeError(f"workload (b): counters are {finals}, expected {expected}")
    return {**_latencies(samples), **measured}


def run_sequential(path: Path, calls: int, warmup: int) -> dict[str, float]:
    """Workload (a) in a trio run of its own."""
    return trio.run(sequential_calls, path, calls, warmup)


def run_concurrent(path: Path, calls: int, keys: int, warmup_per_key: int) -> dict[str, float]:
    """Workload (b) in a trio run of its own."""
    return trio.run(concurrent_calls, path, calls, keys, warmup_per_key)
