"""The one versioned msgpack codec for every value that crosses a durable boundary.

An encoded value is one format-version byte (`FORMAT_VERSION`) followed by one msgpack object.
Builtins go straight through msgpack's C packer and unpacker; Python code runs only for values
msgpack cannot represent itself (in `default` when encoding, in `ext_hook`/`list_hook` when
decoding). Those values use explicit msgpack ext codes:

  code  Python type          encoding
  ----  -------------------  ------------------------------------------------------------
  1     tuple                array [ext(1, b""), *items]
  2     set                  array [ext(2, b""), *items]
  3     frozenset            array [ext(3, b""), *items]
  4     datetime.datetime    ext(4, 12 bytes) naive or ext(4, 20 bytes) aware: see
                             `_NAIVE_DATETIME` and `_AWARE_DATETIME` (the fields, fold, and
                             the UTC offset in microseconds)
  5     datetime.date        ext(5, proleptic Gregorian ordinal as ">I")
  6     datetime.timedelta   ext(6, days, seconds, microseconds as ">iII")
  7     uuid.UUID            ext(7, the 16 bytes of the UUID)
  16    registered class     array [ext(16, b""), name, {alias: value, ...}] for an attrs
                             class or dataclass (its init fields), or
                             array [ext(16, b""), name, value] for an Enum subclass

Containers are marked in band (an empty ext value as the first item of an array) rather than
packed into an ext payload of their own, for two reasons: the whole value is packed in one pass
of msgpack's C packer, and nesting is bounded by msgpack itself on both sides. msgpack's packer
recurses in C once per nesting level and refuses more than 1024 levels, and its unpacker keeps an
explicit stack of the same size; with one packer per ext payload, every nested tuple would start
a fresh 1024-level budget, and a value of tuples and lists nested in turn would overflow the C
stack (measured here: a crash at 18 such levels). So: whatever `encode` accepts, `decode`
accepts, and neither can crash on nesting. The price: input that holds a marker is decoded with
a `list_hook`, one Python call per array; input without one (found by a byte search) is decoded
by msgpack alone.

Every other ext code, and msgpack's own timestamp (ext -1), is refused. Changing any layout
above means bumping `FORMAT_VERSION` and keeping a reader for the old one.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import struct
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs
import msgpack  # type: ignore[import-untyped]

from ._errors import CodecError, PayloadTooLarge, UnsupportedType
from ._store import DEFAULT_MAX_VALUE_SIZE

__all__ = ["FORMAT_VERSION", "Codec"]

FORMAT_VERSION: Final = 1
"""The first byte of every encoded value; bumped whenever the encoding changes."""

MAX_NESTING: Final = 1024
"""How deeply containers may nest: msgpack's own limit, the same when packing and unpacking."""

_EXT_TUPLE: Final = 1
_EXT_SET: Final = 2
_EXT_FROZENSET: Final = 3
_EXT_DATETIME: Final = 4
_EXT_DATE: Final = 5
_EXT_TIMEDELTA: Final = 6
_EXT_UUID: Final = 7
_EXT_REGISTERED: Final = 16

_TUPLE_MARK = msgpack.ExtType(_EXT_TUPLE, b"")
_SET_MARK = msgpack.ExtType(_EXT_SET, b"")
_FROZENSET_MARK = msgpack.ExtType(_EXT_FROZENSET, b"")
_REGISTERED_MARK = msgpack.ExtType(_EXT_REGISTERED, b"")
# msgpack writes every empty ext value as ext8: 0xc7, length 0, code. Input without these two
# bytes holds no container marker and is decoded without a `list_hook`.
_MARK_PREFIX: Final = b"\xc7\x00"

_NAIVE_DATETIME = struct.Struct(">HBBBBBIB")
# year, month, day, hour, minute, second, microsecond, fold
_AWARE_DATETIME = struct.Struct(">HBBBBBIBq")
# the same, then the UTC offset in microseconds (offsets may have seconds and microseconds)
_DATE = struct.Struct(">I")
_TIMEDELTA = struct.Struct(">iII")

