"""`App`: what a node hosts, named in one importable value (``actors serve examples.shop:app``)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

import attrs

from ._errors import ActorError, DefinitionError
from ._options import NodeOptions
from ._registry import Registry


def _instances(value: Iterable[object]) -> tuple[object, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"App instances must be an iterable of actor instances, got {value!r}")
    return tuple(value)


def _types(value: Iterable[type | tuple[str, type]]) -> tuple[type | tuple[str, type], ...]:
    return tuple(value)


@attrs.frozen
class App:
    """The actor instances a node hosts, with the codec types and options they need.

    An app module exports one, and ``actors serve module:attribute`` runs a node for it::

        app = actors.App([Cart(PaymentClient())], types=[Receipt])

    Args:
        instances: one instance of each actor class to host (as for `open_node`).
        types: extra classes allowed in arguments, results and state (as for `open_node`).
        options: node configuration (None: the defaults).
    """

    instances: tuple[object, ...] = attrs.field(converter=_instances)
    types: tuple[type | tuple[str, type], ...] = attrs.field(
        default=(), converter=_types, kw_only=True
    )
    options: NodeOptions | None = attrs.field(default=None, kw_only=True)


class BadApp(ActorError):
    """An ``module:attribute`` app reference that cannot be loaded as an `App` (private: the
    command line turns it into a message and exit status 2)."""


def load_app(reference: str) -> App:
    """Import ``module:attribute`` and make an `App` of it.

    The attribute may be an `App`, an iterable of actor instances, or a callable taking no
    arguments that returns either (``examples.cart:app``). The instances are checked as a
    node would check them, so a bad reference fails here rather than at start-up.

    Raises:
        BadApp: the module cannot be imported, the attribute is missing, or it names no actors.
    """
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise BadApp(f"app reference {reference!r} is not of the form module:attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BadApp(f"cannot import app module {module_name!r}: {exc}") from exc
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise BadApp(f"module {module_name!r} has no attribute {attr!r}") from None
    if callable(value) and not isinstance(value, App):
        try:
            value = value()
        except TypeError as exc:
            raise BadApp(
                f"{reference} is callable but cannot be called without arguments: {exc}"
            ) from exc
    try:
        app = value if isinstance(value, App) else App(value)
    except TypeError as exc:
        raise BadApp(
            f"{reference} is neither an actors.App nor an iterable of actor instances"
        ) from exc
    if not app.instances:
        raise BadApp(f"{reference} hosts no actors")
    try:
        Registry(app.instances)
    except DefinitionError as exc:
        raise BadApp(f"{reference} is not a valid app: {exc}") from exc
    return app
