"""The in-memory twin of the LMDB store.

It follows the same contract as `LmdbStore` (ordered scans, atomic batches, preconditions,
size limits, a simulated full disk) so that the runtime's tests can run against it quickly and
deterministically, and so that the LMDB store can be tested differentially against it.
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from typing import TYPE_CHECKING

import trio

from ._errors import BatchConflict, PayloadTooLarge, StorageError, StorageFull, StoreClosed
from ._keys import MAX_KEY_SIZE, HashRange
from ._store import (
    DEFAULT_MAX_VALUE_SIZE,
    Batch,
    Precondition,
    Reader,
    Record,
    Store,
    StoreStatistics,
    check_key,
)


def check_batch(batch: Batch, tables: Sequence[str], max_value_size: int) -> None:
    """Validate `batch` against a store before anything of it is submitted.

    Shared by every store so they refuse the same inputs with the same errors. `Batch.put`
    already checks sizes, but records can also be built directly (for example by
    `import_records`) and the batch's own limit may be larger than the store's.

    Raises:
        StorageError: a record or precondition names a table the store does not have.
        PayloadTooLarge: a key is empty or too long, or a value exceeds `max_value_size`.
    """
    # The hot path of every commit: one loop with no calls unless something is wrong.
    for table, key, value in batch.records:
        if table not in tables:
            check_table(table, tables)
        if not key or len(key) > MAX_KEY_SIZE:
            check_key(key)
        if value is not None and len(value) > max_value_size:
            raise PayloadTooLarge(
                f"value of {len(value)} bytes for table {table!r} exceeds the"
                f" store's limit of {max_value_size} bytes; store smaller values or raise"
                " max_value_size"
            )
    for precondition in batch.preconditions:
        check_table(precondition.table, tables)
        check_key(precondition.key)


def check_table(table: str, tables: Sequence[str]) -> None:
    """Raise StorageError if `table` is not one of `tables`."""
    if table not in tables:
        raise StorageError(
            f"unknown table {table!r}; this store was opened with tables {list(tables)!r}"
            " (pass every table you need when opening the store)"
        )


def conflict_error(precondition: Precondition, current: bytes | None) -> BatchConflict:
    """The error for a precondition that did not hold (shared so every store says the same)."""

    def describe(value: bytes | None) -> str:
        return "absent" if value is None else f"a {len(value)}-byte value"

    expected = describe(precondition.value)
    found = describe(current)
    if found == expected:
        found = f"a different {len(current or b'')}-byte value"
    return BatchConflict(
        f"precondition failed on table {precondition.table!r} key {precondition.key.hex()}:"
        f" expected {expected}, found {found}; nothing of this batch was written"
    )


def scan_sorted(
    keys: Sequence[bytes],
    values: Mapping[bytes, bytes],
    *,
    start: bytes,
    stop: bytes | None,
    reverse: bool,
    limit: int | None,
) -> list[tuple[bytes, bytes]]:
    """The items of a sorted key list with `start <= key < stop`, as `Reader.scan` defines."""
    lo = bisect.bisect_left(keys, start)
    hi = len(keys) if stop is None else bisect.bisect_left(keys, stop)
    if hi <= lo or (limit is not None and limit <= 0):
        return []
    selected = keys[lo:hi]
    if reverse:
        selected = selected[::-1]
    if limit is not None:
        selected = selected[:limit]
    return [(key, values[key]) for key in selected]


class _Table:
    """One table: a dict for lookups plus a sorted key list so scans come out in key order."""

    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.values: dict[bytes, bytes] = {}
        self.keys: list[bytes] = []

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self.values:
            bisect.insort(self.keys, key)
        self.values[key] = value

    def delete(self, key: bytes) -> None:
        if self.values.pop(key, None) is not None:
            del self.keys[bisect.bisect_left(self.keys, key)]


class _MemoryReader:
    """Reads over the live tables; valid only until the next `await`, like a read txn."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def get(self, table: str, key: bytes) -> bytes | None:
        return self._store.get(table, key)

    def scan(
        self,
        table: str,
        *,
        start: bytes = b"",
        stop: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        return self._store.scan(table, start=start, stop=stop, reverse=reverse, limit=limit)


class MemoryStore:
    """A `Store` that keeps its tables in memory. Nothing survives `aclose`.

    Args:
        tables: The table names; any other name is refused.
        max_value_size: The largest value accepted, as for the LMDB store.
        max_bytes: If set, a commit that would make the sum of all key and value sizes exceed
            this raises `StorageFull` (a simulated full disk) and writes nothing.
    """

    def __init__(
        self,
        tables: Iterable[str],
        *,
        max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
        max_bytes: int | None = None,
    ) -> None:
        self._tables: tuple[str, ...] = tuple(dict.fromkeys(tables))
        self._data: dict[str, _Table] = {name: _Table() for name in self._tables}
        self._max_value_size = max_value_size
        self._max_bytes = max_bytes
        self._bytes_used = 0
        self._closed = False
        self._commits = 0
        self._batches = 0
        self._records = 0

    @property
    def tables(self) -> tuple[str, ...]:
        """The table names this store was opened with."""
        return self._tables

    @property
    def closed(self) -> bool:
        """Whether `aclose` has been called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the memory store is closed; open a new store")

    def _table(self, table: str) -> _Table:
        self._check_open()
        check_table(table, self._tables)
        return self._data[table]

    def get(self, table: str, key: bytes) -> bytes | None:
        """The value of `table[key]`, or None.

        Raises:
            StorageError: `table` is unknown.
            StoreClosed: the store is closed.
        """
        return self._table(table).values.get(key)

    def scan(
        self,
        table: str,
        *,
        start: bytes = b"",
        stop: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Items with `start <= key < stop` in key order (descending if `reverse`).

        Args:
            table: The table to read.
            start: The first key included.
            stop: The first key excluded; None reads to the end.
            reverse: Return the items in descending key order.
            limit: Return at most this many items (the first ones in the chosen order).

        Raises:
            StorageError: `table` is unknown.
            StoreClosed: the store is closed.
        """
        data = self._table(table)
        return scan_sorted(
            data.keys, data.values, start=start, stop=stop, reverse=reverse, limit=limit
        )

    def snapshot(self) -> AbstractContextManager[Reader]:
        """A read view; it reads the live tables, which cannot change before the next `await`.

        Raises:
            StoreClosed: the store is closed.
        """
        self._check_open()
        return nullcontext(_MemoryReader(self))

    async def commit(self, batch: Batch) -> None:
        """Apply `batch` atomically after one checkpoint.

        Raises:
            BatchConflict: a precondition did not hold; nothing of this batch was written.
            StorageFull: `max_bytes` would be exceeded; nothing of this batch was written.
            PayloadTooLarge: a key or value is outside the limits.
            StorageError: a table is unknown.
            StoreClosed: the store is closed.
        """
        self._check_open()
        check_batch(batch, self._tables, self._max_value_size)
        if not batch:
            # Nothing to write or check; counted nowhere, as in the LMDB store.
            await trio.lowlevel.checkpoint()
            return
        # Yield once, as a real commit would, so concurrent committers interleave here and
        # callers cannot come to rely on commit being atomic with their own previous step.
        await trio.lowlevel.checkpoint()
        self._check_open()
        for precondition in batch.preconditions:
            current = self._data[precondition.table].values.get(precondition.key)
            if current != precondition.value:
                raise conflict_error(precondition, current)
        # Later operations on the same key win, so only the last one per key counts for size.
        final: dict[tuple[str, bytes], bytes | None] = {}
        for record in batch.records:
            final[(record.table, record.key)] = record.value
        delta = 0
        for (table, key), value in final.items():
            old = self._data[table].values.get(key)
            if old is not None:
                delta -= len(key) + len(old)
            if value is not None:
                delta += len(key) + len(value)
        if self._max_bytes is not None and delta > 0 and self._bytes_used + delta > self._max_bytes:
            raise StorageFull(
                f"the memory store is full ({self._bytes_used} of {self._max_bytes} bytes used,"
                f" the batch needs {delta} more); free space and retry"
            )
        for (table, key), value in final.items():
            if value is None:
                self._data[table].delete(key)
            else:
                self._data[table].put(key, value)
        self._bytes_used += delta
        self._commits += 1
        self._batches += 1
        self._records += len(batch.records)

    def export_range(self, hash_range: HashRange) -> Iterator[Record]:
        """Every record whose key's placement hash lies in `hash_range`, table by table.

        The records are collected before the first one is yielded, so the result is one
        consistent snapshot even if the caller awaits between items.

        Raises:
            StoreClosed: the store is closed.
        """
        self._check_open()
        start, stop = hash_range.key_bounds()
        records = [
            Record(table=table, key=key, value=value)
            for table in self._tables
            for key, value in self.scan(table, start=start, stop=stop)
        ]
        return iter(records)

    async def import_records(self, records: Iterable[Record]) -> None:
        """Write `records` in one batch (a None value deletes).

        Raises:
            StorageFull: `max_bytes` would be exceeded; nothing was written.
            PayloadTooLarge: a key or value is outside the limits.
            StorageError: a table is unknown.
            StoreClosed: the store is closed.
        """
        batch = Batch(max_value_size=self._max_value_size)
        batch.records.extend(records)
        await self.commit(batch)

    def statistics(self) -> StoreStatistics:
        """Counters since the store was opened (map sizes are 0: there is no map)."""
        return StoreStatistics(
            commits=self._commits,
            batches=self._batches,
            records=self._records,
            map_size=0,
            map_grows=0,
            stale_readers_cleared=0,
        )

    async def aclose(self) -> None:
        """Close the store and drop its data; later calls raise `StoreClosed`."""
        self._closed = True
        self._data = {}
        await trio.lowlevel.checkpoint()


@asynccontextmanager
async def open_memory_store(
    tables: Iterable[str],
    *,
    max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
    max_bytes: int | None = None,
) -> AsyncIterator[MemoryStore]:
    """Open an in-memory store, closed when the block exits.

    Args:
        tables: The table names; any other name is refused.
        max_value_size: The largest value accepted.
        max_bytes: If set, commits that would store more key and value bytes than this raise
            `StorageFull` (a simulated full disk).
    """
    store = MemoryStore(tables, max_value_size=max_value_size, max_bytes=max_bytes)
    try:
        yield store
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()


if TYPE_CHECKING:

    def _implements_store(store: MemoryStore) -> Store:
        return store
