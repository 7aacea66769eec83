"""Placement hashes and order-preserving key encoding.

Every key that belongs to an actor starts with that actor's 8-byte placement hash (big endian),
so a range of the 64-bit hash space is one contiguous key range in every table.
"""

from __future__ import annotations

import hashlib
import struct

import attrs

HASH_SPACE = 1 << 64
MAX_KEY_SIZE = 511  # LMDB's compiled-in limit


def stable_hash(*parts: bytes) -> int:
    """A stable 64-bit hash of `parts` (blake2b), never Python's randomized `hash()`.

    The parts are joined with NUL separators after length-prefixing, so ("ab", "c") and
    ("a", "bc") hash differently.
    """
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        h.update(struct.pack(">I", len(part)))
        h.update(part)
    return int.from_bytes(h.digest(), "big")


def hash_prefix(placement: int) -> bytes:
    """The 8-byte big-endian form of a placement hash, the first bytes of every owned key."""
    return placement.to_bytes(8, "big")


def key_hash(key: bytes) -> int:
    """The placement hash a stored key starts with."""
    return int.from_bytes(key[:8], "big")


@attrs.frozen(kw_only=True)
class HashRange:
    """A half-open range `[start, stop)` of the 64-bit placement-hash space."""

    start: int = attrs.field(default=0)
    stop: int = attrs.field(default=HASH_SPACE)

    @start.validator
    def _check_start(self, _: object, value: int) -> None:
        if not 0 <= value < HASH_SPACE:
            raise ValueError(f"range start {value} is outside the 64-bit hash space")

    @stop.validator
    def _check_stop(self, _: object, value: int) -> None:
        if not self.start < value <= HASH_SPACE:
            raise ValueError(f"range stop {value} must be above start {self.start} and <= 2**64")

    @classmethod
    def everything(cls) -> HashRange:
        """The whole hash space."""
        return cls()

    def __contains__(self, placement: object) -> bool:
        return isinstance(placement, int) and self.start <= placement < self.stop

    def key_bounds(self) -> tuple[bytes, bytes | None]:
        """The `(first key, stop key or None)` of this range in any hash-prefixed table."""
        stop = None if self.stop == HASH_SPACE else hash_prefix(self.stop)
        return hash_prefix(self.start), stop
