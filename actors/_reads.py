"""Reads of a node's stored data, decoded for tools: invocation records, journals, state.

Plain functions over a `storage.Reader` and a codec, shared by the running `Node` (its
``get_invocation``, ``list_invocations``, ``get_journal`` and ``get_state``) and by the
read-only inspector that opens a stopped node's data directory (``actors invocations list
--data DIR``). Nothing here writes or runs handler code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from storage import Codec, Reader

from ._clock import from_micros
from ._errors import UnknownInvocation
from ._execution import IMAGES_INDEX
from ._journal import Entry, EntryKind, JournalEntry
from ._layout import INVOCATIONS, JOURNAL, STATE, ActorId, InvocationId, prefix_end
from ._records import Failure, InvocationRecord, InvocationStatus

Decode = Callable[[bytes], Any]
"""Decodes one stored user value (arguments, results, state, step results)."""


def load_record(reader: Reader, codec: Codec, inv_id: InvocationId) -> InvocationRecord:
    """The stored record of one invocation.

    Raises:
        UnknownInvocation: there is none (never existed, or finished and not retained).
    """
    raw = reader.get(INVOCATIONS, inv_id.raw)
    if raw is None:
        raise UnknownInvocation(
            f"no invocation {inv_id}: it never existed, or it finished and its record was"
            " not retained (use an idempotency key or NodeOptions.completed_retention)"
        )
    return InvocationRecord.from_wire(inv_id, codec.decode(raw))


def stored_records(reader: Reader, codec: Codec) -> dict[InvocationId, InvocationRecord]:
    """Every stored invocation record, by id."""
    return {
        InvocationId(raw_id): InvocationRecord.from_wire(InvocationId(raw_id), codec.decode(raw))
        for raw_id, raw in reader.scan(INVOCATIONS)
    }


def select_records(
    records: Iterable[InvocationRecord],
    *,
    status: InvocationStatus | None = None,
    actor_type: str | None = None,
    key: str | None = None,
    handler: str | None = None,
    limit: int | None = None,
) -> list[InvocationRecord]:
    """The records that match every given filter, newest first, at most `limit` of them."""
    return sorted(
        (
            r
            for r in records
            if (status is None or r.status is status)
            and (actor_type is None or r.actor.type == actor_type)
            and (key is None or r.actor.key == key)
            and (handler is None or r.handler == handler)
        ),
        key=lambda r: (r.created_at, r.id),
        reverse=True,
    )[:limit]


def read_journal(
    reader: Reader, codec: Codec, inv_id: InvocationId, *, decode: Decode | None = None
) -> list[JournalEntry]:
    """The committed journal of an invocation, decoded (empty once it finished).

    Args:
        decode: how to decode recorded values (default: `codec.decode`, which raises on a
            type the codec does not know).
    """
    decode = decode or codec.decode
    entries: list[JournalEntry] = []
    start = inv_id.raw
    for key, raw in reader.scan(JOURNAL, start=start, stop=prefix_end(start)):
        index = int.from_bytes(key[len(start) :], "big")
        if index == IMAGES_INDEX:
            continue
        entry = Entry.from_wire(index, codec.decode(raw))
        value: Any = None
        if entry.value is not None and entry.kind is not EntryKind.OUTCOME:
            value = decode(entry.value)
        elif entry.value is not None:
            # A packed outcome: {"ok": True, "value": encoded} or {"ok": False, "failure": row}.
            outcome = codec.decode(entry.value)
            if not outcome["ok"]:
                value = f"failed: {Failure.from_wire(outcome['failure']).message}"
            elif outcome["value"] is not None:
                value = decode(outcome["value"])
        failure = None
        if entry.failure is not None:
            failure = Failure.from_wire(entry.failure).message
        entries.append(
            JournalEntry(
                index=index,
                kind=entry.kind.value,
                name=entry.name,
                value=value,
                failure=failure,
                recorded_at=None if entry.at is None else from_micros(entry.at),
                attempts=entry.attempts,
            )
        )
    return entries


def read_state(
    reader: Reader, codec: Codec, actor: ActorId, *, decode: Decode | None = None
) -> dict[str, Any]:
    """The committed state of one actor, by name (sorted), decoded."""
    decode = decode or codec.decode
    prefix = actor.prefix
    rows = reader.scan(STATE, start=prefix, stop=prefix_end(prefix))
    return {key[len(prefix) :].decode(): decode(raw) for key, raw in rows}


def _iso(micros: int | None) -> str | None:
    return None if micros is None else from_micros(micros).isoformat()


def record_view(record: InvocationRecord, decode: Callable[[bytes | None], Any]) -> dict[str, Any]:
    """A record as plain JSON-ready data, the shape of ``GET /invocations/{id}`` (and of the
    command line's read-only mode). `decode` turns stored arguments and results into values."""
    failure = None
    if record.failure is not None:
        failure = {
            "error_type": record.failure.error_type,
            "message": record.failure.message,
            "code": record.failure.code,
        }
    return {
        "id": str(record.id),
        "actor_type": record.actor.type,
        "key": record.actor.key,
        "handler": record.handler,
        "status": record.status.value,
        "created_at": _iso(record.created_at),
        "modified_at": _iso(record.modified_at),
        "attempts": record.attempts,
        "last_error": record.last_error,
        "next_retry_at": _iso(record.next_retry_at),
        "idempotency_key": record.idempotency_key,
        "args": decode(record.args),
        "result": decode(record.result),
        "failure": failure,
        "expires_at": _iso(record.expires_at),
        "not_before": _iso(record.not_before),
    }


def try_decode(codec: Codec, raw: bytes) -> tuple[Any, Exception | None]:
    """Decode a stored user value for a tool: the value, or the error that stopped it (a type
    the codec was not given, for one), so that tools show a placeholder instead of failing."""
    try:
        return codec.decode(raw), None
    except Exception as exc:  # noqa: BLE001 - any unreadable value becomes a placeholder
        return None, exc
