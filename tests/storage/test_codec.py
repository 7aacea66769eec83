"""The versioned msgpack codec: round trips of every supported type, every error, bad input."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import itertools
import math
import subprocess
import sys
import textwrap
import tracemalloc
import uuid
import zoneinfo
from pathlib import Path
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import (
    DEFAULT_MAX_VALUE_SIZE,
    FORMAT_VERSION,
    Codec,
    CodecError,
    PayloadTooLarge,
    UnsupportedType,
)
from storage._codec import MAX_NESTING

UTC = datetime.UTC


# -- registered test types -------------------------------------------------------------------


@attrs.frozen
class Point:
    x: int
    y: int


@attrs.define
class Account:
    owner: str
    _balance: int = 0  # stored under its alias, "balance"
    history: list[Any] = attrs.field(factory=list)
    cache: int = attrs.field(init=False, default=0)  # not an init field: not stored


@dataclasses.dataclass(frozen=True)
class Item:
    sku: str
    qty: int
    note: Any = None


@dataclasses.dataclass
class Box:
    content: Any
    opened: int = dataclasses.field(init=False, default=0)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Shape(enum.Enum):
    SQUARE = (1, 1)
    LINE = (1, 0)


@attrs.frozen
class Unregistered:
    value: int


@attrs.frozen
class Positive:
    value: int = attrs.field()

    @value.validator
    def _check(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value <= 0:
            raise ValueError("value must be positive")


class SubPoint(Point):
    pass


class MyStr(str):
    __slots__ = ()


TYPES: list[type[Any]] = [Point, Account, Item, Box, Color, Level, Shape]
CODEC = Codec(TYPES)


def name_of(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def assert_same(a: Any, b: Any) -> None:
    """Equal, and of exactly the same types all the way down."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, dict):
        assert len(a) == len(b)
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):
            assert_same(ka, kb)
            assert_same(va, vb)
    elif isinstance(a, set | frozenset):
        assert a == b
        by_value = {item: item for item in b}
        for item in a:
            assert_same(item, by_value[item])
    elif isinstance(a, float):
        assert repr(a) == repr(b)
    elif isinstance(a, datetime.datetime):
        assert a == b
        assert a.utcoffset() == b.utcoffset()
        assert a.fold == b.fold
        assert (a.tzinfo is None) == (b.tzinfo is None)
    elif attrs.has(type(a)):
        for field in attrs.fields(type(a)):
            assert_same(getattr(a, field.name), getattr(b, field.name))
    elif dataclasses.is_dataclass(a):
        for dc_field in dataclasses.fields(a):
            assert_same(getattr(a, dc_field.name), getattr(b, dc_field.name))
    else:
        assert a == b


def round_trip(value: Any, codec: Codec = CODEC) -> Any:
    decoded = codec.decode(codec.encode(value))
    assert_same(value, decoded)
    return decoded


# -- strategies ------------------------------------------------------------------------------

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
day = datetime.timedelta(days=1)
offsets = st.timedeltas(
    min_value=-day + datetime.timedelta(microseconds=1),
    max_value=day - datetime.timedelta(microseconds=1),
)
timezones = st.none() | st.just(UTC) | st.builds(datetime.timezone, offsets)
datetimes = st.builds(
    lambda dt, fold: dt.replace(fold=fold),
    st.datetimes(timezones=timezones),
    st.sampled_from([0, 1]),
)

hashable_leaves = (
    st.none()
    | st.booleans()
    | ints
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | datetimes
    | st.dates()
    | st.timedeltas()
    | st.uuids()
    | st.sampled_from(Color)
    | st.sampled_from(Level)
    | st.sampled_from(Shape)
    | st.builds(Point, ints, ints)
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: (
        st.lists(inner, max_size=4).map(tuple)
        | st.frozensets(inner, max_size=4)
        | st.builds(Item, st.text(max_size=5), ints, inner)
    ),
    max_leaves=8,
)
values = st.recursive(
    hashables,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=5).map(tuple)
        | st.dictionaries(hashables, inner, max_size=5)
        | st.sets(hashables, max_size=5)
        | st.frozensets(hashables, max_size=5)
        | st.builds(Item, st.text(max_size=5), ints, inner)
        | st.builds(Account, st.text(max_size=5), ints, st.lists(inner, max_size=3))
        | st.builds(Box, inner)
    ),
    max_leaves=30,
)

