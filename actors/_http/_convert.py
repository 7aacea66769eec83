"""JSON values into a handler's annotated parameter types, sans-IO.

An HTTP caller sends JSON; a handler may declare an attrs class, a dataclass, an Enum, a
datetime, a tuple... This module builds those from their JSON forms (the inverse of
`_wire.dumps`), guided by the annotation, so that ``{"customer": "ann", ...}`` arrives as an
``Order``. Values whose annotation it does not know pass through unchanged for the handler's
own argument check.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import types
import typing
import uuid
from typing import Any

import attrs


class ConversionError(ValueError):
    """A JSON value does not fit the annotated type (the message says where and why)."""


def _fail(where: str, expected: str, value: Any) -> ConversionError:
    return ConversionError(f"{where}: expected {expected}, got {type(value).__name__} {value!r}")


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """(init name, type, required) of an attrs class's or dataclass's fields."""
    if attrs.has(cls):
        attrs.resolve_types(cls)
        return tuple(
            (f.alias or f.name, f.type, f.default is attrs.NOTHING)
            for f in attrs.fields(cls)
            if f.init
        )
    hints = typing.get_type_hints(cls)
    return tuple(
        (
            f.name,
            hints.get(f.name, Any),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
        if f.init
    )


def _record(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise _fail(where, f"a JSON object for {cls.__name__}", value)
    fields = _fields(cls)
    names = {name for name, _, _ in fields}
    unknown = sorted(set(value) - names)
    if unknown:
        raise ConversionError(
            f"{where}: {cls.__name__} has no field {', '.join(map(repr, unknown))}; its fields"
            f" are: {', '.join(sorted(names))}"
        )
    kwargs: dict[str, Any] = {}
    for name, tp, required in fields:
        if name in value:
            kwargs[name] = convert(tp, value[name], f"{where}.{name}")
        elif required:
            raise ConversionError(f"{where}: {cls.__name__} needs the field {name!r}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"{where}: {cls.__name__}: {exc}") from None


def _scalar(tp: type, value: Any, where: str) -> Any:
    try:
        if tp is dt.datetime and isinstance(value, str):
            return dt.datetime.fromisoformat(value)
        if tp is dt.date and isinstance(value, str):
            return dt.date.fromisoformat(value)
        if tp is dt.timedelta and isinstance(value, int | float) and not isinstance(value, bool):
            return dt.timedelta(seconds=value)
        if tp is uuid.UUID and isinstance(value, str):
            return uuid.UUID(value)
        if issubclass(tp, enum.Enum):
            return tp(value)
    except (ValueError, TypeError, OverflowError):
        raise _fail(where, tp.__name__, value) from None
    return value


def convert(tp: Any, value: Any, where: str = "argument") -> Any:
    """`value` (decoded JSON) as an instance of the annotation `tp`, where `tp` says how.

    Raises:
        ConversionError: the value cannot be one of `tp`.
    """
    if tp is Any or value is None:
        return value
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return convert(members[0], value, where)
        return value  # ambiguous: leave it to the handler's own check
    if origin is typing.Literal or origin is typing.Annotated:
        return value
    if origin in (list, tuple, set, frozenset) and isinstance(value, list):
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _fail(where, f"an array of {len(args)} items", value)
            pairs = enumerate(zip(args, value, strict=True))
            return tuple(convert(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
        item = args[0] if args else Any
        items = [convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        try:
            return origin(items)
        except TypeError as exc:  # e.g. a set of unhashable items
            raise ConversionError(f"{where}: {exc}") from None
    if origin is dict and isinstance(value, dict):
        args = typing.get_args(tp)
        item = args[1] if len(args) == 2 else Any
        return {k: convert(item, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type):
        if attrs.has(tp) or (dataclasses.is_dataclass(tp)):
            return _record(tp, value, where)
        return _scalar(tp, value, where)
    return value
