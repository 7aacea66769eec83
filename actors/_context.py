"""Handler contexts, typed by capability.

- `ServiceContext`: deterministic helpers only (stateless services).
- `SharedContext`: reads the key's committed state from one snapshot; cannot write.
- `ObjectContext`: reads and writes the key's state; writes are buffered and committed
  atomically with the invocation's completion (its next durable point).
"""

from __future__ import annotations

import random as _random
import uuid as _uuid
from datetime import datetime
from typing import Any, NoReturn

from storage import Batch, Codec, Reader

from ._clock import WallClock
from ._errors import ReadOnlyState, UsageError
from ._layout import MAX_STATE_NAME_BYTES, STATE, ActorId, InvocationId, prefix_end


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise UsageError(f"state names are non-empty str, got {name!r}")
    if len(name.encode()) > MAX_STATE_NAME_BYTES:
        raise UsageError(
            f"state name {name[:40]!r}... is longer than {MAX_STATE_NAME_BYTES} bytes; shorten it"
        )
    return name


class _Services:
    """What a context needs from its node (kept small and explicit)."""

    __slots__ = ("clock", "codec", "reader")

    def __init__(self, *, codec: Codec, reader: Reader, clock: WallClock) -> None:
        self.codec = codec
        self.reader = reader
        self.clock = clock


class ServiceContext:
    """The context of a stateless service handler."""

    __slots__ = ("_handler", "_invocation_id", "_rng", "_services")

    def __init__(self, services: _Services, invocation_id: InvocationId, handler: str) -> None:
        self._services = services
        self._invocation_id = invocation_id
        self._handler = handler
        self._rng: _random.Random | None = None

    @property
    def invocation_id(self) -> str:
        """This invocation's id (``inv_...``)."""
        return str(self._invocation_id)

    def now(self) -> datetime:
        """The node's durable time (aware UTC); virtual under trio's `MockClock`."""
        return self._services.clock.now()

    def _random(self) -> _random.Random:
        if self._rng is None:
            # Seeded from the invocation id, so every attempt of an invocation draws the same
            # sequence (the basis for replay in durable execution).
            self._rng = _random.Random(int.from_bytes(self._invocation_id.raw, "big"))
        return self._rng

    def random(self) -> float:
        """A float in [0, 1) from a generator seeded by the invocation id."""
        return self._random().random()

    def uuid(self) -> _uuid.UUID:
        """A version-4 UUID from the invocation's seeded generator."""
        return _uuid.UUID(int=self._random().getrandbits(128), version=4)


class SharedContext(ServiceContext):
    """The context of a shared handler: reads the committed state of its key.

    All reads of one invocation come from one snapshot of the key's state, taken at the first
    read, so a shared handler never sees a half-applied update.
    """

    __slots__ = ("_actor", "_snapshot")

    def __init__(
        self, services: _Services, invocation_id: InvocationId, handler: str, actor: ActorId
    ) -> None:
        super().__init__(services, invocation_id, handler)
        self._actor = actor
        self._snapshot: dict[str, bytes] | None = None

    @property
    def key(self) -> str:
        """The key of the actor this invocation runs on."""
        return self._actor.key

    def _committed(self) -> dict[str, bytes]:
        if self._snapshot is None:
            prefix = self._actor.prefix + b""
            n = len(prefix)
            rows = self._services.reader.scan(STATE, start=prefix, stop=prefix_end(prefix))
            self._snapshot = {k[n:].decode(): v for k, v in rows}
        return self._snapshot

    def get(self, name: str, default: Any = None) -> Any:
        """The value stored under `name`, or `default` if there is none.

        Each call decodes a fresh copy: mutating it changes nothing until you `set` it.
        """
        raw = self._committed().get(_check_name(name))
        return default if raw is None else self._services.codec.decode(raw)

    def keys(self) -> list[str]:
        """The names with a stored value, sorted."""
        return sorted(self._committed())

    def __getattr__(self, name: str) -> NoReturn:
        if name in ("set", "clear", "clear_all"):
            raise ReadOnlyState(
                f"ctx.{name}() is not available in shared handler {self._handler}: shared"
                " handlers are read-only. Make the handler @actors.exclusive to change state"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class ObjectContext(SharedContext):
    """The context of an exclusive handler: reads and writes its key's state.

    Writes are buffered in memory and committed atomically with the invocation's completion;
    shared handlers see them only after that commit.
    """

    __slots__ = ("_cleared", "_writes")

    def __init__(
        self, services: _Services, invocation_id: InvocationId, handler: str, actor: ActorId
    ) -> None:
        super().__init__(services, invocation_id, handler, actor)
        self._writes: dict[str, bytes | None] = {}
        self._cleared = False

    def get(self, name: str, default: Any = None) -> Any:
        """The value of `name` as this handler last set it, or as committed, else `default`."""
        _check_name(name)
        if name in self._writes:
            raw = self._writes[name]
        elif self._cleared:
            raw = None
        else:
            raw = self._services.reader.get(STATE, self._actor.state_key(name))
        return default if raw is None else self._services.codec.decode(raw)

    def keys(self) -> list[str]:
        """The names with a value (committed or set by this handler), sorted."""
        names = set() if self._cleared else set(self._committed_names())
        for name, raw in self._writes.items():
            if raw is None:
                names.discard(name)
            else:
                names.add(name)
        return sorted(names)

    def _committed_names(self) -> list[str]:
        prefix = self._actor.prefix
        rows = self._services.reader.scan(STATE, start=prefix, stop=prefix_end(prefix))
        return [k[len(prefix) :].decode() for k, _ in rows]

    def set(self, name: str, value: Any) -> None:
        """Store `value` under `name` (encoded now, so a bad value fails right here).

        Raises:
            UnsupportedType: the value cannot be encoded (register its class with the node).
            PayloadTooLarge: the encoded value exceeds the node's value size limit.
            UsageError: the name is not a non-empty str of at most 128 bytes.
        """
        self._writes[_check_name(name)] = self._services.codec.encode(value)

    def clear(self, name: str) -> None:
        """Remove the value stored under `name` (no error if there is none)."""
        self._writes[_check_name(name)] = None

    def clear_all(self) -> None:
        """Remove every value of this key's state."""
        self._writes.clear()
        self._cleared = True

    def _write_state(self, batch: Batch) -> None:
        """Add the buffered writes to `batch` (runtime use, at a durable point)."""
        if self._cleared:
            for name in self._committed_names():
                if name not in self._writes:
                    batch.delete(STATE, self._actor.state_key(name))
        for name, raw in self._writes.items():
            key = self._actor.state_key(name)
            if raw is None:
                batch.delete(STATE, key)
            else:
                batch.put(STATE, key, raw)