fuzz_settings = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# -- round trips -----------------------------------------------------------------------------


@fuzz_settings
@given(values)
def test_round_trip_of_every_supported_type(value: Any) -> None:
    round_trip(value)


@fuzz_settings
@given(values)
def test_encoding_is_deterministic_and_versioned(value: Any) -> None:
    data = CODEC.encode(value)
    assert data[0] == FORMAT_VERSION
    assert CODEC.encode(value) == data
    assert CODEC.check(value) is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        0.0,
        -0.0,
        1.5,
        math.inf,
        -math.inf,
        "",
        "héllo ☃",
        b"",
        b"\x00\xff",
        [],
        (),
        (1,),
        ((),),
        [(1, [2, (3, 4)])],
        {},
        {"a": 1},
        {1: "int key", None: 0, (1, 2): "tuple key", frozenset({1}): "frozenset key", b"k": 1},
        set(),
        {1, "a", (2, 3)},
        frozenset(),
        frozenset({frozenset({1}), (1,)}),
        datetime.datetime(2024, 2, 29, 23, 59, 59, 999999),
        datetime.datetime(1, 1, 1),
        datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime.datetime(
            2024,
            1,
            1,
            tzinfo=datetime.timezone(datetime.timedelta(hours=-23, seconds=-59, microseconds=-1)),
        ),
        datetime.datetime(2024, 11, 3, 1, 30, fold=1),
        datetime.date(1, 1, 1),
        datetime.date(9999, 12, 31),
        datetime.timedelta(0),
        datetime.timedelta.min,
        datetime.timedelta.max,
        datetime.timedelta(days=-1, microseconds=1),
        uuid.UUID(int=0),
        uuid.UUID(int=2**128 - 1),
        Point(1, 2),
        Account("alice", 10, [Point(0, 0), ("x", Color.RED)]),
        Item("sku", 3, note=Box(content={"deep": (Level.HIGH,)})),
        Color.GREEN,
        Level.LOW,
        Shape.SQUARE,
        {"items": [Point(1, 2), Item("a", 1)], Point(3, 4): {Color.RED, Level.HIGH}},
    ],
    ids=repr,
)
def test_round_trip_examples(value: Any) -> None:
    round_trip(value)


def test_tuples_stay_tuples_and_lists_stay_lists() -> None:
    decoded = round_trip({"t": (1, [2, (3,)]), "l": [(), []]})
    assert type(decoded["t"]) is tuple
    assert type(decoded["t"][1]) is list
    assert type(decoded["t"][1][1]) is tuple
    assert decoded["l"] == [(), []]


def test_bytearray_and_memoryview_encode_as_bytes() -> None:
    assert CODEC.decode(CODEC.encode(bytearray(b"abc"))) == b"abc"
    decoded = CODEC.decode(CODEC.encode([memoryview(b"xyz")]))
    assert decoded == [b"xyz"]
    assert type(decoded[0]) is bytes


def test_nan_round_trips() -> None:
    assert math.isnan(CODEC.decode(CODEC.encode(math.nan)))


def test_aware_datetime_keeps_its_exact_offset() -> None:
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30, seconds=12, microseconds=7))
    value = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=tz)
    decoded = round_trip(value)
    assert decoded.utcoffset() == tz.utcoffset(None)
    assert decoded.microsecond == 123456


def test_utc_datetime_reads_back_with_the_utc_singleton() -> None:
    decoded = round_trip(datetime.datetime(2024, 1, 1, tzinfo=UTC))
    assert decoded.tzinfo is UTC


def test_zoneinfo_datetime_reads_back_with_a_fixed_offset() -> None:
    try:
        zone = zoneinfo.ZoneInfo("Europe/Paris")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time zone database on this machine")
    summer = datetime.datetime(2024, 7, 1, 12, 0, tzinfo=zone)
    decoded = CODEC.decode(CODEC.encode(summer))
    assert decoded == summer
    assert decoded.utcoffset() == datetime.timedelta(hours=2)
    assert decoded.tzinfo == datetime.timezone(datetime.timedelta(hours=2))
    # the ambiguous hour at the end of DST: fold picks the offset, and the offset is kept
    late = datetime.datetime(2024, 10, 27, 2, 30, tzinfo=zone, fold=1)
    assert CODEC.decode(CODEC.encode(late)).utcoffset() == datetime.timedelta(hours=1)


