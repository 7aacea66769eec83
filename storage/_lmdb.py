"""The LMDB table store: one environment per node, group commit on one writer thread.

Threading model (DESIGN §4, RELIABILITY §4):

- Every write transaction runs on one long-lived writer thread, begun and committed inside one
  function call: LMDB write transactions are bound to their thread and must never span an
  `await`. Callers on the trio thread queue a batch and park; the writer merges every batch queued
  while the previous commit was in flight into one transaction (one fsync for all of them), then
  wakes all their callers with one `run_sync_soon`.
- Reads run on the trio thread in short read transactions that never span an `await`.
- The map is grown on the trio thread, between task steps, because `mdb_env_set_mapsize` may only
  be called while no transaction is active in the process; the writer waits for it.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import queue
import re
import threading
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final

import attrs
import lmdb
import outcome
import trio

from ._errors import (
    DataDirLocked,
    ForkedEnvironment,
    StorageCorrupted,
    StorageError,
    StorageFull,
    StoreClosed,
)
from ._keys import HashRange
from ._memory import check_batch, check_table, conflict_error
from ._store import DEFAULT_MAX_VALUE_SIZE, Batch, Record, Store, StoreStatistics

if TYPE_CHECKING:
    from typing import TypeAlias

    _Db: TypeAlias = lmdb._Database
    _Txn: TypeAlias = lmdb.Transaction[bytes]

__all__ = ["LmdbOptions", "LmdbStore", "open_lmdb_store"]

logger = logging.getLogger(__name__)

_MIB = 1024 * 1024
_CHECKSUM_SIZE = 4
# A write that fails with EIO while less than this (plus the batch) is free counts as a full disk.
_DISK_SLACK = 4 * _MIB
_LOCK_FILE = "node.lock"
# LMDB's own advice is never to put an environment on a network filesystem: its locking and
# mmap coherence do not hold there.
_NETWORK_FS: Final = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "9p", "ceph", "glusterfs", "afs"}
)


def _virtual_time() -> bool:
    """Whether this trio run uses a virtual clock (trio's `MockClock`, in tests).

    Then every commit runs inline on the trio thread (RELIABILITY §2.1, "StorageExecutor"): a
    commit in flight on the writer thread would leave every task blocked, and an autojump
    clock would leap ahead meanwhile, so virtual time would stop being exact.
    """
    return hasattr(trio.lowlevel.current_clock(), "autojump_threshold")


def _abort_failed(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
    """A queued commit cannot be taken back: the writer may already be committing it."""
    return trio.lowlevel.Abort.FAILED


# Bumped in every forked child, so the per-call fork check is a list read, not a getpid()
# system call; the pid comparison then confirms it.
_FORK_GENERATION = [0]


def _after_fork_in_child() -> None:
    _FORK_GENERATION[0] += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


@attrs.frozen(kw_only=True)
class LmdbOptions:
    """How to open the LMDB environment.

    Attributes:
        map_size: The initial map size in bytes; it grows (doubling) when it fills up.
        max_map_size: The largest the map may grow to; None lets it grow until the disk is full.
            Commits that do not fit raise `StorageFull`.
        max_readers: Reader slots, i.e. how many read transactions may be open at once.
        max_value_size: The largest value accepted by `commit`.
        sync: Flush to disk at every commit. Turning it off loses acknowledged commits on a
            power cut, so it needs `i_accept_data_loss=True` (for benchmarks and test controls).
        i_accept_data_loss: Acknowledge that `sync=False` is not durable.
    """

    map_size: int = attrs.field(default=64 * _MIB, validator=_positive)
    max_map_size: int | None = None
    max_readers: int = attrs.field(default=126, validator=_positive)
    max_value_size: int = attrs.field(default=DEFAULT_MAX_VALUE_SIZE, validator=_positive)
    sync: bool = True
    i_accept_data_loss: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.sync and not self.i_accept_data_loss:
            raise ValueError(
                "sync=False makes commits return before they reach the disk, so a power cut or"
                " kernel crash loses acknowledged data; pass i_accept_data_loss=True if that is"
                " really what you want (benchmarks and test controls only)"
            )
        if self.max_map_size is not None and self.max_map_size < self.map_size:
            raise ValueError(
                f"max_map_size ({self.max_map_size}) must be at least map_size ({self.map_size})"
            )


_DEFAULT_OPTIONS: Final = LmdbOptions()


def _seal(payload: bytes) -> bytes:
    """The stored form of a value: the payload and its CRC32, because LMDB checks nothing."""
    return payload + zlib.crc32(payload).to_bytes(_CHECKSUM_SIZE, "little")


def _unseal(stored: bytes, table: str, key: bytes) -> bytes:
    """The payload of a stored value, after checking its CRC32."""
    payload = stored[:-_CHECKSUM_SIZE]
    if len(stored) < _CHECKSUM_SIZE or zlib.crc32(payload) != int.from_bytes(
        stored[-_CHECKSUM_SIZE:], "little"
    ):
        raise StorageCorrupted(
            f"the value of table {table!r} key {key.hex()} fails its checksum: the data file is"
            " damaged; restore the node's data from a replica or a backup"
        )
    return payload


def _read_error(exc: lmdb.Error, path: str) -> StorageError:
    """Translate an LMDB error raised by a read."""
    if isinstance(exc, lmdb.CorruptedError | lmdb.PageNotFoundError):
        return StorageCorrupted(
            f"LMDB found damaged pages in {path}: the data file is damaged; restore the node's"
            f" data from a replica or a backup ({exc})"
        )
    if isinstance(exc, lmdb.ReadersFullError):
        return StorageError(
            f"all reader slots of {path} are in use; raise LmdbOptions.max_readers or read less"
            f" concurrently ({exc})"
        )
    return StorageError(f"reading {path} failed: {exc}")


def _txn_get(txn: _Txn, db: _Db, table: str, key: bytes) -> bytes | None:
    stored = txn.get(key, db=db)
    return None if stored is None else _unseal(stored, table, key)


def _txn_scan(
    txn: _Txn,
    db: _Db,
    table: str,
    *,
    start: bytes,
    stop: bytes | None,
    reverse: bool,
    limit: int | None,
) -> list[tuple[bytes, bytes]]:
    items: list[tuple[bytes, bytes]] = []
    if limit is not None and limit <= 0:
        return items
    if stop is not None and stop <= start:
        return items
    with txn.cursor(db=db) as cursor:
        if reverse:
            if stop is None:
                positioned = cursor.last()
            elif cursor.set_range(stop):
                # set_range lands on the first key >= stop, which is excluded: step back.
                positioned = cursor.prev()
            else:
                positioned = cursor.last()
            while positioned:
                key = cursor.key()
                if key < start:
                    break
                items.append((key, _unseal(cursor.value(), table, key)))
                if limit is not None and len(items) >= limit:
                    break
                positioned = cursor.prev()
        else:
            positioned = cursor.set_range(start) if start else cursor.first()
            while positioned:
                key = cursor.key()
                if stop is not None and key >= stop:
                    break
                items.append((key, _unseal(cursor.value(), table, key)))
                if limit is not None and len(items) >= limit:
                    break
                positioned = cursor.next()
    return items


class _Snapshot:
    """A `Reader` over one read transaction, opened on entry and closed on exit."""

    def __init__(self, store: LmdbStore) -> None:
        self._store = store
        self._txn: _Txn | None = None

    def __enter__(self) -> _Snapshot:
        self._txn = self._store._begin_read()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        txn, self._txn = self._txn, None
        if txn is not None:
            self._store._end_read(txn)

    def _current(self) -> _Txn:
        if self._txn is None:
            raise StorageError("the snapshot is used outside its `with` block")
        self._store._check_usable()
        return self._txn

    def get(self, table: str, key: bytes) -> bytes | None:
        """The value of `table[key]` in this snapshot, or None.

        Raises:
            StorageCorrupted: the stored bytes fail their checksum.
            StorageError: `table` is unknown, or LMDB failed.
        """
        txn = self._current()
        db = self._store._db(table)
        try:
            return _txn_get(txn, db, table, key)
        except lmdb.Error as exc:
            raise _read_error(exc, self._store.path) from exc

    def scan(
        self,
        table: str,
        *,
        start: bytes = b"",
        stop: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Items with `start <= key < stop` in this snapshot; see `LmdbStore.scan`.

        Raises:
            StorageCorrupted: a stored value fails its checksum.
            StorageError: `table` is unknown, or LMDB failed.
        """
        txn = self._current()
        db = self._store._db(table)
        try:
            return _txn_scan(txn, db, table, start=start, stop=stop, reverse=reverse, limit=limit)
        except lmdb.Error as exc:
            raise _read_error(exc, self._store.path) from exc


# One queued commit: the batch and the parked task waiting for it.
_Item = tuple[Batch, trio.lowlevel.Task]
_Results = list[tuple[trio.lowlevel.Task, outcome.Outcome[None]]]


def _fail_all(group: list[_Item], error: StorageError) -> _Results:
    """The same failure for every batch of a group, as one exception object per caller: an
    exception raised in several tasks at once would collect all their tracebacks."""
    results: _Results = []
    for _, task in group:
        copy = type(error)(*error.args)
        copy.__cause__ = error.__cause__
        results.append((task, outcome.Error(copy)))
    return results


class _GroupFailed(Exception):
    """Every batch of the current group fails with `error` (raised inside the writer)."""

    def __init__(self, error: StorageError) -> None:
        super().__init__(str(error))
        self.error = error


class LmdbStore:
    """A `Store` on one LMDB environment. Open it with `open_lmdb_store`."""

    def __init__(
        self,
        *,
        path: str,
        env: lmdb.Environment,
        dbs: dict[str, _Db],
        lock_fd: int | None,
        options: LmdbOptions,
        stale_readers_cleared: int,
        trio_token: trio.lowlevel.TrioToken,
    ) -> None:
        # Private: `open_lmdb_store` takes the lock, opens the env and creates the tables.
        self._path = path
        self._env = env
        self._dbs = dbs
        self._tables = tuple(dbs)
        self._lock_fd = lock_fd
        self._options = options
        self._pid = os.getpid()
        self._fork_generation = _FORK_GENERATION[0]
        self._inline_commits = 0
        self._deliveries = 0
        """Group wake-ups delivered by the writer (see the inline path of `commit`)."""
        self._entering = 0
        self._gathered: list[_Item] = []
        """Batches of tasks that committed during another committer's schedule point."""
        self._token = trio_token
        self._virtual = _virtual_time()
        """Whether the run that opened the store (the only one that may commit) has a virtual
        clock: then every commit is inline."""
        self._closed = False
        # None is the stop signal for the writer thread.
        self._queue: queue.SimpleQueue[list[_Item] | None] = queue.SimpleQueue()
        """What the writer commits: lists of batches, each list taken whole into one group."""
        self._waiting: set[trio.lowlevel.Task] = set()
        # Counters written by the writer thread; plain ints are safe to read under the GIL.
        self._commits = 0
        self._batches = 0
        self._records = 0
        self._map_grows = 0
        self._stale_readers_cleared = stale_readers_cleared
        self._map_size = env.info()["map_size"]
        # Map growth must wait until no read transaction is open (see _grow_on_trio_thread).
        self._open_reads = 0
        self._deferred_grow: tuple[int, threading.Event, list[BaseException]] | None = None
        self._writer = threading.Thread(
            target=self._writer_main, name=f"lmdb-writer {path}", daemon=False
        )
        self._writer.start()

    # ----------------------------------------------------------------- public reads

    @property
    def path(self) -> str:
        """The data directory."""
        return self._path

    @property
    def tables(self) -> tuple[str, ...]:
        """The table names this store was opened with."""
        return self._tables

    @property
    def options(self) -> LmdbOptions:
        """The options the store was opened with."""
        return self._options

    def get(self, table: str, key: bytes) -> bytes | None:
        """The value of `table[key]`, or None, from a short read transaction.

        Raises:
            StorageCorrupted: the stored bytes fail their checksum.
            StorageError: `table` is unknown, or LMDB failed.
            StoreClosed: the store is closed.
            ForkedEnvironment: called in a process forked after opening.
        """
        db = self._db(table)
        txn = self._begin_read()
        try:
            return _txn_get(txn, db, table, key)
        except lmdb.Error as exc:
            raise _read_error(exc, self._path) from exc
        finally:
            self._end_read(txn)

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
            StorageCorrupted: a stored value fails its checksum.
            StorageError: `table` is unknown, or LMDB failed.
            StoreClosed: the store is closed.
            ForkedEnvironment: called in a process forked after opening.
        """
        db = self._db(table)
        txn = self._begin_read()
        try:
            return _txn_scan(txn, db, table, start=start, stop=stop, reverse=reverse, limit=limit)
        except lmdb.Error as exc:
            raise _read_error(exc, self._path) from exc
        finally:
            self._end_read(txn)

    def snapshot(self) -> _Snapshot:
        """A consistent read view over one read transaction, for use in a `with` block.

        Leave the block before the next `await`: an open read transaction pins old pages and
        holds back map growth.

        Raises:
            StoreClosed: the store is closed.
            ForkedEnvironment: called in a process forked after opening.
        """
        self._check_usable()
        return _Snapshot(self)

    def export_range(self, hash_range: HashRange) -> Iterator[Record]:
        """Every record of every table whose key lies in `hash_range`, from one read transaction.

        The records are read eagerly (table by table, in key order) and the transaction is
        closed before the first one is returned, so the caller may await while consuming them.

        Raises:
            StorageCorrupted: a stored value fails its checksum.
            StorageError: LMDB failed.
            StoreClosed: the store is closed.
        """
        start, stop = hash_range.key_bounds()
        records: list[Record] = []
        with self.snapshot() as snap:
            for table in self._tables:
                records.extend(
                    Record(table=table, key=key, value=value)
                    for key, value in snap.scan(table, start=start, stop=stop)
                )
        return iter(records)

    def statistics(self) -> StoreStatistics:
        """Counters since the store was opened."""
        return StoreStatistics(
            commits=self._commits,
            batches=self._batches,
            records=self._records,
            map_size=self._map_size,
            map_grows=self._map_grows,
            stale_readers_cleared=self._stale_readers_cleared,
        )

    # ----------------------------------------------------------------- public writes

    async def commit(self, batch: Batch) -> None:
        """Write `batch` atomically and return once it is on disk.

        The batch is validated here, then handed to the writer thread, which may commit it
        together with other batches in one transaction. A caller whose scope is already
        cancelled gets `trio.Cancelled` and nothing is written. Once handed over the commit
        cannot be cancelled: a caller cancelled while waiting keeps waiting until the writer
        reports, gets the real result, and sees the cancellation at its next checkpoint.

        Raises:
            BatchConflict: a precondition did not hold; nothing of this batch was written.
            StorageFull: the map reached `max_map_size` or the disk is full; nothing of this
                batch was written, and later (smaller) commits can still succeed.
            PayloadTooLarge: a key or value is outside the limits.
            StorageCorrupted: a value read to check a precondition fails its checksum.
            StorageError: a table is unknown, or LMDB failed; nothing of this batch was
                written.
            StoreClosed: the store is closed (also if it closes while the commit waits).
            ForkedEnvironment: called in a process forked after opening.
        """
        if self._closed or _FORK_GENERATION[0] != self._fork_generation:
            self._check_usable()
        if trio.lowlevel.current_trio_token() is not self._token:
            # The writer reports through the token of the run that opened the store; from any
            # other run the caller would never be woken.
            raise StorageError(
                f"the store at {self._path} belongs to another trio run; open it in this one"
            )
        check_batch(batch, self._tables, self._options.max_value_size)
        if not batch.records and not batch.preconditions:
            await trio.lowlevel.checkpoint()
            return
        # A caller cancelled before submitting gets Cancelled with nothing written; after this
        # point the batch belongs to the writer.
        task = trio.lowlevel.current_task()
        if self._entering and not self._virtual:
            # Another task of this scheduler tick is at the schedule point below, deciding
            # whether to commit inline. Gather behind it: it hands this batch to the writer
            # together with its own once the tick is over, so the writer wakes once for the
            # whole tick (one group) and this task takes no schedule point of its own. (Under a
            # virtual clock every commit is inline.)
            await trio.lowlevel.checkpoint_if_cancelled()
            self._waiting.add(task)
            self._gathered.append((batch, task))
            await trio.lowlevel.wait_task_rescheduled(_abort_failed)
            return
        if self._waiting or self._open_reads:
            # Under load the writer is busy: queue behind it (group commit).
            await trio.lowlevel.checkpoint_if_cancelled()
            items = [(batch, task)]
        else:
            # The writer is idle. Take a full schedule point, counted: every task that entered
            # `commit` in this scheduler tick gathers behind this one (trio runs a tick's tasks
            # from a private list, which no public API shows). A lone committer then commits
            # inline (docs/architecture.md, "Group commit"): no other task wanted a commit in
            # this tick, and it saves the two thread hand-offs, which cost about as much as the
            # fsync itself on small VMs. Unless the writer woke a group meanwhile: those tasks
            # are runnable now and would wait for the inline fsync, so the batch goes to the
            # writer (a counter: asking trio how many tasks are runnable costs about 10 µs).
            # Anything unusual (map full, I/O errors) falls back to the writer thread, which
            # owns map growth and error classification; a failed inline attempt wrote nothing.
            # Cancellation is checked once, before the batch is submitted; from here on the
            # commit completes (the schedule point itself is shielded).
            await trio.lowlevel.checkpoint_if_cancelled()
            deliveries = self._deliveries
            self._entering += 1
            try:
                await trio.lowlevel.cancel_shielded_checkpoint()
            except BaseException:
                if gathered := self._take_gathered():
                    self._queue.put(gathered)  # nobody else would hand them over
                raise
            finally:
                alone = self._entering == 1
                self._entering -= 1
            if self._closed:
                # `aclose` answers (or has answered) every gathered task.
                raise StoreClosed(f"the store at {self._path} closed before committing")
            virtual = self._virtual
            if (
                (virtual or (alone and self._deliveries == deliveries))
                and not self._waiting
                and self._open_reads == 0
            ):
                try:
                    [(_, result)] = self._try_group([(batch, task)])
                except lmdb.Error:
                    pass
                else:
                    self._inline_commits += 1
                    result.unwrap()
                    return
            # One queue item for the whole tick, so the writer never takes part of it; this
            # batch first: it arrived before the gathered ones.
            items = [(batch, task), *self._take_gathered()]
        self._waiting.add(task)
        self._queue.put(items)
        await trio.lowlevel.wait_task_rescheduled(_abort_failed)

    def _take_gathered(self) -> list[_Item]:
        """The batches gathered behind a committer's schedule point, for the writer."""
        gathered, self._gathered = self._gathered, []
        return gathered

    async def import_records(self, records: Iterable[Record]) -> None:
        """Durably write `records` (as exported by `export_range`) in one batch.

        Raises:
            StorageFull, PayloadTooLarge, StorageError, StoreClosed: as for `commit`.
        """
        batch = Batch(max_value_size=self._options.max_value_size)
        batch.records.extend(records)
        await self.commit(batch)

    async def aclose(self) -> None:
        """Stop the writer after the commits already queued, then close the environment.

        Callers still parked in `commit` get `StoreClosed`. Later calls raise `StoreClosed`.
        Closing twice does nothing.
        """
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid:
            # A forked child owns no writer thread and must not touch the parent's env.
            return
        self._queue.put(None)
        # Shielded: the env cannot be closed until the writer has let go of it.
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._writer.join)
        waiting, self._waiting = self._waiting, set()
        for task in waiting:
            trio.lowlevel.reschedule(
                task,
                outcome.Error(StoreClosed(f"the store at {self._path} closed before committing")),
            )
        self._env.close()
        _unlock(self._lock_fd)

    # ----------------------------------------------------------------- reads: helpers

    def _check_usable(self) -> None:
        if _FORK_GENERATION[0] != self._fork_generation and os.getpid() != self._pid:
            raise ForkedEnvironment(
                f"the store at {self._path} was opened by process {self._pid} and cannot be used"
                f" in forked process {os.getpid()} (LMDB forbids using an environment after"
                " fork); open the store in the child instead"
            )
        if self._closed:
            raise StoreClosed(f"the store at {self._path} is closed; open it again")

    def _db(self, table: str) -> _Db:
        self._check_usable()
        check_table(table, self._tables)
        return self._dbs[table]

    def _begin_read(self) -> _Txn:
        self._check_usable()
        try:
            txn = self._env.begin(buffers=False)
        except lmdb.Error as exc:
            raise _read_error(exc, self._path) from exc
        self._open_reads += 1
        return txn

    def _end_read(self, txn: _Txn) -> None:
        try:
            txn.abort()
        finally:
            self._open_reads -= 1
            if self._open_reads == 0 and self._deferred_grow is not None:
                deferred, self._deferred_grow = self._deferred_grow, None
                self._grow_on_trio_thread(*deferred)

    # ----------------------------------------------------------------- map growth

    def _grow_on_trio_thread(
        self, new_size: int, done: threading.Event, errors: list[BaseException]
    ) -> None:
        """Set the map size; runs as a `run_sync_soon` callback, so it must never raise."""
        if self._open_reads:
            # A snapshot was (wrongly) held across an await. Growing now would remap pages
            # under it, so wait for the last read transaction to end.
            self._deferred_grow = (new_size, done, errors)
            return
        try:
            self._env.set_mapsize(new_size)
            self._map_size = self._env.info()["map_size"]
            self._map_grows += 1
        except BaseException as exc:  # noqa: BLE001 - handed to the writer thread to report
            errors.append(exc)
        finally:
            done.set()

    def _grow_map(self) -> bool:
        """On the writer thread: double the map (up to the cap); False if at the cap already."""
        cap = self._options.max_map_size
        current = self._map_size
        if cap is not None and current >= cap:
            return False
        new_size = current * 2 if cap is None else min(current * 2, cap)
        done = threading.Event()
        errors: list[BaseException] = []
        try:
            self._token.run_sync_soon(self._grow_on_trio_thread, new_size, done, errors)
        except trio.RunFinishedError:
            return False
        done.wait()
        if errors:
            error = StorageError(f"growing the LMDB map of {self._path} failed: {errors[0]}")
            error.__cause__ = errors[0]
            raise _GroupFailed(error)
        logger.info("grew the LMDB map of %s to %d bytes", self._path, self._map_size)
        return True

    # ----------------------------------------------------------------- writer thread

    def _writer_main(self) -> None:
        """The writer thread: take every queued batch, commit them as one group, report."""
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            group = list(first)
            while True:
                try:
                    items = self._queue.get_nowait()
                except queue.Empty:
                    break
                if items is None:
                    stopping = True
                    break
                group.extend(items)
            try:
                results = self._write_group(group)
            except BaseException as exc:  # noqa: BLE001 - the writer must always report back
                error = StorageError(f"the LMDB writer of {self._path} failed: {exc!r}")
                error.__cause__ = exc
                results = _fail_all(group, error)
            try:
                self._token.run_sync_soon(self._deliver, results)
            except trio.RunFinishedError:
                # The trio run is gone; nobody is left to wake.
                return

    def _deliver(self, results: _Results) -> None:
        """On the trio thread: wake every caller of one group commit."""
        self._deliveries += 1
        for task, result in results:
            if task in self._waiting:
                self._waiting.discard(task)
                trio.lowlevel.reschedule(task, result)

    def _write_group(self, group: list[_Item]) -> _Results:
        """Commit `group` as one transaction, growing the map and retrying while it is full."""
        while True:
            try:
                return self._try_group(group)
            except lmdb.MapFullError as exc:
                if self._grow_map():
                    continue
                error: StorageError = StorageFull(
                    f"the LMDB map of {self._path} is full at its maximum of"
                    f" {self._options.max_map_size} bytes; nothing of this batch was written."
                    " Delete data or raise LmdbOptions.max_map_size"
                )
                error.__cause__ = exc
            except _GroupFailed as exc:
                error = exc.error
            except lmdb.Error as exc:
                error = self._write_error(exc, group)
            return _fail_all(group, error)

    def _disk_is_full(self, group: list[_Item]) -> bool:
        """Whether the filesystem has too little room left for `group` (plus some slack)."""
        try:
            stat = os.statvfs(self._path)
        except OSError:
            return False
        needed = sum(
            len(record.key) + len(record.value or b"")
            for batch, _ in group
            for record in batch.records
        )
        return stat.f_bavail * stat.f_frsize < needed + _DISK_SLACK

    def _write_error(self, exc: lmdb.Error, group: list[_Item]) -> StorageError:
        error: StorageError
        code = getattr(exc, "code", 0)
        if (
            isinstance(exc, lmdb.DiskError)
            or code == errno.ENOSPC
            or "No space left" in str(exc)
            # LMDB turns a short write into EIO, and a full disk usually shows up as a short
            # write, so an EIO with (almost) no free space left is a full disk too.
            or (code == errno.EIO and self._disk_is_full(group))
        ):
            error = StorageFull(
                f"the disk holding {self._path} is full; free space and retry"
                " (nothing of this batch was written)"
            )
        elif isinstance(exc, lmdb.CorruptedError | lmdb.PageNotFoundError):
            error = StorageCorrupted(
                f"LMDB found damaged pages in {self._path} while writing: the data file is"
                f" damaged; restore the node's data from a replica or a backup ({exc})"
            )
        else:
            error = StorageError(f"committing to {self._path} failed: {exc}")
        error.__cause__ = exc
        return error

    def _try_group(self, group: list[_Item]) -> _Results:
        """One write transaction for the whole group; raises lmdb errors after aborting."""
        results: _Results = []
        batches = records = 0
        dbs = self._dbs
        txn = self._env.begin(write=True, buffers=False)
        try:
            for batch, task in group:
                if batch.preconditions:
                    failure = self._check_preconditions(txn, batch)
                    if failure is not None:
                        results.append((task, outcome.Error(failure)))
                        continue
                for table, key, value in batch.records:
                    if value is None:
                        txn.delete(key, db=dbs[table])
                    else:
                        txn.put(key, _seal(value), db=dbs[table])
                results.append((task, outcome.Value(None)))
                batches += 1
                records += len(batch.records)
            txn.commit()
        except BaseException:
            # After a failed commit LMDB has already freed the txn; abort is then a no-op.
            txn.abort()
            raise
        if batches:
            self._commits += 1
            self._batches += batches
            self._records += records
        return results

    def _check_preconditions(self, txn: _Txn, batch: Batch) -> StorageError | None:
        """Read each precondition's key inside the write txn (seeing earlier batches)."""
        for precondition in batch.preconditions:
            try:
                current = _txn_get(
                    txn, self._dbs[precondition.table], precondition.table, precondition.key
                )
            except StorageCorrupted as exc:
                return exc
            if current != precondition.value:
                return conflict_error(precondition, current)
        return None


