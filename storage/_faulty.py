"""A store wrapper that injects crashes and I/O failures at chosen commits, for tests.

Crash-sweep tests run a workload once over a counting `FaultyStore` to learn how many commits it
makes (N), then rerun it for every k in 1..N with `crash_at_commit=k` (and `crash_after_commit=k`)
on a fresh data directory, reopen the store through the normal start-up path and check their
invariants.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ._errors import InjectedFault, SimulatedCrash, StoreClosed
from ._keys import HashRange
from ._store import Batch, Reader, Record, Store, StoreStatistics


class FaultyStore:
    """A `Store` that delegates to `inner` and fails at chosen commit numbers.

    Commits are numbered from 1 in the order `commit` (or `import_records`) is called.

    Args:
        inner: The store to delegate to. It stays owned by the caller, who closes it.
        crash_at_commit: At this commit raise `SimulatedCrash` before anything is written; the
            store is then dead: later commits raise `SimulatedCrash`, reads raise `StoreClosed`.
        crash_after_commit: Write this commit to `inner`, then raise `SimulatedCrash` (the
            "committed but never acknowledged" window); the store is then dead.
        fail_at_commit: Raise `InjectedFault` for this one commit without writing it, then
            carry on normally.
    """

    def __init__(
        self,
        inner: Store,
        *,
        crash_at_commit: int | None = None,
        crash_after_commit: int | None = None,
        fail_at_commit: int | None = None,
    ) -> None:
        self._inner = inner
        self._crash_at = crash_at_commit
        self._crash_after = crash_after_commit
        self._fail_at = fail_at_commit
        self._commits_seen = 0
        self._crashed = False

    @property
    def inner(self) -> Store:
        """The wrapped store."""
        return self._inner

    @property
    def commits_seen(self) -> int:
        """How many times `commit` was called, including the failed and crashed calls."""
        return self._commits_seen

    @property
    def crashed(self) -> bool:
        """Whether a simulated crash has happened."""
        return self._crashed

    @property
    def tables(self) -> tuple[str, ...]:
        """The table names of the inner store."""
        return self._inner.tables

    def _check_alive(self) -> None:
        if self._crashed:
            raise StoreClosed(
                "the store is dead after a simulated crash; reopen the data directory"
            )

    def get(self, table: str, key: bytes) -> bytes | None:
        """Delegates to the inner store.

        Raises:
            StoreClosed: after a simulated crash.
        """
        self._check_alive()
        return self._inner.get(table, key)

    def scan(
        self,
        table: str,
        *,
        start: bytes = b"",
        stop: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Delegates to the inner store.

        Raises:
            StoreClosed: after a simulated crash.
        """
        self._check_alive()
        return self._inner.scan(table, start=start, stop=stop, reverse=reverse, limit=limit)

    def snapshot(self) -> AbstractContextManager[Reader]:
        """Delegates to the inner store.

        Raises:
            StoreClosed: after a simulated crash.
        """
        self._check_alive()
        return self._inner.snapshot()

    async def commit(self, batch: Batch) -> None:
        """Count the call, then fail, crash or delegate as configured.

        Raises:
            SimulatedCrash: at `crash_at_commit` (nothing written), at `crash_after_commit`
                (the batch was written), and for every commit after a crash.
            InjectedFault: at `fail_at_commit`; nothing of the batch was written.
            StorageError: whatever the inner store raises.
        """
        self._commits_seen += 1
        number = self._commits_seen
        if self._crashed:
            raise SimulatedCrash(f"commit {number} after the simulated crash")
        if number == self._crash_at:
            self._crashed = True
            raise SimulatedCrash(f"simulated crash at commit {number}, before writing it")
        if number == self._fail_at:
            raise InjectedFault(f"injected I/O failure at commit {number}; nothing was written")
        if number != self._crash_after:
            await self._inner.commit(batch)
            return
        try:
            await self._inner.commit(batch)
        except BaseException:
            # The process "dies" here whether or not the commit went through; an error from the
            # inner store (a conflict, say) is still reported, but the store is dead either way.
            self._crashed = True
            raise
        self._crashed = True
        raise SimulatedCrash(f"simulated crash after commit {number} was written")

    def export_range(self, hash_range: HashRange) -> Iterator[Record]:
        """Delegates to the inner store.

        Raises:
            StoreClosed: after a simulated crash.
        """
        self._check_alive()
        return self._inner.export_range(hash_range)

    async def import_records(self, records: Iterable[Record]) -> None:
        """Write `records` as one counted commit, so crash sweeps cover imports too.

        Raises:
            SimulatedCrash, InjectedFault, StorageError: as for `commit`.
        """
        batch = Batch()
        batch.records.extend(records)
        await self.commit(batch)

    def statistics(self) -> StoreStatistics:
        """The inner store's counters (available even after a simulated crash)."""
        return self._inner.statistics()


if TYPE_CHECKING:

    def _implements_store(store: FaultyStore) -> Store:
        return store