def test_naive_datetime_keeps_fold() -> None:
    decoded = round_trip(datetime.datetime(2024, 10, 27, 2, 30, fold=1))
    assert decoded.fold == 1


def test_attrs_fields_are_stored_by_alias_and_rebuilt_with_init() -> None:
    account = Account("bob", 5)
    account.cache = 99  # not an init field: not stored, back to its default
    data = CODEC.encode(account)
    decoded = CODEC.decode(data)
    assert decoded == Account("bob", 5)
    assert decoded.cache == 0
    assert msgpack.unpackb(data[1:]) == [
        msgpack.ExtType(16, b""),
        name_of(Account),
        {"owner": "bob", "balance": 5, "history": []},
    ]


def test_dataclass_init_false_fields_are_not_stored() -> None:
    box = Box([1])
    box.opened = 3
    decoded = CODEC.decode(CODEC.encode(box))
    assert decoded.content == [1]
    assert decoded.opened == 0


def test_enum_is_stored_by_value_and_keeps_its_type() -> None:
    decoded = round_trip([Level.HIGH, Color.RED, Shape.LINE])
    assert decoded[0] is Level.HIGH
    assert decoded[2] is Shape.LINE


def test_registered_names_default_and_override() -> None:
    codec = Codec([Point, ("shop.Item", Item)])
    assert dict(codec.registered) == {name_of(Point): Point, "shop.Item": Item}
    data = codec.encode(Item("a", 1))
    assert b"shop.Item" in data
    # a codec with the same class under another name cannot read it, and says which it knows
    other = Codec([Point, Item])
    with pytest.raises(UnsupportedType, match=r"'shop\.Item'.*registered: .*Item"):
        other.decode(data)
    # the stored name, not the class, is what must match
    assert Codec([("shop.Item", Item)]).decode(data) == Item("a", 1)
    with pytest.raises(CodecError, match="rejected the stored fields"):
        Codec([("shop.Item", Box)]).decode(data)


def test_registered_is_read_only() -> None:
    with pytest.raises(TypeError):
        CODEC.registered["x"] = Point  # type: ignore[index]


def test_with_types_returns_a_new_codec() -> None:
    base = Codec([Point], max_size=1000)
    more = base.with_types(Item, ("c", Color))
    assert set(base.registered.values()) == {Point}
    assert set(more.registered.values()) == {Point, Item, Color}
    assert more.max_size == 1000
    assert more.decode(more.encode((Point(1, 2), Item("a", 1), Color.RED)))[2] is Color.RED
    with pytest.raises(UnsupportedType):
        base.encode(Item("a", 1))
    assert base.with_types(Point) == base


def test_codec_is_a_value() -> None:
    assert Codec([Point, Item]) == Codec([Point, Item])
    assert hash(Codec([Point])) == hash(Codec([Point]))
    assert Codec([Point]) != Codec([Point], max_size=100)
    assert Codec() != "codec"
    assert repr(Codec([("p", Point)], max_size=100)) == "Codec(types=['p'], max_size=100)"
    assert Codec().max_size == DEFAULT_MAX_VALUE_SIZE


def test_same_class_twice_under_one_name_is_fine() -> None:
    assert list(Codec([Point, Point]).registered) == [name_of(Point)]


# -- construction errors ---------------------------------------------------------------------


@pytest.mark.parametrize("cls", [int, object, dict, type("Plain", (), {})])
def test_registering_a_class_that_is_not_attrs_dataclass_or_enum(cls: type[Any]) -> None:
    with pytest.raises(ValueError, match=rf"cannot register {name_of(cls)}.*attrs"):
        Codec([cls])


def test_two_classes_under_one_name() -> None:
    with pytest.raises(ValueError, match=r"cannot register .*Item as 'x'.*already used by .*Point"):
        Codec([("x", Point), ("x", Item)])


def test_one_class_under_two_names() -> None:
    with pytest.raises(ValueError, match=r"already registered as 'a'"):
        Codec([("a", Point), ("b", Point)])


def test_with_types_name_clash() -> None:
    with pytest.raises(ValueError, match="already used by"):
        Codec([("x", Point)]).with_types(("x", Item))


