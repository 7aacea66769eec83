"""The conformance suite every `Store` implementation must pass (LMDB and the in-memory twin)."""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest
import trio

from storage import (
    MAX_KEY_SIZE,
    Batch,
    BatchConflict,
    HashRange,
    PayloadTooLarge,
    Record,
    StorageError,
    StorageFull,
    Store,
    StoreClosed,
    hash_prefix,
    open_memory_store,
)

OpenStore = Callable[..., AbstractAsyncContextManager[Store]]


async def put(store: Store, table: str, key: bytes, value: bytes) -> None:
    batch = Batch()
    batch.put(table, key, value)
    await store.commit(batch)


async def test_put_get_delete(store: Store) -> None:
    assert store.tables == ("a", "b")
    assert store.get("a", b"k") is None
    await put(store, "a", b"k", b"v1")
    assert store.get("a", b"k") == b"v1"
    assert store.get("b", b"k") is None  # tables are separate
    await put(store, "a", b"k", b"v2")
    assert store.get("a", b"k") == b"v2"
    batch = Batch()
    batch.delete("a", b"k")
    batch.delete("a", b"never-there")  # deleting an absent key is not an error
    await store.commit(batch)
    assert store.get("a", b"k") is None


async def test_empty_value_round_trips(store: Store) -> None:
    await put(store, "a", b"k", b"")
    assert store.get("a", b"k") == b""
    assert store.scan("a") == [(b"k", b"")]


async def test_scan_order_bounds_reverse_limit(store: Store) -> None:
    keys = [bytes([i]) + b"-key" for i in range(0, 200, 7)] + [b"\xff" * 3, b"\x00"]
    shuffled = keys[:]
    random.Random(1).shuffle(shuffled)
    batch = Batch()
    for key in shuffled:
        batch.put("a", key, b"value of " + key)
    batch.put("b", b"other", b"x")
    await store.commit(batch)

    expected = [(key, b"value of " + key) for key in sorted(keys)]
    assert store.scan("a") == expected
    assert store.scan("a", reverse=True) == expected[::-1]
    assert store.scan("a", limit=3) == expected[:3]
    assert store.scan("a", reverse=True, limit=3) == expected[::-1][:3]
    assert store.scan("a", limit=0) == []

    start, stop = bytes([14]) + b"-key", bytes([70])
    inside = [item for item in expected if start <= item[0] < stop]
    assert inside  # the bounds select something
    assert store.scan("a", start=start, stop=stop) == inside
    assert store.scan("a", start=start, stop=stop, reverse=True) == inside[::-1]
    assert store.scan("a", start=start, stop=stop, reverse=True, limit=2) == inside[::-1][:2]
    # stop is exclusive, start inclusive, also when they are stored keys
    assert store.scan("a", start=start, stop=bytes([21]) + b"-key") == [
        (start, b"value of " + start)
    ]
    # a stop above every key, a start above every key, an empty range
    assert store.scan("a", stop=b"\xff" * 8) == expected
    assert store.scan("a", start=b"\xff" * 8) == []
    assert store.scan("a", start=stop, stop=start) == []
    assert store.scan("a", reverse=True, stop=b"\x00") == []
    assert store.scan("b") == [(b"other", b"x")]


async def test_batch_is_atomic_and_later_operations_win(store: Store) -> None:
    batch = Batch()
    batch.put("a", b"k1", b"first")
    batch.put("b", b"k2", b"other table")
    batch.put("a", b"k1", b"second")  # later put wins
    batch.put("a", b"gone", b"x")
    batch.delete("a", b"gone")  # a delete after a put wins
    batch.delete("a", b"back")
    batch.put("a", b"back", b"again")  # a put after a delete wins
    assert len(batch) == 7
    await store.commit(batch)
    assert store.scan("a") == [(b"back", b"again"), (b"k1", b"second")]
    assert store.scan("b") == [(b"k2", b"other table")]

    # A batch that fails validation writes nothing, including its valid records.
    bad = Batch()
    bad.put("a", b"k3", b"x")
    bad.put("missing", b"k", b"x")
    with pytest.raises(StorageError, match="missing"):
        await store.commit(bad)
    assert store.get("a", b"k3") is None


