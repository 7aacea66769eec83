"""FaultyStore: counting, crash before a commit, crash after a commit, one injected failure,
and the crash sweep it exists for."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import (
    Batch,
    FaultyStore,
    HashRange,
    InjectedFault,
    MemoryStore,
    Record,
    SimulatedCrash,
    StorageError,
    Store,
    StoreClosed,
    open_lmdb_store,
    open_memory_store,
)

TABLES = ("a", "b")


def numbered(i: int) -> Batch:
    batch = Batch()
    batch.put("a", b"k%02d" % i, b"v%d" % i)
    return batch


async def test_counts_commits_and_delegates() -> None:
    async with open_memory_store(TABLES) as inner:
        store: Store = FaultyStore(inner)  # it is a Store
        assert isinstance(store, FaultyStore)
        assert store.tables == TABLES
        for i in range(1, 4):
            await store.commit(numbered(i))
            assert store.commits_seen == i
        await store.import_records([Record(table="b", key=b"x", value=b"y")])
        assert store.commits_seen == 4
        assert store.get("a", b"k02") == b"v2"
        assert store.scan("a", limit=1) == [(b"k01", b"v1")]
        with store.snapshot() as snapshot:
            assert snapshot.get("b", b"x") == b"y"
        assert len(list(store.export_range(HashRange.everything()))) == 4
        assert store.statistics() == inner.statistics()
        assert not store.crashed


async def test_crash_at_commit_writes_nothing_and_kills_the_store() -> None:
    async with open_memory_store(TABLES) as inner:
        store = FaultyStore(inner, crash_at_commit=3)
        await store.commit(numbered(1))
        await store.commit(numbered(2))
        with pytest.raises(SimulatedCrash, match="commit 3"):
            await store.commit(numbered(3))
        assert store.crashed
        assert inner.scan("a") == [(b"k01", b"v1"), (b"k02", b"v2")]
        with pytest.raises(SimulatedCrash):
            await store.commit(numbered(4))
        for read in (
            lambda: store.get("a", b"k01"),
            lambda: store.scan("a"),
            store.snapshot,
            lambda: store.export_range(HashRange.everything()),
        ):
            with pytest.raises(StoreClosed):
                read()
        assert inner.get("a", b"k04") is None
        assert store.commits_seen == 4


async def test_crash_after_commit_writes_the_batch_then_kills_the_store() -> None:
    async with open_memory_store(TABLES) as inner:
        store = FaultyStore(inner, crash_after_commit=2)
        await store.commit(numbered(1))
        with pytest.raises(SimulatedCrash, match="after commit 2"):
            await store.commit(numbered(2))
        assert inner.get("a", b"k02") == b"v2"  # committed, never acknowledged
        with pytest.raises(SimulatedCrash):
            await store.commit(numbered(3))
        with pytest.raises(StoreClosed):
            store.get("a", b"k01")
        assert inner.get("a", b"k03") is None


async def test_fail_at_commit_fails_once_and_carries_on() -> None:
    async with open_memory_store(TABLES) as inner:
        store = FaultyStore(inner, fail_at_commit=2)
        await store.commit(numbered(1))
        with pytest.raises(InjectedFault) as caught:
            await store.commit(numbered(2))
        assert isinstance(caught.value, StorageError)
        assert inner.get("a", b"k02") is None
        await store.commit(numbered(3))
        assert not store.crashed
        assert store.scan("a") == [(b"k01", b"v1"), (b"k03", b"v3")]


async def test_simulated_crash_is_not_an_exception() -> None:
    """`except Exception` in user or runtime code must not swallow the crash."""
    async with open_memory_store(TABLES) as inner:
        store = FaultyStore(inner, crash_at_commit=1)
        with pytest.raises(SimulatedCrash):
            try:
                await store.commit(numbered(1))
            except Exception:  # pragma: no cover - the point is that this does not run
                pytest.fail("SimulatedCrash was caught as an Exception")


async def workload(store: Store) -> None:
    """Five commits, each depending on the previous one through a precondition."""
    for i in range(1, 6):
        batch = Batch()
        batch.require("b", b"counter", None if i == 1 else b"%d" % (i - 1))
        batch.put("b", b"counter", b"%d" % i)
        batch.put("a", b"k%02d" % i, b"v%d" % i)
        await store.commit(batch)


async def test_crash_sweep_over_every_commit(tmp_path: Path) -> None:
    """The intended use: count the commits of a workload, then crash at each one in turn and
    check the invariants on a reopened store."""
    async with open_memory_store(TABLES) as inner:
        counting = FaultyStore(inner)
        await workload(counting)
        total = counting.commits_seen
    assert total == 5

    for k in range(1, total + 1):
        for mode in ("crash_at_commit", "crash_after_commit"):
            path = tmp_path / f"{mode}-{k}"
            async with open_lmdb_store(path, TABLES) as lmdb_store:
                faulty = FaultyStore(lmdb_store, **{mode: k})
                with pytest.raises(SimulatedCrash):
                    await workload(faulty)
            async with open_lmdb_store(path, TABLES) as reopened:
                durable = k - 1 if mode == "crash_at_commit" else k
                assert reopened.scan("a") == [
                    (b"k%02d" % i, b"v%d" % i) for i in range(1, durable + 1)
                ]
                counter = reopened.get("b", b"counter")
                assert counter == (b"%d" % durable if durable else None)


async def test_wraps_any_store(tmp_path: Path) -> None:
    async with open_lmdb_store(tmp_path, TABLES) as lmdb_store:
        store = FaultyStore(lmdb_store, fail_at_commit=1)
        with pytest.raises(InjectedFault):
            await store.commit(numbered(1))
        await store.commit(numbered(2))
        assert lmdb_store.scan("a") == [(b"k02", b"v2")]
        assert store.inner is lmdb_store
    memory = MemoryStore(TABLES)
    assert FaultyStore(memory).inner is memory