@pytest.mark.parametrize("entry", ["Point", ("x",), ("x", Point, 1), (1, Point), ("x", "y")])
def test_malformed_type_entries(entry: Any) -> None:
    with pytest.raises(TypeError, match="a class or a"):
        Codec([entry])


def test_empty_name() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        Codec([("", Point)])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_size": 1}, "max_size"),
        ({"max_size": 10.0}, "max_size"),
    ],
)
def test_bad_limits(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        Codec(**kwargs)


# -- encode errors ---------------------------------------------------------------------------


def test_unregistered_attrs_class_names_the_type_the_fix_and_the_path() -> None:
    with pytest.raises(UnsupportedType) as info:
        CODEC.encode({"items": [1, 2, Unregistered(3)]})
    message = str(info.value)
    assert name_of(Unregistered) in message
    assert "at ['items'][2]" in message
    assert (
        "register it: open_node(..., types=[Unregistered]) or Codec(types=[Unregistered])"
        in message
    )


def test_unsupported_object_lists_what_is_supported() -> None:
    with pytest.raises(UnsupportedType, match=r"builtins\.object.*supported are None, bool"):
        CODEC.encode(object())


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ((1, Unregistered(1)), "at [1]"),
        ({Unregistered(1)}, "at {...}"),
        ({"s": frozenset({Unregistered(1)})}, "at ['s']{...}"),
        ({"k": {"j": [Item("a", 1, Unregistered(1))]}}, "at ['k']['j'][0].note"),
        (Account("x", 0, [Unregistered(1)]), "at .history[0]"),
        ({Unregistered(1): 1}, "at key <Unregistered>"),
        ({(1, Unregistered(1)): 1}, "at key <tuple>[1]"),
    ],
)
def test_unsupported_path(value: Any, path: str) -> None:
    with pytest.raises(UnsupportedType, match=r"Unregistered") as info:
        CODEC.encode(value)
    assert path in str(info.value)


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, [0, 10**30]])
def test_ints_must_fit_in_64_bits(value: Any) -> None:
    with pytest.raises(UnsupportedType, match="ints must fit in 64 bits"):
        CODEC.encode(value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (MyStr("x"), "subclass of str"),
        (enum.IntFlag("Perm", "R W")["R"], "it is not registered; register it"),
        (SubPoint(1, 2), r"subclass of the registered .*Point"),
        (type("D", (dict,), {})(), "subclass of dict"),
        (type("DT", (datetime.datetime,), {})(2024, 1, 1), "subclass of datetime"),
        (type("F", (float,), {})(1.0), "subclass of float"),
    ],
)
def test_subclasses_are_refused_not_written_as_their_base(value: Any, fragment: str) -> None:
    with pytest.raises(UnsupportedType, match=fragment):
        CODEC.encode(value)


def test_unregistered_int_enum_is_not_written_as_an_int() -> None:
    with pytest.raises(UnsupportedType, match="not registered"):
        Codec().encode(Level.HIGH)


def test_unencodable_str() -> None:
    with pytest.raises(CodecError, match="surrogates"):
        CODEC.encode("\ud800")


def test_msgpack_timestamp_is_refused_on_encode() -> None:
    with pytest.raises(UnsupportedType, match=r"msgpack Timestamp .* at \['t'\]"):
        CODEC.encode({"t": msgpack.Timestamp(1, 0)})


def test_check_raises_like_encode() -> None:
    CODEC.check({"a": (Point(1, 2),)})
    with pytest.raises(UnsupportedType, match="Unregistered"):
        CODEC.check([Unregistered(1)])
    with pytest.raises(PayloadTooLarge):
        Codec(max_size=10).check("x" * 10)


def test_payload_too_large_on_encode_names_both_sizes() -> None:
    codec = Codec(max_size=100)
    assert len(codec.encode(b"x" * 97)) == 100  # 1 version byte + 2 header bytes + 97
    with pytest.raises(PayloadTooLarge, match=r"101 bytes, more than max_size=100"):
        codec.encode(b"x" * 98)
    with pytest.raises(PayloadTooLarge, match="max_size=100"):
        codec.encode([(b"x" * 200,)])


def test_default_max_size_is_the_store_limit() -> None:
    with pytest.raises(PayloadTooLarge, match=str(DEFAULT_MAX_VALUE_SIZE)):
        Codec().encode(b"x" * DEFAULT_MAX_VALUE_SIZE)