async def test_preconditions(store: Store) -> None:
    batch = Batch()
    batch.require("a", b"k", None)
    batch.put("a", b"k", b"v1")
    await store.commit(batch)

    batch = Batch()
    batch.require("a", b"k", b"v1")
    batch.put("a", b"k", b"v2")
    batch.put("b", b"side", b"effect")
    await store.commit(batch)
    assert store.get("a", b"k") == b"v2"

    for wrong in (None, b"v1", b"v"):
        batch = Batch()
        batch.require("a", b"k", wrong)
        batch.put("a", b"k", b"v3")
        batch.put("b", b"must-not", b"appear")
        with pytest.raises(BatchConflict, match="6b"):  # names the key in hex
            await store.commit(batch)
        assert store.get("a", b"k") == b"v2"
        assert store.get("b", b"must-not") is None

    # A batch of preconditions alone commits when they hold.
    batch = Batch()
    batch.require("a", b"k", b"v2")
    batch.require("b", b"absent", None)
    await store.commit(batch)


async def test_concurrent_compare_and_set_has_one_winner(store: Store) -> None:
    """Batches submitted together may share a commit; a conflict spoils only its own batch."""
    outcomes: dict[int, str] = {}

    async def claim(i: int) -> None:
        batch = Batch()
        batch.require("a", b"lock", None)
        batch.put("a", b"lock", b"owner %d" % i)
        batch.put("b", b"claimed by %d" % i, b"yes")
        try:
            await store.commit(batch)
        except BatchConflict:
            outcomes[i] = "conflict"
        else:
            outcomes[i] = "won"

    async def unrelated(i: int) -> None:
        await put(store, "a", b"unrelated %d" % i, b"ok")

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(claim, i)
            nursery.start_soon(unrelated, i)

    winners = [i for i, result in outcomes.items() if result == "won"]
    assert len(outcomes) == 8
    assert len(winners) == 1
    assert store.get("a", b"lock") == b"owner %d" % winners[0]
    assert store.scan("b") == [(b"claimed by %d" % winners[0], b"yes")]
    for i in range(8):
        assert store.get("a", b"unrelated %d" % i) == b"ok"


async def test_unknown_table(store: Store) -> None:
    for call in (
        lambda: store.get("nope", b"k"),
        lambda: store.scan("nope"),
    ):
        with pytest.raises(StorageError, match=r"'nope'.*'a', 'b'"):
            call()
    batch = Batch()
    batch.require("nope", b"k", None)
    with pytest.raises(StorageError, match="nope"):
        await store.commit(batch)
    with pytest.raises(StorageError, match="nope"), store.snapshot() as snapshot:
        snapshot.get("nope", b"k")


async def test_key_limits(store: Store) -> None:
    batch = Batch()
    operations: list[Callable[[bytes], None]] = [
        lambda key: batch.put("a", key, b"v"),
        lambda key: batch.delete("a", key),
        lambda key: batch.require("a", key, None),
    ]
    for operation in operations:
        with pytest.raises(PayloadTooLarge, match="empty"):
            operation(b"")
        with pytest.raises(PayloadTooLarge, match="511"):
            operation(b"k" * (MAX_KEY_SIZE + 1))
    assert not batch

    longest = b"k" * MAX_KEY_SIZE
    await put(store, "a", longest, b"v")
    assert store.get("a", longest) == b"v"

    # Records built by hand (as import does) are checked at commit too.
    batch = Batch()
    batch.records.append(Record(table="a", key=b"", value=b"v"))
    with pytest.raises(PayloadTooLarge):
        await store.commit(batch)


async def test_value_limits(open_store: OpenStore) -> None:
    small = Batch(max_value_size=10)
    small.put("a", b"k", b"x" * 10)
    with pytest.raises(PayloadTooLarge, match="11 bytes"):
        small.put("a", b"k", b"x" * 11)

    async with open_store(max_value_size=100) as store:
        await put(store, "a", b"fits", b"x" * 100)
        batch = Batch()  # its own limit is the default, larger than the store's
        batch.put("a", b"k", b"x")
        batch.put("a", b"too big", b"x" * 101)
        with pytest.raises(PayloadTooLarge, match="101 bytes"):
            await store.commit(batch)
        assert store.scan("a") == [(b"fits", b"x" * 100)]


