"""Differential test: the LMDB store under group commit behaves like the in-memory twin
committing the same batches one at a time.

hypothesis-trio does not work with current Hypothesis, so each example is a drawn program run
inside its own `trio.run`.
"""

from __future__ import annotations

import tempfile

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import (
    Batch,
    BatchConflict,
    LmdbOptions,
    Store,
    open_lmdb_store,
    open_memory_store,
)

TABLES = ("a", "b")

tables = st.sampled_from(TABLES)
keys = st.sampled_from([b"k0", b"k1", b"k2", b"k3\x00", b"\xff"])
values = st.sampled_from([b"", b"x", b"yy", b"z" * 300])
operations = st.one_of(
    st.tuples(st.just("put"), tables, keys, values),
    st.tuples(st.just("delete"), tables, keys, st.none()),
    st.tuples(st.just("require"), tables, keys, st.none() | values),
)
Operation = tuple[str, str, bytes, bytes | None]
Contents = dict[str, list[tuple[bytes, bytes]]]
# A program is a list of groups; the batches of a group are submitted together.
programs = st.lists(
    st.lists(st.lists(operations, max_size=6), min_size=1, max_size=5), min_size=1, max_size=6
)


def build(operations: list[Operation]) -> Batch:
    batch = Batch()
    for kind, table, key, value in operations:
        if kind == "put":
            assert value is not None
            batch.put(table, key, value)
        elif kind == "delete":
            batch.delete(table, key)
        else:
            batch.require(table, key, value)
    return batch


async def commit_outcome(store: Store, batch: Batch) -> str:
    try:
        await store.commit(batch)
    except BatchConflict:
        return "conflict"
    return "ok"


async def run_on_lmdb(
    path: str, program: list[list[list[Operation]]]
) -> tuple[list[str], Contents]:
    outcomes: list[str] = []
    # A tiny map so that growth (abort, grow, retry the whole group) is exercised too.
    async with open_lmdb_store(path, TABLES, LmdbOptions(map_size=32 * 1024)) as store:
        for group in program:
            results: list[str] = [""] * len(group)

            async def submit(
                results: list[str],
                i: int,
                batch: Batch,
                *,
                task_status: trio.TaskStatus[None],
            ) -> None:
                # started() does not yield, so this task reaches commit() (which queues the
                # batch synchronously) before the next one starts: the submission order is
                # the program order, while the writer is free to merge them into groups.
                task_status.started()
                results[i] = await commit_outcome(store, batch)

            async with trio.open_nursery() as nursery:
                for i, batch_ops in enumerate(group):
                    await nursery.start(submit, results, i, build(batch_ops))
            outcomes.extend(results)
        contents = {table: store.scan(table) for table in TABLES}
    # And it is all still there after reopening.
    async with open_lmdb_store(path, TABLES) as store:
        assert {table: store.scan(table) for table in TABLES} == contents
    return outcomes, contents


async def run_on_memory(program: list[list[list[Operation]]]) -> tuple[list[str], Contents]:
    outcomes: list[str] = []
    async with open_memory_store(TABLES) as store:
        for group in program:
            for batch_ops in group:
                outcomes.append(await commit_outcome(store, build(batch_ops)))
        contents = {table: store.scan(table) for table in TABLES}
    return outcomes, contents


@settings(
    max_examples=50,
    deadline=None,  # every example fsyncs; disk latency is not what is under test
    suppress_health_check=[HealthCheck.too_slow],
)
@given(program=programs)
def test_lmdb_matches_memory(program: list[list[list[Operation]]]) -> None:
    with tempfile.TemporaryDirectory() as path:

        async def main() -> None:
            lmdb_result = await run_on_lmdb(path, program)
            memory_result = await run_on_memory(program)
            assert lmdb_result == memory_result

        trio.run(main)
