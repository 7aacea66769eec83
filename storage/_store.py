"""The store interface shared by the LMDB store, its in-memory twin and the fault injector.

A store holds named tables of byte keys and byte values. All writes go through `Store.commit`,
which returns only once the batch is durable; reads are synchronous and never span an `await`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

import attrs

from ._errors import PayloadTooLarge
from ._keys import MAX_KEY_SIZE, HashRange

DEFAULT_MAX_VALUE_SIZE = 8 * 1024 * 1024


class Record(NamedTuple):
    """One stored item: `value` is None in a batch to mean "delete".

    A named tuple rather than an attrs class: a batch holds one per put or delete, and building
    them is on the path of every durable step.
    """

    table: str
    key: bytes
    value: bytes | None


@attrs.frozen(kw_only=True)
class Precondition:
    """At commit time `table[key]` must equal `value` (None: must be absent)."""

    table: str
    key: bytes
    value: bytes | None


_new_record = tuple.__new__
"""Builds a `Record` from a tuple without the named tuple's Python-level constructor."""


def check_key(key: bytes) -> None:
    """Refuse keys LMDB cannot store (empty, or longer than 511 bytes)."""
    if not key:
        raise PayloadTooLarge("empty keys cannot be stored; give the key at least one byte")
    if len(key) > MAX_KEY_SIZE:
        raise PayloadTooLarge(
            f"key of {len(key)} bytes exceeds the {MAX_KEY_SIZE}-byte limit; use a shorter key"
        )


@attrs.define
class Batch:
    """An ordered set of puts and deletes committed atomically, with optional preconditions.

    Later operations on the same key win. Size limits are checked as operations are added, so an
    oversized value is refused before anything is submitted.
    """

    max_value_size: int = DEFAULT_MAX_VALUE_SIZE
    records: list[Record] = attrs.field(factory=list)
    preconditions: list[Precondition] = attrs.field(factory=list)

    def put(self, table: str, key: bytes, value: bytes) -> None:
        """Store `value` under `table[key]`.

        Raises:
            PayloadTooLarge: the key is empty or too long, or the value exceeds the limit.
        """
        if not key or len(key) > MAX_KEY_SIZE:
            check_key(key)
        if len(value) > self.max_value_size:
            raise PayloadTooLarge(
                f"value of {len(value)} bytes for table {table!r} exceeds the limit of"
                f" {self.max_value_size} bytes; store smaller values or raise max_value_size"
            )
        self.records.append(_new_record(Record, (table, key, value)))

    def delete(self, table: str, key: bytes) -> None:
        """Remove `table[key]` (no error if it is absent)."""
        if not key or len(key) > MAX_KEY_SIZE:
            check_key(key)
        self.records.append(_new_record(Record, (table, key, None)))

    def require(self, table: str, key: bytes, value: bytes | None) -> None:
        """Only commit this batch if `table[key]` equals `value` (None: is absent)."""
        check_key(key)
        self.preconditions.append(Precondition(table=table, key=key, value=value))

    def extend(self, other: Batch) -> None:
        """Append every operation and precondition of `other`."""
        self.records.extend(other.records)
        self.preconditions.extend(other.preconditions)

    def __len__(self) -> int:
        return len(self.records)

    def __bool__(self) -> bool:
        return bool(self.records or self.preconditions)


@attrs.frozen(kw_only=True)
class StoreStatistics:
    """A snapshot of a store's counters."""

    commits: int
    """Durable write transactions (one fsync each, for the LMDB store)."""
    batches: int
    """Batches submitted and committed (several batches share a commit under group commit)."""
    records: int
    """Puts and deletes written."""
    map_size: int
    """Current LMDB map size in bytes (0 for the in-memory store)."""
    map_grows: int
    """How often the map was grown after filling up."""
    stale_readers_cleared: int
    """Reader slots of dead processes cleared at start-up."""


class Reader(Protocol):
    """Synchronous reads of committed data (a short read transaction or a snapshot)."""

    def get(self, table: str, key: bytes) -> bytes | None:
        """The value of `table[key]`, or None.

        Raises:
            StorageCorrupted: the stored bytes fail their checksum.
        """
        ...

    def scan(
        self,
        table: str,
        *,
        start: bytes = b"",
        stop: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Items with `start <= key < stop` in key order (descending if `reverse`)."""
        ...


class Store(Reader, Protocol):
    """A durable table store. See `open_lmdb_store` and `open_memory_store`."""

    @property
    def tables(self) -> tuple[str, ...]:
        """The table names this store was opened with."""
        ...

    async def commit(self, batch: Batch) -> None:
        """Write `batch` atomically and return once it is durable.

        Not cancellable once submitted: the commit may land even if the caller's scope is
        cancelled, so callers shield it or treat cancellation as "unknown outcome".

        Raises:
            BatchConflict: a precondition did not hold; nothing of this batch was written.
            StorageFull: no space is left; nothing of this batch was written.
            StoreClosed: the store is closed.
            StorageError: any other failure; nothing of this batch was written.
        """
        ...

    def snapshot(self) -> AbstractContextManager[Reader]:
        """A consistent read view for several reads; leave it before the next `await`."""
        ...

    def export_range(self, hash_range: HashRange) -> Iterator[Record]:
        """Every record of every table whose key's placement hash lies in `hash_range`,
        read from one consistent snapshot."""
        ...

    async def import_records(self, records: Iterable[Record]) -> None:
        """Durably write `records` (as exported elsewhere) in one batch."""
        ...

    def statistics(self) -> StoreStatistics:
        """Counters since the store was opened."""
        ...
