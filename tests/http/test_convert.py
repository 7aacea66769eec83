"""JSON values into annotated parameter types (the inverse of the API's JSON output)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from typing import Any

import attrs
import pytest

from actors._http._convert import ConversionError, convert
from actors._http._wire import dumps, loads
from actors._registry import _handler_parameters


class Color(enum.Enum):
    RED = 1
    BLUE = 2


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int = 0


@attrs.frozen
class Shape:
    name: str
    points: list[Point]
    color: Color | None = None
    made: dt.date | None = None
    ident: uuid.UUID | None = None
    scale: dict[str, dt.timedelta] = attrs.field(factory=dict)
    pair: tuple[int, str] = (0, "")


def test_nested_values_round_trip_through_json() -> None:
    shape = Shape(
        name="tri",
        points=[Point(1, 2), Point(3)],
        color=Color.BLUE,
        made=dt.date(2026, 11, 21),
        ident=uuid.UUID(int=7),
        scale={"a": dt.timedelta(seconds=1.5)},
        pair=(4, "four"),
    )
    assert convert(Shape, loads(dumps(shape))) == shape


@pytest.mark.parametrize(
    ("tp", "value", "fragment"),
    [
        (Shape, {"name": "x", "points": [{"y": 1}]}, "needs the field 'x'"),
        (Shape, {"name": "x", "points": [], "color": 3}, "expected Color"),
        (Shape, {"name": "x", "points": [], "pair": [1]}, "an array of 2 items"),
        (Point, [1, 2], "a JSON object for Point"),
        (dt.datetime, "yesterday", "expected datetime"),
    ],
)
def test_misfits_name_the_place(tp: Any, value: Any, fragment: str) -> None:
    with pytest.raises(ConversionError, match=fragment):
        convert(tp, value, "arg")


def test_unknown_annotations_pass_values_through() -> None:
    assert convert(int | str, "5") == "5"
    assert convert(Any, {"a": 1}) == {"a": 1}
    assert convert(int, "not checked here") == "not checked here"  # the handler's check runs


async def _handler(self: object, ctx: object, shape: Shape, n: int = 1) -> None:
    del self, ctx, shape, n


def test_parameter_types_skip_self_and_ctx() -> None:
    # The API converts with the annotations the registry resolved for each handler.
    _, parameters = _handler_parameters(object, _handler, "_handler")
    assert tuple(p.annotation for p in parameters) == (Shape, int)


def test_json_output_survives_keys_that_are_not_strings_and_nan() -> None:
    value = {b"\x01": 1, (1, "a"): [float("nan")], 2: {"x": float("inf")}, None: "n"}
    assert loads(dumps(value)) == {"01": 1, '[1,"a"]': [None], "2": {"x": None}, "null": "n"}


@pytest.mark.parametrize(
    ("tp", "value"),
    [(set[str], [["a"]]), (dt.timedelta, 1e20), (frozenset[int], [[1], [2]])],
)
def test_values_python_cannot_build_are_conversion_errors(tp: Any, value: Any) -> None:
    with pytest.raises(ConversionError):
        convert(tp, value, "arg")
