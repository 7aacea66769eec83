"""Table names, identifiers and key layouts.

Every key that belongs to an actor starts with the actor's 8-byte placement hash, so a hash
range is one contiguous key range in every table (DESIGN §4):

- actor prefix: ``hash8 | u8 len(type) | type | u16 len(key) | key``
- ``state``:        actor prefix | state name (utf-8)
- ``inbox``:        actor prefix | u64 sequence            -> invocation id
- ``invocations``:  invocation id (hash8 of the target | 12 random bytes) -> record
- ``idempotency``:  actor prefix | u8 len(handler) | handler | idempotency key -> invocation id
- ``expiry``:       u64 expiry (µs since epoch) | invocation id -> b"" (node-wide, derived
  from the records' ``expires_at``, rebuildable)
- ``journal``:      invocation id | u32 index -> entry (index 0xffffffff: state before-images)
- ``promises``:     actor prefix | promise name -> outcome (a workflow's durable promises)
- ``slots``:        invocation id | u32 journal index -> outcome (awakeables and call replies
  addressed to that invocation's journal entry)
"""

from __future__ import annotations

import base64
import functools
import struct

import attrs

from storage import hash_prefix, stable_hash

from ._errors import InvalidKey, UnknownInvocation

STATE = "state"
INBOX = "inbox"
INVOCATIONS = "invocations"
JOURNAL = "journal"
TIMERS = "timers"
OUTBOX = "outbox"
DEDUP = "dedup"
IDEMPOTENCY = "idempotency"
EXPIRY = "expiry"
META = "meta"
PROMISES = "promises"
SLOTS = "slots"
TABLES = (
    STATE,
    INBOX,
    INVOCATIONS,
    JOURNAL,
    TIMERS,
    OUTBOX,
    DEDUP,
    IDEMPOTENCY,
    EXPIRY,
    META,
    PROMISES,
    SLOTS,
)

MAX_KEY_BYTES = 256
MAX_STATE_NAME_BYTES = 128
MAX_IDEMPOTENCY_KEY_BYTES = 100
"""With the longest type (64), key (256) and handler (64) names, the stored key stays within
LMDB's 511 bytes."""
INVOCATION_ID_BYTES = 20


def validate_key(key: object) -> str:
    """Check an actor key at ingress.

    Raises:
        InvalidKey: the key is not a non-empty str of at most 256 UTF-8 bytes.
    """
    if not isinstance(key, str):
        raise InvalidKey(
            f"actor keys are str, got {type(key).__name__} {key!r}; convert it, e.g. str(user_id)"
        )
    if not key:
        raise InvalidKey("actor keys cannot be empty; give each actor a non-empty key")
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise InvalidKey(
            f"actor key of {size} UTF-8 bytes is longer than the {MAX_KEY_BYTES}-byte limit;"
            " use a shorter key (for example a hash of it)"
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKey(f"actor key {key!r} is not valid Unicode text ({exc.reason})") from exc
    return key


@attrs.frozen(kw_only=True, cache_hash=True)
class ActorId:
    """The identity of one actor: its type's wire name and its key ("" for services)."""

    type: str
    key: str
    placement: int = attrs.field(init=False, eq=False, repr=False)
    prefix: bytes = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        type_b = self.type.encode()
        key_b = self.key.encode()
        placement = stable_hash(type_b, key_b)
        object.__setattr__(self, "placement", placement)
        object.__setattr__(
            self,
            "prefix",
            hash_prefix(placement)
            + struct.pack(">B", len(type_b))
            + type_b
            + struct.pack(">H", len(key_b))
            + key_b,
        )

    def __str__(self) -> str:
        return f"{self.type}/{self.key}" if self.key else self.type

    def state_key(self, name: str) -> bytes:
        """The `state` table key of one state entry."""
        return self.prefix + name.encode()

    def inbox_key(self, seq: int) -> bytes:
        """The `inbox` table key of the entry with sequence number `seq`."""
        return self.prefix + seq.to_bytes(8, "big")

    def idempotency_key(self, handler: str, idempotency_key: str) -> bytes:
        """The `idempotency` table key for (this actor, handler, user key)."""
        h = handler.encode()
        return self.prefix + struct.pack(">B", len(h)) + h + idempotency_key.encode()

    @staticmethod
    def parse_prefix(key: bytes) -> tuple[ActorId, bytes]:
        """Split a table key into its actor and the rest (inverse of `prefix`)."""
        type_len = key[8]
        type_ = key[9 : 9 + type_len].decode()
        pos = 9 + type_len
        (key_len,) = struct.unpack_from(">H", key, pos)
        pos += 2
        actor = ActorId(type=type_, key=key[pos : pos + key_len].decode())
        return actor, key[pos + key_len :]


def slot_key(invocation: InvocationId, index: int) -> bytes:
    """The `slots` key addressed to one journal entry of an invocation."""
    return invocation.raw + struct.pack(">I", index)


def slot_id(key: bytes) -> str:
    """The text id of an awakeable (``awk_...``)."""
    return "awk_" + base64.b32encode(key).decode().rstrip("=").lower()


def parse_slot_id(text: str) -> bytes:
    """Inverse of `slot_id`.

    Raises:
        UnknownInvocation: `text` is not an awakeable id.
    """
    if not isinstance(text, str) or not text.startswith("awk_"):
        raise UnknownInvocation(f"{text!r} is not an awakeable id (they look like awk_...)")
    body = text[4:].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except (ValueError, TypeError) as exc:
        raise UnknownInvocation(f"{text!r} is not a well-formed awakeable id") from exc
    if len(raw) != INVOCATION_ID_BYTES + 4:
        raise UnknownInvocation(f"{text!r} is not a well-formed awakeable id")
    return raw


@functools.lru_cache(maxsize=4096)
def actor_id(type_name: str, key: str) -> ActorId:
    """A cached `ActorId` (hashing and prefix building are on every call's path)."""
    return ActorId(type=type_name, key=key)


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key that starts with `prefix`."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        raise ValueError("a prefix of only 0xff bytes has no end key")
    return stripped[:-1] + bytes([stripped[-1] + 1])


@attrs.frozen(order=True, cache_hash=True)
class InvocationId:
    """An invocation's id: the target actor's placement hash, then 12 random bytes.

    Its text form (``inv_...``) is what users and tools see.
    """

    raw: bytes

    def __attrs_post_init__(self) -> None:
        if len(self.raw) != INVOCATION_ID_BYTES:
            raise ValueError(f"invocation ids are {INVOCATION_ID_BYTES} bytes, not {len(self.raw)}")

    @classmethod
    def new(cls, placement: int, random_bytes: bytes) -> InvocationId:
        """A fresh id for an invocation targeting an actor with this placement hash."""
        return cls(hash_prefix(placement) + random_bytes)

    @classmethod
    def parse(cls, text: str) -> InvocationId:
        """Parse the text form.

        Raises:
            UnknownInvocation: `text` is not an invocation id.
        """
        if not isinstance(text, str) or not text.startswith("inv_"):
            raise UnknownInvocation(f"{text!r} is not an invocation id (they look like inv_...)")
        body = text[4:].upper()
        try:
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
            return cls(raw)
        except (ValueError, TypeError) as exc:
            raise UnknownInvocation(f"{text!r} is not a well-formed invocation id") from exc

    def __str__(self) -> str:
        return "inv_" + base64.b32encode(self.raw).decode().rstrip("=").lower()
