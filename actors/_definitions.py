"""Decorators that describe actor classes and handlers.

The decorators only attach a description to the class or function; nothing is registered at
import time. A node builds its `Registry` from the instances it is given.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs

from ._errors import DefinitionError

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])

ACTOR_MARK = "__actors_definition__"
HANDLER_MARK = "__actors_handler__"


class ActorKind(enum.Enum):
    """What kind of actor a class defines."""

    VIRTUAL_OBJECT = "virtual_object"
    """Keyed, with durable state and an exclusive (single-writer) mailbox per key."""
    SERVICE = "service"
    """Stateless, no key; handlers run concurrently."""
    WORKFLOW = "workflow"
    """Keyed; its one `run` handler executes once per key; shared handlers query and signal."""


class HandlerKind(enum.Enum):
    """How a handler is scheduled."""

    EXCLUSIVE = "exclusive"
    """One at a time per key, in mailbox order; may write state."""
    SHARED = "shared"
    """Concurrent with everything; reads committed state only."""
    SERVICE = "service"
    """A stateless service handler; runs concurrently."""
    RUN = "run"
    """A workflow's run handler: executes once per workflow key."""


@attrs.frozen(kw_only=True)
class ActorSpec:
    """The description a class decorator attaches to an actor class."""

    kind: ActorKind
    name: str | None


@attrs.frozen(kw_only=True)
class HandlerSpec:
    """The description a handler decorator attaches to a method."""

    kind: HandlerKind
    name: str | None


DECORATOR_NAMES = {
    ActorKind.VIRTUAL_OBJECT: "virtual_object",
    ActorKind.SERVICE: "service",
    ActorKind.WORKFLOW: "workflow",
    HandlerKind.RUN: "run",
    HandlerKind.EXCLUSIVE: "exclusive",
    HandlerKind.SHARED: "shared",
    HandlerKind.SERVICE: "handler",
}
"""The decorator (``@actors.<name>``) that declares each kind, for messages."""

MAX_NAME_BYTES = 64
"""The longest actor type or handler wire name (checked when a node registers it)."""


def _check_name(name: object, what: str) -> None:
    if name is None:
        return
    if not isinstance(name, str) or not name or not name.isidentifier():
        raise DefinitionError(f"{what} name {name!r} must be a non-empty Python identifier")


def _mark_class(cls: C, kind: ActorKind, name: str | None) -> C:
    if not isinstance(cls, type):
        raise DefinitionError(f"@actors.{DECORATOR_NAMES[kind]} decorates a class, not {cls!r}")
    _check_name(name, "actor")
    setattr(cls, ACTOR_MARK, ActorSpec(kind=kind, name=name))
    return cls


@overload
def virtual_object(cls: C, /) -> C: ...
@overload
def virtual_object(*, name: str | None = None) -> Callable[[C], C]: ...
def virtual_object(cls: C | None = None, /, *, name: str | None = None) -> C | Callable[[C], C]:
    """Declare a keyed virtual object: durable state per key, an exclusive mailbox per key.

    Args:
        name: the wire name of the type (default: the class name). Changing it later orphans
            the stored state, so set it explicitly before renaming a class.
    """
    if cls is not None:
        return _mark_class(cls, ActorKind.VIRTUAL_OBJECT, name)
    return lambda c: _mark_class(c, ActorKind.VIRTUAL_OBJECT, name)


@overload
def service(cls: C, /) -> C: ...
@overload
def service(*, name: str | None = None) -> Callable[[C], C]: ...
def service(cls: C | None = None, /, *, name: str | None = None) -> C | Callable[[C], C]:
    """Declare a stateless service: no key, handlers (`@actors.handler`) run concurrently.

    Args:
        name: the wire name of the service (default: the class name).
    """
    if cls is not None:
        return _mark_class(cls, ActorKind.SERVICE, name)
    return lambda c: _mark_class(c, ActorKind.SERVICE, name)


def _mark_handler(fn: F, kind: HandlerKind, name: str | None) -> F:
    if not callable(fn):
        raise DefinitionError(
            f"@actors.{DECORATOR_NAMES[kind]} decorates an async method, not {fn!r}"
        )
    _check_name(name, "handler")
    if getattr(fn, HANDLER_MARK, None) is not None:
        raise DefinitionError(f"{fn.__qualname__} is decorated twice as a handler; use one")
    setattr(fn, HANDLER_MARK, HandlerSpec(kind=kind, name=name))
    return fn


def _handler_decorator(kind: HandlerKind) -> Any:
    def decorate(fn: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
        if fn is not None:
            return _mark_handler(fn, kind, name)
        return lambda f: _mark_handler(f, kind, name)

    return decorate


@overload
def workflow(cls: C, /) -> C: ...
@overload
def workflow(*, name: str | None = None) -> Callable[[C], C]: ...
def workflow(cls: C | None = None, /, *, name: str | None = None) -> C | Callable[[C], C]:
    """Declare a workflow: keyed, with one `@actors.run` handler that executes once per key
    (later starts attach to it) and `@actors.shared` handlers to query it and signal it.

    Args:
        name: the wire name of the type (default: the class name).
    """
    if cls is not None:
        return _mark_class(cls, ActorKind.WORKFLOW, name)
    return lambda c: _mark_class(c, ActorKind.WORKFLOW, name)


@overload
def run(fn: F, /) -> F: ...
@overload
def run(*, name: str | None = None) -> Callable[[F], F]: ...
def run(fn: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Mark a workflow's run handler. Its context is a `WorkflowContext`.

    Args:
        name: the wire name of the handler (default: the function name).
    """
    return _handler_decorator(HandlerKind.RUN)(fn, name=name)  # type: ignore[no-any-return]


@overload
def exclusive(fn: F, /) -> F: ...
@overload
def exclusive(*, name: str | None = None) -> Callable[[F], F]: ...
def exclusive(fn: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Mark a virtual-object method as an exclusive handler: one at a time per key, may write
    state. Its context is an `ObjectContext`.

    Args:
        name: the wire name of the handler (default: the function name).
    """
    return _handler_decorator(HandlerKind.EXCLUSIVE)(fn, name=name)  # type: ignore[no-any-return]


@overload
def shared(fn: F, /) -> F: ...
@overload
def shared(*, name: str | None = None) -> Callable[[F], F]: ...
def shared(fn: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Mark a virtual-object method as a shared handler: runs concurrently, reads committed
    state, cannot write. Its context is a `SharedContext`.

    Args:
        name: the wire name of the handler (default: the function name).
    """
    return _handler_decorator(HandlerKind.SHARED)(fn, name=name)  # type: ignore[no-any-return]


@overload
def handler(fn: F, /) -> F: ...
@overload
def handler(*, name: str | None = None) -> Callable[[F], F]: ...
def handler(fn: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Mark a service method as a handler. Its context is a `ServiceContext`.

    Args:
        name: the wire name of the handler (default: the function name).
    """
    return _handler_decorator(HandlerKind.SERVICE)(fn, name=name)  # type: ignore[no-any-return]