def key_at(placement: int, suffix: bytes) -> bytes:
    return hash_prefix(placement) + suffix


async def test_export_import_round_trip(open_store: OpenStore) -> None:
    placements = [0, 5, 2**32, 2**40, 2**63, 2**64 - 1]
    hash_range = HashRange(start=5, stop=2**63)
    async with open_store() as source, open_store() as target:
        batch = Batch()
        for placement in placements:
            batch.put("a", key_at(placement, b"/state"), b"a %d" % placement)
            batch.put("b", key_at(placement, b"/inbox/1"), b"b1 %d" % placement)
            batch.put("b", key_at(placement, b"/inbox/2"), b"b2 %d" % placement)
        await source.commit(batch)

        exported = list(source.export_range(hash_range))
        inside = [p for p in placements if p in hash_range]
        assert inside == [5, 2**32, 2**40]
        assert {record.table for record in exported} == {"a", "b"}
        assert len(exported) == 3 * len(inside)
        for record in exported:
            assert int.from_bytes(record.key[:8], "big") in hash_range
            assert record.value is not None

        await target.import_records(exported)
        assert target.scan("a") == [(key_at(p, b"/state"), b"a %d" % p) for p in inside]
        assert target.scan("b") == [
            (key_at(p, suffix), b"%s %d" % (name, p))
            for p in inside
            for suffix, name in ((b"/inbox/1", b"b1"), (b"/inbox/2", b"b2"))
        ]
        everything = list(source.export_range(HashRange.everything()))
        assert len(everything) == 3 * len(placements)


async def test_snapshot_reads(store: Store) -> None:
    await put(store, "a", b"k1", b"v1")
    await put(store, "a", b"k2", b"v2")
    with store.snapshot() as snapshot:
        assert snapshot.get("a", b"k1") == b"v1"
        assert snapshot.get("a", b"k3") is None
        assert snapshot.scan("a", reverse=True, limit=1) == [(b"k2", b"v2")]


async def test_closed_store_refuses_everything(open_store: OpenStore) -> None:
    async with open_store() as store:
        await put(store, "a", b"k", b"v")
    with pytest.raises(StoreClosed):
        store.get("a", b"k")
    with pytest.raises(StoreClosed):
        store.scan("a")
    with pytest.raises(StoreClosed):
        store.snapshot()
    with pytest.raises(StoreClosed):
        store.export_range(HashRange.everything())
    with pytest.raises(StoreClosed):
        await put(store, "a", b"k", b"v")
    with pytest.raises(StoreClosed):
        await store.import_records([Record(table="a", key=b"k", value=b"v")])


async def test_statistics_move(store: Store) -> None:
    before = store.statistics()
    assert (before.commits, before.batches, before.records) == (0, 0, 0)
    batch = Batch()
    batch.put("a", b"k1", b"v")
    batch.put("a", b"k2", b"v")
    batch.delete("b", b"k3")
    await store.commit(batch)
    await store.commit(Batch())  # an empty batch commits nothing
    after = store.statistics()
    assert (after.commits, after.batches, after.records) == (1, 1, 3)
    assert after.map_grows == 0
    assert after.stale_readers_cleared == 0

    conflicting = Batch()
    conflicting.require("a", b"k1", None)
    conflicting.put("a", b"k4", b"v")
    with pytest.raises(BatchConflict):
        await store.commit(conflicting)
    assert store.statistics() == after  # a conflicting batch is not counted


# The in-memory twin's own knob: a simulated full disk.


async def test_memory_store_max_bytes_simulates_a_full_disk() -> None:
    async with open_memory_store(("a", "b"), max_bytes=100) as store:
        await put(store, "a", b"k1", b"x" * 40)  # 42 bytes used
        with pytest.raises(StorageFull, match="full"):
            await put(store, "a", b"k2", b"x" * 60)  # would need 62 more
        assert store.scan("a") == [(b"k1", b"x" * 40)]
        await put(store, "a", b"k1", b"x" * 90)  # replacing counts only the difference
        batch = Batch()
        batch.delete("a", b"k1")
        batch.put("b", b"k2", b"y" * 90)  # fits because the delete in the same batch frees room
        await store.commit(batch)
        assert store.scan("b") == [(b"k2", b"y" * 90)]
        assert store.statistics().map_size == 0