# Packers keep their grown buffer after `pack`; do not pool one that grew past this.
_POOL_BUFFER_LIMIT: Final = 1024 * 1024

# msgpack decodes its timestamp ext (-1) itself, without calling `ext_hook`, and packs
# `msgpack.Timestamp` objects without calling `default`, so neither hook can refuse them. Their
# three encodings start with these bytes; only when one of them occurs in the bytes is the value
# searched for `msgpack.Timestamp` objects.
_TIMESTAMP_HEADERS: Final = (b"\xd6\xff", b"\xd7\xff", b"\xc7\x0c\xff")

_SUPPORTED = (
    "None, bool, int, float, str, bytes, list, tuple, dict, set, frozenset, datetime.datetime, "
    "datetime.date, datetime.timedelta, uuid.UUID and registered attrs classes, dataclasses and "
    "Enum subclasses"
)

# Types whose subclasses get a specific message (a subclass of datetime is a subclass of date).
_EXACT_TYPES: Final = (
    int,
    float,
    str,
    bytes,
    bytearray,
    list,
    tuple,
    dict,
    set,
    frozenset,
    datetime.datetime,
    datetime.date,
    datetime.timedelta,
    uuid.UUID,
)


class _Unencodable(Exception):
    """Raised by `default` deep inside msgpack; `Codec.encode` adds the path and the fix."""

    def __init__(self, value: object) -> None:
        super().__init__(type(value).__qualname__)
        self.value = value


class _Marker:
    """What a container marker decodes to, until `list_hook` replaces its array."""

    __slots__ = ("code", "kind")

    def __init__(self, code: int, kind: str) -> None:
        self.code = code
        self.kind = kind


_MARKERS: Final = {
    _EXT_TUPLE: _Marker(_EXT_TUPLE, "tuple"),
    _EXT_SET: _Marker(_EXT_SET, "set"),
    _EXT_FROZENSET: _Marker(_EXT_FROZENSET, "frozenset"),
    _EXT_REGISTERED: _Marker(_EXT_REGISTERED, "registered object"),
}


@attrs.frozen
class _Registered:
    """How one registered class is written and read."""

    name: str
    cls: type[Any]
    # (alias, attribute name) of the init fields; empty for an Enum
    fields: tuple[tuple[str, str], ...]
    is_enum: bool


