"""Read-only inspection of a stopped node's data directory (``actors ... --data DIR``).

Opening runs nothing: no recovery, no handler code, no timers, no writes. The directory lock
is still taken for the duration, so a running node is reported (`DataDirLocked`) instead of
being read behind its back, and no node can start while a tool reads.

Values of registered attrs, dataclass or Enum types decode only if the inspector knows the
types (``--app``); without them such a value shows as an ``<undecodable: ...>`` placeholder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from storage import Codec, LmdbStore, open_lmdb_store

from . import _reads
from ._journal import JournalEntry
from ._layout import TABLES, InvocationId, validate_key
from ._layout import ActorId as _ActorId
from ._records import InvocationRecord, InvocationStatus


class Inspector:
    """Reads of one data directory, decoded leniently. Get one from `open_inspector`."""

    def __init__(self, store: LmdbStore, codec: Codec) -> None:
        self._store = store
        self._codec = codec

    def decode(self, raw: bytes | None) -> Any:
        """Decode a stored user value; a type the codec does not know becomes a placeholder."""
        if raw is None:
            return None
        value, error = _reads.try_decode(self._codec, raw)
        if error is None:
            return value
        return f"<undecodable: {error} (pass --app to register the app's types)>"

    def get_invocation(self, invocation_id: str) -> InvocationRecord:
        """The stored record of an invocation.

        Raises:
            UnknownInvocation: not an id, or no such record.
        """
        return _reads.load_record(self._store, self._codec, InvocationId.parse(invocation_id))

    def list_invocations(
        self,
        *,
        status: InvocationStatus | None = None,
        actor_type: str | None = None,
        key: str | None = None,
        handler: str | None = None,
        limit: int | None = None,
    ) -> list[InvocationRecord]:
        """Stored invocation records, filtered like `Node.list_invocations`, newest first."""
        return _reads.select_records(
            _reads.stored_records(self._store, self._codec).values(),
            status=status,
            actor_type=actor_type,
            key=key,
            handler=handler,
            limit=limit,
        )

    def get_journal(self, invocation_id: str) -> list[JournalEntry]:
        """The committed journal of an unfinished invocation.

        Raises:
            UnknownInvocation: not an invocation id.
        """
        return _reads.read_journal(
            self._store, self._codec, InvocationId.parse(invocation_id), decode=self.decode
        )

    def get_state(self, type_name: str, key: str) -> dict[str, Any]:
        """The committed state of one virtual object.

        Raises:
            InvalidKey: the key is not valid.
        """
        actor = _ActorId(type=type_name, key=validate_key(key))
        return _reads.read_state(self._store, self._codec, actor, decode=self.decode)

    def record_json(self, record: InvocationRecord) -> dict[str, Any]:
        """A record in the shape the HTTP API returns (``GET /invocations/{id}``)."""
        return _reads.record_view(record, self.decode)


@asynccontextmanager
async def open_inspector(
    path: str | Path, *, types: Iterable[type | tuple[str, type]] = ()
) -> AsyncIterator[Inspector]:
    """Open a stopped node's data directory for reading.

    Args:
        path: the data directory.
        types: the app's codec types, so its values decode.

    Raises:
        DataDirLocked: a node (or another tool) has the directory open.
        StorageError: it is not a node's data directory.
    """
    async with open_lmdb_store(Path(path), TABLES, readonly=True) as store:
        yield Inspector(store, Codec(types))
