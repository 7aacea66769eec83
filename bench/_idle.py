"""Workload (c): resident memory after many actors were activated once and went idle.

Each of N distinct keys gets one ``Counter.add`` (from a pool of concurrent callers); then the
node should hold none of them in memory (idle actors are deactivated), so the process's RSS is
the runtime's baseline plus whatever leaks per actor.

RSS is a property of the whole process, so the workload runs in a child process of its own
(``python -m bench._idle``, see `_child`): what earlier workloads allocated does not count, and
ru_maxrss is this workload's peak alone. The child prints its results as one JSON object on
stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import trio

import actors
from examples.counter import Counter

from ._child import run_child
from ._memory import read_memory

_SAMPLE_CHECKS = 100


async def idle_actors(path: Path, actor_count: int, concurrency: int) -> dict[str, float]:
    """Activate `actor_count` counters once each, wait until idle, and read memory."""
    clock = time.perf_counter
    async with actors.open_node(path, [Counter()]) as node:
        gc.collect()
        baseline = read_memory()
        next_key = iter(range(actor_count))

        async def caller() -> None:
            for i in next_key:
                await node.call(Counter.add, f"actor-{i}", 1)

        started = clock()
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(caller)
        elapsed = clock() - started
        await node.wait_idle()
        gc.collect()
        memory = read_memory()
        stats = node.statistics()
        step = max(1, actor_count // _SAMPLE_CHECKS)
        for i in range(0, actor_count, step):
            value = await node.call(Counter.get, f"actor-{i}")
            if value != 1:
                raise RuntimeError(f"workload (c): actor-{i} is {value}, expected 1")
    return {
        "rss_mb": memory.rss_mb,
        "rss_anon_mb": memory.rss_anon_mb,
        "rss_file_mb": memory.rss_file_mb,
        "maxrss_mb": memory.maxrss_mb,
        "baseline_rss_mb": baseline.rss_mb,
        "rss_growth_mb": memory.rss_mb - baseline.rss_mb,
        "active_actors": float(stats.active_actors),
        "invocations_in_memory": float(stats.invocations_in_memory),
        "calls_per_s": actor_count / elapsed,
    }


def run_idle_actors(path: Path, actor_count: int, concurrency: int) -> dict[str, float]:
    """Workload (c) in a child process; returns what the child measured.

    Raises:
        RuntimeError: the child failed (its stderr is in the message).
    """
    arguments = [
        "--dir",
        str(path),
        "--actors",
        str(actor_count),
        "--concurrency",
        str(concurrency),
    ]
    return run_child("bench._idle", "c", arguments)


def _child_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._idle", description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="fresh data directory")
    parser.add_argument("--actors", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args(argv)
    result = trio.run(idle_actors, args.dir, args.actors, args.concurrency)
    print(json.dumps(result))


if __name__ == "__main__":
    _child_main()