# --------------------------------------------------------------------- opening


def _unescape_mount_field(field: str) -> str:
    # /proc/mounts escapes spaces, tabs, newlines and backslashes as octal (\040 and so on).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _filesystem_type(path: str) -> str | None:
    """The type of the filesystem holding `path`, from /proc/mounts (None if unknown)."""
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as mounts:
            lines = mounts.readlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best: tuple[int, str | None] = (-1, None)
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = _unescape_mount_field(fields[1])
        prefix = mount_point.rstrip("/") + "/"
        if (real == mount_point or real.startswith(prefix)) and len(mount_point) > best[0]:
            best = (len(mount_point), fields[2])
    return best[1]


def _warn_if_network_fs(path: str) -> None:
    fstype = _filesystem_type(path)
    if fstype is not None and (fstype in _NETWORK_FS or fstype.startswith("fuse")):
        logger.warning(
            "the data directory %s is on a %s filesystem; LMDB's locking and memory map are not"
            " reliable on network or FUSE filesystems, so data may be lost or corrupted. Use a"
            " local disk",
            path,
            fstype,
        )


def _lock_data_dir(path: str, *, shared: bool = False) -> int | None:
    """Take the node lock of `path`; return its fd. `shared` (a read-only reader): take it
    shared, writing nothing (no lock file: None, nothing to lock against)."""
    lock_path = os.path.join(path, _LOCK_FILE)
    if shared:
        try:
            fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
    else:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        # flock locks belong to the open file description, so a second open in this same
        # process conflicts too; that matters because LMDB breaks if one process opens the same
        # environment twice. A reader's shared lock excludes a node (which locks exclusively).
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            owner = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        finally:
            os.close(fd)
        who = "this process" if owner == str(os.getpid()) else "another process"
        raise DataDirLocked(
            f"the data directory {path} is already in use by {who} (pid {owner}); stop the other"
            " node or choose another data directory"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    if not shared:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def _unlock(fd: int | None) -> None:
    if fd is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_env(
    path: str, tables: tuple[str, ...], options: LmdbOptions, readonly: bool = False
) -> tuple[lmdb.Environment, dict[str, _Db], int]:
    """Open the environment, clear stale readers and create the tables (blocking); read-only:
    open the existing tables and change nothing."""
    try:
        env = lmdb.open(
            path,
            map_size=options.map_size,
            subdir=True,
            readonly=readonly,
            sync=options.sync,
            metasync=True,
            writemap=False,
            map_async=False,
            # A read-only reader holds the node lock shared, so no writer can run: it needs no
            # LMDB lock file of its own (and writes nothing, not even lock.mdb).
            lock=not readonly,
            create=not readonly,
            max_readers=options.max_readers,
            max_dbs=len(tables) + 2,
        )
    except (lmdb.InvalidError, lmdb.CorruptedError, lmdb.VersionMismatchError) as exc:
        raise StorageCorrupted(
            f"the LMDB files in {path} are damaged or not LMDB files ({exc}); the node refuses to"
            " start. Restore the directory from a replica or a backup; it was left untouched"
        ) from exc
    except lmdb.Error as exc:
        raise StorageError(f"opening the LMDB environment in {path} failed: {exc}") from exc
    try:
        _check_flags(env, path, options, readonly)
        if readonly:
            return env, _open_tables_readonly(env, path, tables), 0
        stale = env.reader_check()
        if stale:
            logger.warning("cleared %d stale LMDB reader slots in %s", stale, path)
        dbs: dict[str, _Db] = {}
        with env.begin(write=True) as txn:
            for table in tables:
                dbs[table] = env.open_db(table.encode("utf-8"), txn=txn, create=True)
    except lmdb.Error as exc:
        env.close()
        if isinstance(exc, lmdb.CorruptedError | lmdb.PageNotFoundError | lmdb.InvalidError):
            raise StorageCorrupted(
                f"the LMDB files in {path} are damaged ({exc}); the node refuses to start."
                " Restore the directory from a replica or a backup"
            ) from exc
        raise StorageError(f"preparing the tables in {path} failed: {exc}") from exc
    except BaseException:
        env.close()
        raise
    return env, dbs, stale


def _open_tables_readonly(
    env: lmdb.Environment, path: str, tables: tuple[str, ...]
) -> dict[str, _Db]:
    dbs: dict[str, _Db] = {}
    for table in tables:
        try:
            # Without `txn`, py-lmdb opens the handle in its own (read-only) transaction.
            dbs[table] = env.open_db(table.encode("utf-8"), create=False)
        except lmdb.NotFoundError:
            raise StorageError(
                f"{path} has no table {table!r}: it is not a data directory of this kind"
            ) from None
    return dbs


def _check_flags(
    env: lmdb.Environment, path: str, options: LmdbOptions, readonly: bool = False
) -> None:
    """Assert the durability flags LMDB actually applied (RELIABILITY §4 rule 1)."""
    flags = env.flags()
    actual = {
        "subdir": flags["subdir"],
        "sync": flags["sync"],
        "metasync": flags["metasync"],
        "writemap": flags["writemap"],
        "map_async": flags["map_async"],
        "lock": flags["lock"],
        "readonly": flags["readonly"],
    }
    expected = {
        "subdir": True,
        "sync": options.sync,
        "metasync": True,
        "writemap": False,
        "map_async": False,
        "lock": not readonly,
        "readonly": readonly,
    }
    wrong = {name: value for name, value in actual.items() if value != expected[name]}
    if wrong:
        raise StorageError(f"LMDB opened {path} with unsafe flags {wrong}; refusing to use it")


def _open_sync(
    path: str, tables: tuple[str, ...], options: LmdbOptions, readonly: bool = False
) -> tuple[lmdb.Environment, dict[str, _Db], int, int | None]:
    if readonly:
        if not os.path.isfile(os.path.join(path, "data.mdb")):
            raise StorageError(f"{path} is not a data directory (it has no data.mdb)")
    else:
        os.makedirs(path, exist_ok=True)
    _warn_if_network_fs(path)
    if not options.sync:
        logger.warning(
            "opening %s with sync=False: commits are not durable (i_accept_data_loss=True)", path
        )
    try:
        lock_fd = _lock_data_dir(path, shared=readonly)
    except PermissionError as exc:
        raise StorageError(
            f"cannot read the data directory {path}: {exc.strerror} ({exc.filename})"
        ) from None
    try:
        env, dbs, stale = _open_env(path, tables, options, readonly)
    except BaseException:
        _unlock(lock_fd)
        raise
    return env, dbs, stale, lock_fd


@asynccontextmanager
async def open_lmdb_store(
    path: str | os.PathLike[str],
    tables: Iterable[str],
    options: LmdbOptions = _DEFAULT_OPTIONS,
    *,
    readonly: bool = False,
) -> AsyncIterator[LmdbStore]:
    """Open (creating if needed) the LMDB store in directory `path`; close it on exit.

    Args:
        path: The data directory. It is locked for this store until it closes.
        tables: Every table name the store will use; they are created if missing.
        options: Map size, limits and durability.
        readonly: Open an existing store for reads only (tools inspecting a stopped node):
            nothing is created or written, and `commit` fails. The directory is still locked,
            so a running node is reported as `DataDirLocked`.

    Raises:
        DataDirLocked: another node (or another store in this process) has `path` open.
        StorageCorrupted: the files in `path` are not a valid LMDB environment; they are left
            untouched.
        StorageError: the environment could not be opened for another reason.
    """
    table_names = tuple(dict.fromkeys(tables))
    for table in table_names:
        if not table:
            raise ValueError("table names must not be empty")
    data_dir = str(Path(path))
    token = trio.lowlevel.current_trio_token()
    # Opening fsyncs (creating the tables is a write transaction): keep it off the trio thread.
    env, dbs, stale, lock_fd = await trio.to_thread.run_sync(
        _open_sync, data_dir, table_names, options, readonly
    )
    try:
        store = LmdbStore(
            path=data_dir,
            env=env,
            dbs=dbs,
            lock_fd=lock_fd,
            options=options,
            stale_readers_cleared=stale,
            trio_token=token,
        )
    except BaseException:
        env.close()
        _unlock(lock_fd)
        raise
    try:
        yield store
    finally:
        await store.aclose()


if TYPE_CHECKING:

    def _implements_store(store: LmdbStore) -> Store:
        return store