# -- nesting -------------------------------------------------------------------------------


def nested_lists(depth: int) -> Any:
    value: Any = None
    for _ in range(depth):
        value = [value]
    return value


def nested_tuples(depth: int) -> Any:
    value: Any = None
    for _ in range(depth):
        value = (value,)
    return value


def deepest(levels: int) -> Any:
    """Tuples, lists, dicts and registered objects nested in turn, exactly `levels` deep."""
    value: Any = None
    used = 0
    for kind in itertools.cycle(["tuple", "record", "list", "dict"]):
        if used == levels:
            return value
        if kind == "record" and used + 2 <= levels:
            value, used = Box(value), used + 2  # an array and its field map
        elif kind == "tuple":
            value, used = (value,), used + 1
        elif kind == "dict":
            value, used = {"k": value}, used + 1
        else:
            value, used = [value], used + 1
    raise AssertionError("unreachable")


def test_nesting_is_bounded_by_msgpack_on_both_sides() -> None:
    for build in (nested_lists, nested_tuples, deepest):
        data = CODEC.encode(build(MAX_NESTING))
        # re-encoding compares without Python's own recursion in ==
        assert CODEC.encode(CODEC.decode(data)) == data
        with pytest.raises(CodecError, match="nest more than 1024 deep") as info:
            CODEC.encode(build(MAX_NESTING + 1))
        assert info.value.__cause__ is not None
        assert info.value.__cause__.__traceback__ is None  # not one frame per level
    assert type(CODEC.decode(CODEC.encode(nested_tuples(MAX_NESTING)))) is tuple
    boxes: Any = None
    for _ in range(MAX_NESTING // 2):
        boxes = Box(boxes)
    CODEC.encode(boxes)
    with pytest.raises(CodecError, match="nest more than"):
        CODEC.encode(Box(boxes))


def test_too_deep_input_is_refused_on_decode() -> None:
    too_deep = bytes([FORMAT_VERSION]) + b"\x91" * (MAX_NESTING + 1) + b"\xc0"
    with pytest.raises(CodecError, match="too deeply nested"):
        CODEC.decode(too_deep)
    tuples = bytes([FORMAT_VERSION]) + b"\x92\xc7\x00\x01" * (MAX_NESTING + 1) + b"\xc0"
    with pytest.raises(CodecError, match="too deeply nested"):
        CODEC.decode(tuples)


def test_a_reference_cycle_is_an_error_not_a_crash() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(CodecError, match="cycle"):
        CODEC.encode(cycle)
    through_tuple: list[Any] = []
    through_tuple.append((through_tuple,))
    with pytest.raises(CodecError, match="cycle"):
        CODEC.encode(through_tuple)
    account = Account("a")
    account.history.append(account)
    with pytest.raises(CodecError, match="cycle"):
        CODEC.encode(account)


def test_the_deepest_value_fits_a_small_thread_stack() -> None:
    # In a child process: if packing ever overflowed the C stack, it would kill pytest. msgpack
    # recurses in C once per level (about 0.4 KiB each); the docs promise 1 MiB is enough.
    script = textwrap.dedent(
        """
        import threading
        from storage._codec import MAX_NESTING, Codec

        value = None
        for _ in range(MAX_NESTING):
            value = (value,) if len(str(type(value))) % 2 else [value]
        codec = Codec()
        done = []

        def run():
            data = codec.encode(value)
            done.append(codec.encode(codec.decode(data)) == data)

        threading.stack_size(1024 * 1024)
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        print(done)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[True]"


def test_recursion_error_becomes_codec_error() -> None:
    value = [(1,), Point(1, 2), {frozenset({2})}]
    data = CODEC.encode(value)
    old = sys.getrecursionlimit()
    base = 2
    while True:  # the lowest limit above the current depth
        try:
            sys.setrecursionlimit(base)
            break
        except RecursionError:
            base += 1
    causes: dict[str, list[BaseException | None]] = {"encode": [], "decode": []}
    try:
        for extra in range(1, 40):
            sys.setrecursionlimit(base + extra)
            for action, call in (("encode", CODEC.encode), ("decode", CODEC.decode)):
                try:
                    call(value if action == "encode" else data)
                except CodecError as exc:
                    causes[action].append(exc.__cause__)
                except RecursionError:
                    pass  # raised by the call itself, before the codec runs
    finally:
        sys.setrecursionlimit(old)
    assert any(isinstance(cause, RecursionError) for cause in causes["encode"])
    assert any(isinstance(cause, RecursionError) for cause in causes["decode"])


# -- decode errors ---------------------------------------------------------------------------


def body(value: Any) -> bytes:
    """Raw msgpack, with the version byte in front."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return bytes([FORMAT_VERSION]) + packed


def ext(code: int, data: bytes) -> bytes:
    """An ext8 value by hand (msgpack.ExtType refuses negative codes)."""
    assert len(data) < 256
    return bytes([FORMAT_VERSION, 0xC7, len(data)]) + code.to_bytes(1, signed=True) + data


def marked(code: int, *items: Any) -> bytes:
    """An array starting with the container marker `code`, as the codec writes containers."""
    return body([msgpack.ExtType(code, b""), *items])


@pytest.mark.parametrize(
    ("data", "fragment", "cause"),
    [
        (b"", "empty input", None),
        (b"\x01", "truncated", None),
        (b"\x01\x92\x01", "truncated", ValueError),
        (b"\x01\xa5abc", "truncated", ValueError),
        (b"\x01\xc1", "invalid msgpack byte", msgpack.FormatError),
        (b"\x01\x01\x02\x03", "2 extra bytes after the value", msgpack.ExtraData),
        (b"\x01" + b"\x91" * 100_000 + b"\xc0", "too deeply nested", msgpack.StackError),
        (b"\x01" + b"\xdc\xff\xff" * 100_000, "too deeply nested", msgpack.StackError),
        (b"\x01\xdb\xff\xff\xff\xff", "truncated", ValueError),  # a str of 4 GiB
        (b"\x01\xc6\xff\xff\xff\xff", "truncated", ValueError),  # bin of 4 GiB
        (b"\x01\xdd\xff\xff\xff\xff", "declared length exceeds the input", ValueError),
        (b"\x01\xdf\xff\xff\xff\xff", "declared length exceeds the input", ValueError),
        (b"\x01\xa2\xff\xfe", "not valid UTF-8", UnicodeDecodeError),
        (b"\x01\x81\x91\x01\x02", "not hashable", TypeError),  # a list as a map key
        (b"\x00\xc0", "bad format byte 0x00", None),
        (b"\x92\x01\x02", "bad format byte 0x92", None),
        (b"\x02\xc0", "format version 2: written by a newer trio-actors", None),
        (b"\x7f", "format version 127: written by a newer trio-actors", None),
    ],
    ids=lambda value: repr(value[:12]) if isinstance(value, bytes) else None,
)
def test_bad_input(data: bytes, fragment: str, cause: type[BaseException] | None) -> None:
    with pytest.raises(CodecError, match=fragment) as info:
        CODEC.decode(data)
    assert type(info.value) is CodecError
    if cause is None:
        assert info.value.__cause__ is None
    else:
        assert isinstance(info.value.__cause__, cause)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (ext(9, b"x"), "ext type 9"),
        (ext(127, b""), "ext type 127"),
        (ext(-2, b"x"), "ext type -2"),
        (ext(0, b""), "ext type 0"),
        (b"\x01\xd6\xff\x00\x00\x00\x01", "msgpack Timestamp"),
        (b"\x01\xd7\xff" + bytes(8), "msgpack Timestamp"),
        (body([1, ("x", msgpack.Timestamp(5, 0))]), r"Timestamp \(ext type -1\) at \[1\]\[1\]"),
        (marked(16, "nobody.Knows", {}), r"'nobody\.Knows'.*registered: .*Point"),
    ],
)
def test_unknown_types_in_the_data(data: bytes, fragment: str) -> None:
    with pytest.raises(UnsupportedType, match=fragment):
        CODEC.decode(data)


