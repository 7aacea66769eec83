"""Test nodes and crash helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs

from storage import FaultyStore, SimulatedCrash, open_lmdb_store, open_memory_store

from .._layout import TABLES
from .._node import Node
from .._open import run_node
from .._options import NodeOptions


@asynccontextmanager
async def open_test_node(
    path: str | Path,
    instances: Iterable[object],
    *,
    types: Iterable[type | tuple[str, type]] = (),
    options: NodeOptions | None = None,
    crash_at_commit: int | None = None,
    crash_after_commit: int | None = None,
    fail_at_commit: int | None = None,
) -> AsyncIterator[Node]:
    """Like `actors.open_node` (real LMDB files at `path`), with fault injection.

    Args:
        crash_at_commit: the k-th commit raises `storage.SimulatedCrash` before anything of it
            is written, and the node stops as if the process died.
        crash_after_commit: the k-th commit is written, then the node dies before
            acknowledging it.
        fail_at_commit: the k-th commit fails with `storage.InjectedFault` (an I/O error);
            the node keeps running.
    """
    options = options or NodeOptions()
    async with open_lmdb_store(Path(path), TABLES, options.lmdb) as lmdb_store:
        store = FaultyStore(
            lmdb_store,
            crash_at_commit=crash_at_commit,
            crash_after_commit=crash_after_commit,
            fail_at_commit=fail_at_commit,
        )
        async with run_node(store, instances, types=types, options=options) as node:
            yield node


@asynccontextmanager
async def open_memory_node(
    instances: Iterable[object],
    *,
    types: Iterable[type | tuple[str, type]] = (),
    options: NodeOptions | None = None,
) -> AsyncIterator[Node]:
    """A node on the in-memory twin of the store: fast, nothing touches the disk, nothing
    survives the `async with` block. For unit tests of actor logic."""
    options = options or NodeOptions()
    async with (
        open_memory_store(TABLES, max_value_size=options.max_value_size + 4096) as store,
        run_node(store, instances, types=types, options=options) as node,
    ):
        yield node


@attrs.frozen(kw_only=True)
class CrashReport:
    """What `run_until_crash` observed."""

    crashed: bool
    """True if the simulated crash happened before the workload finished."""
    commits: int
    """Commits that were attempted (the crash point included)."""


async def run_until_crash(
    path: str | Path,
    instances: Iterable[object],
    workload: Callable[[Node], Awaitable[None]],
    *,
    types: Iterable[type | tuple[str, type]] = (),
    options: NodeOptions | None = None,
    crash_at_commit: int | None = None,
    crash_after_commit: int | None = None,
) -> CrashReport:
    """Run `workload` on a test node that dies at the given commit, and report.

    Reopen the same `path` with `actors.open_node` afterwards to check recovery. With no crash
    point the workload runs to the end, and `commits` tells how many commits it took (the
    range to sweep).
    """
    options = options or NodeOptions()
    async with open_lmdb_store(Path(path), TABLES, options.lmdb) as lmdb_store:
        store = FaultyStore(
            lmdb_store, crash_at_commit=crash_at_commit, crash_after_commit=crash_after_commit
        )
        try:
            async with run_node(store, instances, types=types, options=options) as node:
                await workload(node)
        except SimulatedCrash:
            return CrashReport(crashed=True, commits=store.commits_seen)
        return CrashReport(crashed=False, commits=store.commits_seen)