def _type_name(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _register(entry: object) -> _Registered:
    if isinstance(entry, tuple):
        if len(entry) != 2 or not isinstance(entry[0], str) or not isinstance(entry[1], type):
            raise TypeError(f"a codec type must be a class or a (name, class) pair, got {entry!r}")
        name, cls = entry
        if not name:
            raise ValueError(f"the codec name of {_type_name(cls)} must not be empty")
    elif isinstance(entry, type):
        cls = entry
        name = _type_name(cls)
    else:
        raise TypeError(f"a codec type must be a class or a (name, class) pair, got {entry!r}")

    if issubclass(cls, enum.Enum):
        return _Registered(name=name, cls=cls, fields=(), is_enum=True)
    if attrs.has(cls):
        fields = tuple((f.alias, f.name) for f in attrs.fields(cls) if f.init)
        return _Registered(name=name, cls=cls, fields=fields, is_enum=False)
    is_dataclass = dataclasses.is_dataclass(cls)
    if is_dataclass:
        fields = tuple((f.name, f.name) for f in dataclasses.fields(cls) if f.init)
        return _Registered(name=name, cls=cls, fields=fields, is_enum=False)
    raise ValueError(
        f"cannot register {_type_name(cls)} with the codec: only attrs classes, dataclasses and "
        "Enum subclasses can be registered (builtins need no registration)"
    )


class Codec:
    """Encodes values to versioned msgpack bytes and back; an immutable value, safe to share.

    Supported values: None, bool, int (from -2**63 to 2**64-1), float, str, bytes (bytearray
    and memoryview are written as bytes), list, tuple (read back as a tuple), dict (keys of any
    supported hashable type), set, frozenset, `datetime.datetime`, `datetime.date`,
    `datetime.timedelta`, `uuid.UUID`, and instances of registered classes: attrs classes and
    dataclasses (their init fields, by alias, read back with `cls(**fields)`) and Enum
    subclasses (by value).

    Types are matched exactly: a subclass of a builtin (a str subclass, an unregistered
    IntEnum) or of a registered class is refused rather than silently written as its base
    class, so every value reads back with the type it was written with.

    An aware datetime keeps its exact UTC offset but not its tzinfo object: it reads back with a
    fixed-offset `datetime.timezone` (`datetime.timezone.utc` for offset zero). A
    `zoneinfo.ZoneInfo` datetime thus reads back equal and with the same offset, but no longer
    follows the zone's daylight-saving rules. Naive datetimes keep `fold`.

    Containers nest at most `MAX_NESTING` (1024) deep: a list, dict, tuple, set or frozenset
    counts one level, a registered attrs class or dataclass two (an array and its field map).
    Packing recurses in C once per level, about 0.5 KiB of stack each; encode on a thread with
    at least 1 MiB of stack (Linux threads get 8 MiB by default).

    `msgpack.ExtType` and `msgpack.Timestamp` objects are msgpack's own and are not values of
    this format: a Timestamp is refused, and an ExtType is written by msgpack itself before the
    codec can see it, so do not put one in a value.

    Example (`Point` is a registered attrs class):
        >>> codec = Codec(types=[Point])
        >>> codec.decode(codec.encode({"at": (Point(x=1, y=2), 3)}))
        {'at': (Point(x=1, y=2), 3)}
    """

    __slots__ = (
        "_by_class",
        "_by_name",
        "_default",
        "_encoders",
        "_entries",
        "_ext_hook",
        "_header",
        "_max_size",
        "_pool",
        "_registered",
    )

    def __init__(
        self,
        types: Iterable[type[Any] | tuple[str, type[Any]]] = (),
        *,
        max_size: int = DEFAULT_MAX_VALUE_SIZE,
    ) -> None:
        """Build a codec that also knows the given classes.

        Args:
            types: attrs classes, dataclasses and Enum subclasses to register, each either the
                class (its name is `f"{cls.__module__}.{cls.__qualname__}"`) or a `(name, cls)`
                pair. The name is what is stored: keep it stable when moving or renaming the
                class.
            max_size: the largest encoded value, in bytes (version byte included), that
                `encode` produces and `decode` accepts.

        Raises:
            ValueError: a class is not an attrs class, dataclass or Enum subclass; two classes
                share a name; one class is registered under two names; or `max_size` is below
                2.
            TypeError: an entry of `types` is neither a class nor a `(name, class)` pair.
        """
        if type(max_size) is not int or max_size < 2:
            raise ValueError(f"max_size must be an int of at least 2 bytes, got {max_size!r}")
        self._max_size = max_size
        self._header = bytes([FORMAT_VERSION])

        by_name: dict[str, _Registered] = {}
        by_class: dict[type[Any], _Registered] = {}
        for entry in types:
            reg = _register(entry)
            if reg.name in by_name and by_name[reg.name].cls is not reg.cls:
                raise ValueError(
                    f"cannot register {_type_name(reg.cls)} as {reg.name!r}: that name is "
                    f"already used by {_type_name(by_name[reg.name].cls)}; pass (name, class) "
                    "pairs to give them distinct names"
                )
            if reg.cls in by_class and by_class[reg.cls].name != reg.name:
                raise ValueError(
                    f"cannot register {_type_name(reg.cls)} as {reg.name!r}: it is already "
                    f"registered as {by_class[reg.cls].name!r}"
                )
            by_name[reg.name] = reg
            by_class[reg.cls] = reg
        self._by_name = by_name
        self._by_class = by_class
        self._entries = tuple((reg.name, reg.cls) for reg in by_name.values())
        self._registered: Mapping[str, type[Any]] = MappingProxyType(
            {reg.name: reg.cls for reg in by_name.values()}
        )

        encoders: dict[type[Any], Callable[[Any], object]] = {
            tuple: _encode_tuple,
            set: _encode_set,
            frozenset: _encode_frozenset,
            datetime.datetime: _encode_datetime,
            datetime.date: _encode_date,
            datetime.timedelta: _encode_timedelta,
            uuid.UUID: _encode_uuid,
        }
        for reg in by_class.values():
            encoders[reg.cls] = _registered_encoder(reg)
        self._encoders = encoders
        self._default = _make_default(encoders)
        self._ext_hook = _leaf_ext_hook
        # msgpack packers are not thread-safe (`default` runs Python code, so another thread
        # may run in the middle of a `pack`): each `encode` takes one from this pool.
        self._pool: list[Any] = []

    # -- public API --------------------------------------------------------------------------

    @property
    def registered(self) -> Mapping[str, type[Any]]:
        """The registered classes by stored name (a read-only mapping)."""
        return self._registered

    @property
    def max_size(self) -> int:
        """The largest encoded value, in bytes, that this codec writes or reads."""
        return self._max_size

    def with_types(self, *types: type[Any] | tuple[str, type[Any]]) -> Codec:
        """Return a new codec that knows these classes as well; this one is unchanged.

        Args:
            *types: more classes or `(name, class)` pairs, as for `Codec`.

        Returns:
            A codec with the same `max_size` and the union of the registrations.

        Raises:
            ValueError: as for `Codec`, including a name clash with an existing registration.
            TypeError: as for `Codec`.
        """
        return Codec((*self._entries, *types), max_size=self._max_size)

    def encode(self, value: object) -> bytes:
        """Encode a value: the format version byte, then msgpack.

        Args:
            value: a supported value (see `Codec`).

        Returns:
            The encoded bytes, at most `max_size` long.

        Raises:
            UnsupportedType: the value contains an object of a type this codec does not know
                (the message names the type, where it was found, and how to register it), or
                an int outside the 64-bit range.
            PayloadTooLarge: the encoded value is longer than `max_size`.
            CodecError: containers nest more than `MAX_NESTING` deep (or form a reference
                cycle), or a str holds characters UTF-8 cannot encode (lone surrogates).
        """
        pool = self._pool
        try:
            packer = pool.pop()
        except IndexError:
            packer = msgpack.Packer(default=self._default, use_bin_type=True, strict_types=True)
        try:
            body: bytes = packer.pack(value)
        except _Unencodable as exc:
            raise UnsupportedType(self._unsupported_message(value, exc.value)) from None
        except CodecError:
            raise
        except UnicodeEncodeError as exc:
            raise CodecError(
                f"cannot encode a str that UTF-8 cannot represent (lone surrogates?): {exc}"
            ) from exc
        except RecursionError as exc:
            raise CodecError(
                "cannot encode: Python's recursion limit was reached (encode was called from a "
                "very deep stack)"
            ) from exc
        except (ValueError, OverflowError, TypeError) as exc:
            if "recursion limit" in str(exc):
                # msgpack's traceback has one frame per level: keep the cause, not its frames
                raise CodecError(
                    f"cannot encode: containers nest more than {MAX_NESTING} deep (msgpack's "
                    "limit), or the value contains a reference cycle"
                ) from exc.with_traceback(None)
            raise CodecError(f"cannot encode: {exc}") from exc
        # A packer that raised is dropped (its buffer may hold a partial object), and so is
        # one whose buffer grew large: it would keep that memory for as long as it is pooled.
        if len(body) < _POOL_BUFFER_LIMIT:
            pool.append(packer)
        size = len(body) + 1
        if size > self._max_size:
            raise PayloadTooLarge(
                f"the encoded value is {size} bytes, more than max_size={self._max_size}"
            )
        if 0xFF in body and _has_timestamp_header(body):
            self._refuse_timestamps(value, "encode")
        return self._header + body

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Decode bytes written by `encode`.

        Args:
            data: the encoded bytes.

        Returns:
            The value, with the types it was encoded with (lists stay lists, tuples tuples).

        Raises:
            PayloadTooLarge: `data` is longer than `max_size`.
            UnsupportedType: the data holds an ext type this format does not define (including
                msgpack's timestamp), or a registered name this codec does not know.
            CodecError: the data is not a valid encoding: empty, a bad format byte, a format
                version newer than this code, truncated, extra bytes after the value, nested
                too deeply, invalid UTF-8, or a stored value its class rejects.
        """
        if type(data) is not bytes:
            data = bytes(data)
        size = len(data)
        if size > self._max_size:
            raise PayloadTooLarge(
                f"the encoded value is {size} bytes, more than max_size={self._max_size}"
            )
        if size == 0:
            raise CodecError("cannot decode empty input: expected a format version byte")
        version = data[0]
        if version != FORMAT_VERSION:
            raise CodecError(_version_message(version))
        if size == 1:
            raise CodecError("cannot decode: truncated input, nothing after the version byte")
        # Slicing copies; for large inputs a memoryview avoids it but costs more for small ones.
        body = data[1:] if size < 65536 else memoryview(data)[1:]
        try:
            # msgpack bounds every declared str/bin/array/map/ext length by the input length,
            # which is at most max_size: a header declaring 4 GiB is refused without allocating.
            if 0xC7 in data and data.find(_MARK_PREFIX) != -1:
                value = self._unpack_with_containers(body)
            else:
                value = msgpack.unpackb(
                    body, ext_hook=self._ext_hook, raw=False, strict_map_key=False
                )
        except CodecError:
            raise
        except (
            ValueError,
            TypeError,
            OverflowError,
            RecursionError,
            msgpack.UnpackException,
        ) as exc:
            raise CodecError(_decode_error_message(exc)) from exc
        if 0xFF in data and _has_timestamp_header(data):
            self._refuse_timestamps(value, "decode")
        return value

    def check(self, value: object) -> None:
        """Raise exactly what `encode` would raise for this value, and keep nothing.

        Args:
            value: the value to check.

        Raises:
            UnsupportedType: as for `encode`.
            PayloadTooLarge: as for `encode`.
            CodecError: as for `encode`.
        """
        self.encode(value)

    def __repr__(self) -> str:
        names = ", ".join(repr(name) for name in self._registered)
        return f"Codec(types=[{names}], max_size={self._max_size})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Codec):
            return NotImplemented
        return (self._entries, self._max_size) == (other._entries, other._max_size)

    def __hash__(self) -> int:
        return hash((self._entries, self._max_size))

    # -- internals ---------------------------------------------------------------------------

    def _unpack_with_containers(self, body: bytes | memoryview) -> Any:
        """Decode input that may hold container markers (the slower path)."""
        # Every marker must be consumed by `list_hook` as the first item of its array; one
        # anywhere else (a forged or corrupted input) would leak into the value, so count them.
        unconsumed = 0
        build_registered = self._build_registered

        def ext_hook(code: int, data: bytes) -> Any:
            nonlocal unconsumed
            marker = _MARKERS.get(code)
            if marker is None or data:
                return _leaf_ext_hook(code, data)
            unconsumed += 1
            return marker

        def list_hook(items: list[Any]) -> Any:
            nonlocal unconsumed
            if not items or type(items[0]) is not _Marker:
                return items
            unconsumed -= 1
            code = items[0].code
            del items[0]
            if code == _EXT_TUPLE:
                return tuple(items)
            if code == _EXT_SET:
                return set(items)
            if code == _EXT_FROZENSET:
                return frozenset(items)
            return build_registered(items)

        value = msgpack.unpackb(
            body, ext_hook=ext_hook, list_hook=list_hook, raw=False, strict_map_key=False
        )
        if unconsumed:
            raise CodecError(
                "cannot decode: a container marker (ext type 1, 2, 3 or 16) is not the first "
                "item of an array (corrupted input)"
            )
        return value

    def _build_registered(self, items: list[Any]) -> Any:
        if len(items) != 2 or type(items[0]) is not str:
            raise CodecError("cannot decode a registered object: expected [name, fields]")
        name, fields = items
        reg = self._by_name.get(name)
        if reg is None:
            known = ", ".join(repr(known) for known in sorted(self._by_name)) or "none"
            raise UnsupportedType(
                f"cannot decode a registered object named {name!r}: this codec does not know "
                f"that name (registered: {known}); register the class under that name: "
                "open_node(..., types=[(name, MyClass)]) or Codec(types=[(name, MyClass)])"
            )
        if reg.is_enum:
            try:
                return reg.cls(fields)
            except (ValueError, TypeError) as exc:
                raise CodecError(
                    f"cannot decode {name!r}: the stored value is not a member of "
                    f"{_type_name(reg.cls)}: {exc}"
                ) from exc
        if type(fields) is not dict:
            raise CodecError(f"cannot decode {name!r}: its fields are not a map")
        try:
            return reg.cls(**fields)
        except Exception as exc:
            # The class's own __init__ (and its validators) judge the stored fields.
            raise CodecError(
                f"cannot decode {name!r}: {_type_name(reg.cls)} rejected the stored fields "
                f"{sorted(map(str, fields))}: {type(exc).__name__}: {exc}"
            ) from exc

    def _unsupported_message(self, root: object, value: object) -> str:
        cls = type(value)
        found = _find(root, lambda obj: obj is value, self._by_class)
        where = f" at {found[1]}" if found is not None and found[1] else ""
        if isinstance(value, int) and cls is int:
            # only ints outside the 64-bit range reach `default`
            return (
                f"cannot encode an int of {value.bit_length()} bits{where}: ints must fit in 64 "
                "bits (-2**63 to 2**64-1); store larger numbers as str or bytes"
            )
        short = cls.__qualname__
        how = f"register it: open_node(..., types=[{short}]) or Codec(types=[{short}])"
        for base in cls.__mro__[1:]:
            if base in self._by_class:
                return (
                    f"cannot encode a {_type_name(cls)}{where}: it is a subclass of the "
                    f"registered {_type_name(base)}, and classes are matched exactly; {how}"
                )
        if issubclass(cls, enum.Enum) or attrs.has(cls) or dataclasses.is_dataclass(cls):
            return f"cannot encode a {_type_name(cls)}{where}: it is not registered; {how}"
        for builtin in _EXACT_TYPES:
            if issubclass(cls, builtin):
                return (
                    f"cannot encode a {_type_name(cls)}{where}: it is a subclass of "
                    f"{builtin.__name__}, and only the exact type is supported (so that "
                    f"values read back with their type); convert it to {builtin.__name__}, or "
                    "make it an Enum, attrs class or dataclass and register it: "
                    f"open_node(..., types=[{short}]) or Codec(types=[{short}])"
                )
        return (
            f"cannot encode a {_type_name(cls)}{where}: supported are {_SUPPORTED}; make it an "
            f"attrs class, dataclass or Enum and {how}"
        )

    def _refuse_timestamps(self, value: object, action: str) -> None:
        found = _find(value, lambda obj: type(obj) is msgpack.Timestamp, self._by_class)
        if found is not None:
            where = f" at {found[1]}" if found[1] else ""
            raise UnsupportedType(
                f"cannot {action} a msgpack Timestamp (ext type -1){where}: it is not part of "
                "this format; use datetime.datetime"
            )


# -- encoding ------------------------------------------------------------------------------

_new_tuple = tuple.__new__


def _ext(code: int, data: bytes) -> Any:
    # `msgpack.ExtType(code, data)` validates its arguments in Python, which costs three times
    # as much as building the named tuple directly; the codes and data here are always valid.
    return _new_tuple(msgpack.ExtType, (code, data))


def _make_default(encoders: Mapping[type[Any], Callable[[Any], object]]) -> Callable[..., Any]:
    get = encoders.get

    def default(value: object) -> object:
        encoder = get(type(value))
        if encoder is None:
            raise _Unencodable(value)
        return encoder(value)

    return default


def _encode_tuple(value: tuple[Any, ...]) -> list[Any]:
    return [_TUPLE_MARK, *value]


def _encode_set(value: set[Any]) -> list[Any]:
    return [_SET_MARK, *value]


def _encode_frozenset(value: frozenset[Any]) -> list[Any]:
    return [_FROZENSET_MARK, *value]


def _registered_encoder(reg: _Registered) -> Callable[[Any], object]:
    name = reg.name
    if reg.is_enum:

        def encode_enum(value: enum.Enum) -> list[Any]:
            return [_REGISTERED_MARK, name, value.value]

        return encode_enum

    spec = reg.fields

    def encode_record(value: object) -> list[Any]:
        return [_REGISTERED_MARK, name, {alias: getattr(value, attr) for alias, attr in spec}]

    return encode_record


def _encode_datetime(value: datetime.datetime) -> Any:
    offset = None if value.tzinfo is None else value.utcoffset()
    if offset is None:
        data = _NAIVE_DATETIME.pack(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            value.fold,
        )
    else:
        data = _AWARE_DATETIME.pack(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            value.fold,
            offset // datetime.timedelta(microseconds=1),
        )
    return _ext(_EXT_DATETIME, data)


def _encode_date(value: datetime.date) -> Any:
    return _ext(_EXT_DATE, _DATE.pack(value.toordinal()))


def _encode_timedelta(value: datetime.timedelta) -> Any:
    data = _TIMEDELTA.pack(value.days, value.seconds, value.microseconds)
    return _ext(_EXT_TIMEDELTA, data)


def _encode_uuid(value: uuid.UUID) -> Any:
    return _ext(_EXT_UUID, value.bytes)


# -- decoding ------------------------------------------------------------------------------


def _leaf_ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_DATETIME:
        return _decode_datetime(data)
    if code == _EXT_DATE:
        return _decode_date(data)
    if code == _EXT_UUID:
        return _decode_uuid(data)
    if code == _EXT_TIMEDELTA:
        return _decode_timedelta(data)
    if code in _MARKERS:
        # a marker with data (the fast path only runs when no empty ext value is present)
        raise CodecError(
            f"cannot decode: ext type {code} marks a {_MARKERS[code].kind} and must be empty, "
            f"but holds {len(data)} bytes"
        )
    raise UnsupportedType(
        f"cannot decode ext type {code}: it is not part of format version {FORMAT_VERSION} "
        "(the data was not written by this codec, or is corrupted)"
    )


_TIMEZONES: dict[int, datetime.timezone] = {0: datetime.UTC}


def _decode_datetime(data: bytes) -> datetime.datetime:
    if len(data) == _NAIVE_DATETIME.size:
        *fields, fold = _NAIVE_DATETIME.unpack(data)
        return datetime.datetime(*fields, fold=fold)
    if len(data) == _AWARE_DATETIME.size:
        year, month, day, hour, minute, second, micro, fold, offset = _AWARE_DATETIME.unpack(data)
        tz = _TIMEZONES.get(offset)
        if tz is None:
            tz = datetime.timezone(datetime.timedelta(microseconds=offset))
            if len(_TIMEZONES) < 512:  # bounded: offsets come from the input
                _TIMEZONES[offset] = tz
        return datetime.datetime(year, month, day, hour, minute, second, micro, tz, fold=fold)
    raise CodecError(f"cannot decode a datetime from {len(data)} bytes")


def _decode_date(data: bytes) -> datetime.date:
    if len(data) != _DATE.size:
        raise CodecError(f"cannot decode a date from {len(data)} bytes")
    (ordinal,) = _DATE.unpack(data)
    return datetime.date.fromordinal(ordinal)


def _decode_timedelta(data: bytes) -> datetime.timedelta:
    if len(data) != _TIMEDELTA.size:
        raise CodecError(f"cannot decode a timedelta from {len(data)} bytes")
    days, seconds, microseconds = _TIMEDELTA.unpack(data)
    return datetime.timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _decode_uuid(data: bytes) -> uuid.UUID:
    if len(data) != 16:
        raise CodecError(f"cannot decode a UUID from {len(data)} bytes")
    return uuid.UUID(bytes=data)


def _has_timestamp_header(data: bytes) -> bool:
    return any(data.find(header) != -1 for header in _TIMESTAMP_HEADERS)


def _version_message(version: int) -> str:
    if 1 < version < 0x80:
        return (
            f"cannot decode format version {version}: written by a newer trio-actors (this one "
            f"reads version {FORMAT_VERSION}); upgrade trio-actors to read it"
        )
    return (
        f"cannot decode: bad format byte 0x{version:02x} (expected version {FORMAT_VERSION}): "
        "not a value written by this codec, or corrupted"
    )


def _decode_error_message(exc: BaseException) -> str:
    if isinstance(exc, msgpack.ExtraData):
        return f"cannot decode: {len(exc.extra)} extra bytes after the value"
    if isinstance(exc, msgpack.StackError):
        return f"cannot decode: too deeply nested (more than {MAX_NESTING} levels)"
    if isinstance(exc, msgpack.FormatError):
        return "cannot decode: invalid msgpack byte (0xc1 or another reserved type)"
    if isinstance(exc, RecursionError):
        return (
            "cannot decode: Python's recursion limit was reached (decode was called from a very "
            "deep stack)"
        )
    if isinstance(exc, UnicodeDecodeError):
        return f"cannot decode: a string is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    text = str(exc)
    if "incomplete input" in text:
        return "cannot decode: truncated input (the value ends before its declared end)"
    if "exceeds max_" in text:
        return f"cannot decode: a declared length exceeds the input ({text})"
    if isinstance(exc, TypeError) and "unhashable" in text:
        return f"cannot decode: a map key or set item is not hashable ({text})"
    return f"cannot decode: malformed input ({type(exc).__name__}: {text})"


# -- searching a value (only on error paths) -------------------------------------------------

_FIND_LIMIT: Final = 1_000_000


def _find(
    root: object, predicate: Callable[[object], bool], registered: Mapping[type[Any], _Registered]
) -> tuple[object, str] | None:
    """The first object in encoding order that satisfies `predicate`, and its path.

    Iterative, so any nesting depth is fine; containers seen twice (cycles) are not searched
    again, and the search gives up after `_FIND_LIMIT` objects.
    """
    stack: list[tuple[object, str]] = [(root, "")]
    seen: set[int] = set()
    visited = 0
    while stack and visited < _FIND_LIMIT:
        obj, path = stack.pop()
        visited += 1
        if predicate(obj):
            return obj, path
        children = _children(obj, path, registered)
        if children is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        stack.extend(reversed(list(children)))
    return None


def _children(
    obj: object, path: str, registered: Mapping[type[Any], _Registered]
) -> Iterator[tuple[object, str]] | None:
    cls = type(obj)
    if cls is list or cls is tuple:
        assert isinstance(obj, list | tuple)
        return ((item, f"{path}[{index}]") for index, item in enumerate(obj))
    if cls is dict:
        assert isinstance(obj, dict)
        return _dict_children(obj, path)
    if cls is set or cls is frozenset:
        assert isinstance(obj, set | frozenset)
        return ((item, f"{path}{{...}}") for item in obj)
    reg = registered.get(cls)
    if reg is None:
        return None
    if reg.is_enum:
        assert isinstance(obj, enum.Enum)
        return iter([(obj.value, f"{path}.value")])
    return ((getattr(obj, attr), f"{path}.{attr}") for _, attr in reg.fields)


def _dict_children(obj: dict[Any, Any], path: str) -> Iterator[tuple[object, str]]:
    for key, item in obj.items():
        label = _short_repr(key)
        yield key, f"{path} key {label}".lstrip()
        yield item, f"{path}[{label}]"


def _short_repr(value: object) -> str:
    # Only builtins are shown: another type's __repr__ is user code that might fail.
    if type(value) not in (str, bytes, int, float, bool, type(None)):
        return f"<{type(value).__qualname__}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