def test_unknown_name_with_nothing_registered() -> None:
    data = CODEC.encode(Point(1, 2))
    with pytest.raises(UnsupportedType, match=r"registered: none\)"):
        Codec().decode(data)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (ext(1, b"x"), "ext type 1 marks a tuple and must be empty"),
        (ext(16, b"\x90"), "ext type 16 marks a registered object and must be empty"),
        (body(msgpack.ExtType(1, b"")), "not the first item of an array"),
        (body([1, msgpack.ExtType(2, b"")]), "not the first item of an array"),
        (body([msgpack.ExtType(1, b""), msgpack.ExtType(1, b"")]), "not the first item"),
        (body({msgpack.ExtType(3, b""): 1}), "not the first item of an array"),
        (marked(2, [1]), "not hashable"),
        (marked(3, {}), "not hashable"),
        (ext(4, b"\x00" * 5), "datetime from 5 bytes"),
        (ext(4, b"\x07\xe8\x0d\x01" + bytes(8)), "malformed input"),  # month 13
        (ext(5, b"\x00\x00\x00\x00"), "malformed input"),  # ordinal 0
        (ext(5, b"\x00"), "date from 1 bytes"),
        (ext(6, b"\x7f\xff\xff\xff" + bytes(8)), "malformed input"),  # days beyond the limit
        (ext(6, b"\x00"), "timedelta from 1 bytes"),
        (ext(7, b"\x00" * 15), "UUID from 15 bytes"),
        (marked(16), r"expected \[name, fields\]"),
        (marked(16, name_of(Point)), r"expected \[name, fields\]"),
        (marked(16, 1, {}), r"expected \[name, fields\]"),
        (marked(16, name_of(Point), {}, {}), r"expected \[name, fields\]"),
        (marked(16, name_of(Point), [1, 2]), "fields are not a map"),
        (marked(16, name_of(Point), {"x": 1}), r"rejected the stored fields \['x'\]"),
        (marked(16, name_of(Point), {"x": 1, "y": 2, "z": 3}), "rejected the stored fields"),
        (marked(16, name_of(Point), {1: 1}), "rejected the stored fields"),
        (marked(16, name_of(Color), "blue"), "not a member of"),
        (marked(16, name_of(Color), [1]), "not a member of"),
    ],
)
def test_malformed_ext_payloads(data: bytes, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        CODEC.decode(data)


def test_validators_judge_stored_fields() -> None:
    codec = Codec([Positive])
    assert codec.decode(codec.encode(Positive(1))) == Positive(1)
    data = marked(16, name_of(Positive), {"value": -1})
    with pytest.raises(CodecError, match="value must be positive") as info:
        codec.decode(data)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("header", [b"\xdb", b"\xc6", b"\xdd", b"\xdf"])
def test_a_header_declaring_4_gib_allocates_nothing(header: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(CodecError):
            CODEC.decode(bytes([FORMAT_VERSION]) + header + b"\xff\xff\xff\xff")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def test_payload_too_large_on_decode() -> None:
    codec = Codec(max_size=100)
    data = Codec().encode(b"x" * 98)
    with pytest.raises(PayloadTooLarge, match=r"101 bytes, more than max_size=100"):
        codec.decode(data)
    assert codec.decode(Codec().encode(b"x" * 97)) == b"x" * 97


def test_decode_accepts_any_bytes_like() -> None:
    data = CODEC.encode({"a": (1, 2)})
    assert CODEC.decode(bytearray(data)) == {"a": (1, 2)}
    assert CODEC.decode(memoryview(data)) == {"a": (1, 2)}


def test_large_values_decode_without_slicing_copies() -> None:
    value = {"blob": b"\xd6\xff" * 100_000, "when": datetime.date(2024, 1, 1)}
    assert CODEC.decode(CODEC.encode(value)) == value


@fuzz_settings
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise_codec_error(data: bytes) -> None:
    for candidate in (data, bytes([FORMAT_VERSION]) + data):
        try:
            CODEC.decode(candidate)
        except CodecError:
            pass


@fuzz_settings
@given(values, st.data())
def test_corrupted_encodings_decode_or_raise_codec_error(value: Any, data: st.DataObject) -> None:
    encoded = bytearray(CODEC.encode(value))
    position = data.draw(st.integers(min_value=1, max_value=len(encoded)), label="position")
    action = data.draw(st.sampled_from(["flip", "truncate", "insert"]), label="action")
    if action == "flip" and position < len(encoded):
        encoded[position] ^= data.draw(st.integers(min_value=1, max_value=255), label="mask")
    elif action == "truncate":
        del encoded[position:]
    else:
        encoded.insert(position, data.draw(st.integers(min_value=0, max_value=255)))
    try:
        CODEC.decode(bytes(encoded))
    except CodecError:
        pass
