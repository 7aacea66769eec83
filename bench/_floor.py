"""The floor: how long one durable LMDB commit of one small put takes on this disk.

Measured twice: with raw py-lmdb (the physical floor: one write transaction, one fsync), and
through `storage`'s `LmdbStore.commit` from a trio task (the same commit plus the hand-off to the
store's writer thread and the wake-up back on the trio thread). The difference is the store's
overhead; the runtime's targets are relative to the raw floor.
"""

from __future__ import annotations

import time
from pathlib import Path

import lmdb
import trio

from storage import Batch, LmdbOptions, open_lmdb_store

from ._stats import Latencies

_TABLE = "floor"
_KEY = b"floor-key"
_MAP_SIZE = 64 * 1024 * 1024


def _value(i: int) -> bytes:
    # A small value that changes every commit, like a counter's state.
    return i.to_bytes(8, "big") * 4


def open_durable_env(path: Path, map_size: int, max_dbs: int) -> lmdb.Environment:
    """Open an LMDB environment the way the store opens it: sync, metasync, no writemap."""
    env = lmdb.open(
        str(path),
        map_size=map_size,
        subdir=True,
        sync=True,
        metasync=True,
        writemap=False,
        map_async=False,
        lock=True,
        max_dbs=max_dbs,
    )
    flags = env.flags()
    if not (flags["sync"] and flags["metasync"]):
        env.close()
        raise RuntimeError(f"LMDB did not open {path} durably: {flags}")
    return env


def raw_lmdb_floor(path: Path, commits: int, warmup: int) -> dict[str, float]:
    """Commit one small put `commits` times with raw py-lmdb, durably; time each commit.

    The environment is opened the way the store opens it (sync, metasync, no writemap, a named
    table), so the two floors differ only by the store's own code.
    """
    env = open_durable_env(path, _MAP_SIZE, max_dbs=2)
    try:
        db = env.open_db(_TABLE.encode())
        for i in range(warmup):
            with env.begin(write=True, db=db) as txn:
                txn.put(_KEY, _value(i))
        samples: list[float] = []
        clock = time.perf_counter
        started = clock()
        for i in range(commits):
            t0 = clock()
            with env.begin(write=True, db=db) as txn:
                txn.put(_KEY, _value(i))
            samples.append(clock() - t0)
        elapsed = clock() - started
    finally:
        env.close()
    return _summary(samples, elapsed)


async def store_floor(path: Path, commits: int, warmup: int) -> dict[str, float]:
    """Commit one small put `commits` times through `LmdbStore.commit`; time each commit."""
    async with open_lmdb_store(path, [_TABLE], LmdbOptions(map_size=_MAP_SIZE)) as store:
        for i in range(warmup):
            batch = Batch()
            batch.put(_TABLE, _KEY, _value(i))
            await store.commit(batch)
        samples: list[float] = []
        clock = time.perf_counter
        started = clock()
        for i in range(commits):
            batch = Batch()
            batch.put(_TABLE, _KEY, _value(i))
            t0 = clock()
            await store.commit(batch)
            samples.append(clock() - t0)
        elapsed = clock() - started
    return _summary(samples, elapsed)


def run_store_floor(path: Path, commits: int, warmup: int) -> dict[str, float]:
    """`store_floor` in a trio run of its own."""
    return trio.run(store_floor, path, commits, warmup)


def _summary(samples: list[float], elapsed: float) -> dict[str, float]:
    latencies = Latencies.from_seconds(samples)
    return {
        "p50_us": latencies.p50_us,
        "p99_us": latencies.p99_us,
        "max_us": latencies.max_us,
        "commits_per_s": len(samples) / elapsed,
    }
