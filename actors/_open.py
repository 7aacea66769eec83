"""Opening a node: `open_node` on a data directory, `run_node` on an open store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from storage import Codec, SimulatedCrash, Store, open_lmdb_store

from ._clock import TrioWallClock
from ._layout import TABLES
from ._node import Node
from ._options import NodeOptions
from ._registry import Registry

_log = logging.getLogger("actors")


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_leaves(exc))
        else:
            found.append(exc)
    return found


def _single_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one real error in a group from the node's nursery, if there is exactly one.

    The node's nursery is an implementation detail: an error raised in the `async with` body
    (or a simulated crash) should leave the block as itself, not wrapped in a group. A crash
    wins over the cancellations and follow-on errors it causes in other tasks.
    """
    leaves = [e for e in _leaves(group) if not isinstance(e, trio.Cancelled)]
    crashes = [e for e in leaves if isinstance(e, SimulatedCrash)]
    if crashes:
        return crashes[0]
    return leaves[0] if len(leaves) == 1 else None


@asynccontextmanager
async def run_node(
    store: Store,
    instances: Iterable[object],
    *,
    types: Iterable[type | tuple[str, type]] = (),
    options: NodeOptions | None = None,
) -> AsyncIterator[Node]:
    """Run a node on an already open store (the seam `open_node` and `actors.testing` use)."""
    options = options or NodeOptions()
    registry = Registry(instances)
    codec = Codec(types, max_size=options.max_value_size)
    clock = options.clock or TrioWallClock()
    try:
        async with trio.open_nursery() as nursery:
            node = Node(
                store=store,
                registry=registry,
                codec=codec,
                options=options,
                clock=clock,
                nursery=nursery,
            )
            await node._start()
            stale = node._recover()
            await node._drop_stale_inbox_rows(stale)
            recovered = node.statistics().invocations_in_memory
            if recovered:
                _log.info("recovered %d unfinished invocations", recovered)
            nursery.start_soon(node._sweep_expired)
            nursery.start_soon(node._fire_timers)
            try:
                yield node
            finally:
                await node._close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        single = _single_error(group)
        if single is not None:
            raise single from None
        raise


@asynccontextmanager
async def open_node(
    path: str | Path,
    instances: Iterable[object],
    *,
    types: Iterable[type | tuple[str, type]] = (),
    options: NodeOptions | None = None,
) -> AsyncIterator[Node]:
    """Open an embedded node on a data directory and run it for the `async with` body.

    On entry the node recovers: every invocation that was durably accepted and not finished is
    queued again. On exit running work is cancelled; durable invocations resume at the next
    start.

    Args:
        path: the data directory (created if missing). One node at a time may open it.
        instances: one instance of each actor class to host.
        types: extra classes (attrs, dataclass or Enum) allowed in arguments, results and
            state, optionally as ``(wire_name, cls)`` pairs.
        options: node configuration.

    Raises:
        DataDirLocked: another node has this directory open.
        DefinitionError: an instance is not a valid actor.
        StorageCorrupted: the data files are damaged.
    """
    options = options or NodeOptions()
    async with (
        open_lmdb_store(Path(path), TABLES, options.lmdb) as store,
        run_node(store, instances, types=types, options=options) as node,
    ):
        yield node
