"""The registry: actor types and handlers a node hosts, built from the instances it is given.

Wire names are derived here, once. Handlers are looked up by function object (what user code
passes) or by wire name (what stored invocations and remote callers carry).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ._definitions import (
    ACTOR_MARK,
    DECORATOR_NAMES,
    HANDLER_MARK,
    MAX_NAME_BYTES,
    ActorKind,
    ActorSpec,
    HandlerKind,
    HandlerSpec,
)
from ._errors import DefinitionError, InvalidArguments, UnknownHandler

Check = Callable[[object], bool]


def _type_check(tp: object) -> Check | None:
    """A cheap isinstance-style check for an annotation, or None when it cannot be checked."""
    if tp is Any or tp is object:
        return None
    if tp is None or tp is type(None):
        return lambda v: v is None
    if tp is float:
        return lambda v: isinstance(v, int | float) and not isinstance(v, bool)
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        members = [_type_check(a) for a in typing.get_args(tp)]
        if any(m is None for m in members):
            return None
        checks = [m for m in members if m is not None]
        return lambda v: any(c(v) for c in checks)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        return lambda v: v in allowed
    if origin is not None and isinstance(origin, type):
        try:
            isinstance(None, origin)
        except TypeError:
            return None
        return lambda v: isinstance(v, origin)
    if isinstance(tp, type):
        try:
            isinstance(None, tp)  # TypedDict and non-runtime Protocols refuse isinstance
        except TypeError:
            return None
        return lambda v: isinstance(v, tp)
    return None


def _describe(tp: object) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


@attrs.frozen(kw_only=True)
class Parameter:
    """One user-visible parameter of a handler (after `self` and `ctx`)."""

    name: str
    annotation: object
    check: Check | None


@attrs.frozen(kw_only=True)
class HandlerDef:
    """A registered handler."""

    actor: ActorDef
    name: str
    kind: HandlerKind
    function: Callable[..., Any]
    signature: inspect.Signature
    parameters: tuple[Parameter, ...]
    required: int
    """How many user parameters have no default."""
    simple: bool
    """True when every user parameter is a plain positional one (no *args/**kwargs)."""
    holds_key: bool = attrs.field(init=False)
    """Runs one at a time per key through the key's mailbox (exclusive and workflow run
    handlers)."""
    qualified_name: str = attrs.field(init=False)
    """``Type.handler``, as users and errors see it."""

    def __attrs_post_init__(self) -> None:
        # Derived once: both are read several times per invocation.
        holds = self.kind is HandlerKind.EXCLUSIVE or self.kind is HandlerKind.RUN
        object.__setattr__(self, "holds_key", holds)
        object.__setattr__(self, "qualified_name", f"{self.actor.name}.{self.name}")

    def check_args(self, args: tuple[Any, ...]) -> None:
        """Check positional `args` against the handler: a fast path for the common shape
        (no *args), falling back to `bind` for the rest.

        Raises:
            InvalidArguments: naming the handler, the parameter and what was expected.
        """
        params = self.parameters
        n = len(args)
        if self.simple and self.required <= n <= len(params):
            for value, param in zip(args, params, strict=False):
                if param.check is not None and not param.check(value):
                    raise InvalidArguments(
                        f"{self.qualified_name}: argument {param.name!r} should be"
                        f" {_describe(param.annotation)}, got {type(value).__name__} {value!r}"
                    )
            return
        self.bind(args, {})

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Check that `args`/`kwargs` fit the handler's parameters and annotated types.

        Raises:
            InvalidArguments: naming the handler, the parameter and what was expected.
        """
        try:
            bound = self.signature.bind(None, None, *args, **kwargs)
        except TypeError as exc:
            wanted = ", ".join(p.name for p in self.parameters) or "no arguments"
            raise InvalidArguments(
                f"{self.qualified_name} takes ({wanted}); the arguments given do not fit: {exc}"
            ) from exc
        for param in self.parameters:
            if param.check is None or param.name not in bound.arguments:
                continue
            value = bound.arguments[param.name]
            kind = self.signature.parameters[param.name].kind
            values: Iterable[Any]
            if kind is inspect.Parameter.VAR_POSITIONAL:
                values = value
            elif kind is inspect.Parameter.VAR_KEYWORD:
                values = value.values()
            else:
                values = (value,)
            for item in values:
                if not param.check(item):
                    raise InvalidArguments(
                        f"{self.qualified_name}: argument {param.name!r} should be"
                        f" {_describe(param.annotation)}, got {type(item).__name__} {item!r}"
                    )


@attrs.frozen(kw_only=True, eq=False)
class ActorDef:
    """A registered actor type and the instance that serves it."""

    name: str
    kind: ActorKind
    cls: type
    instance: object
    handlers: dict[str, HandlerDef] = attrs.field(factory=dict)


def _handler_parameters(
    cls: type, fn: Callable[..., Any], qualname: str
) -> tuple[inspect.Signature, tuple[Parameter, ...]]:
    if not inspect.iscoroutinefunction(fn):
        raise DefinitionError(f"handler {qualname} must be an `async def` method")
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(params) < 2 or any(p.kind not in positional for p in params[:2]):
        raise DefinitionError(
            f"handler {qualname} must take (self, ctx, ...) as its first two parameters"
        )
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolvable annotations only disable the checks
        hints = {}
    user = tuple(
        Parameter(
            name=p.name,
            annotation=hints.get(p.name, Any),
            check=_type_check(hints.get(p.name, Any)),
        )
        for p in params[2:]
    )
    return signature, user


class Registry:
    """The actor types and handlers one node hosts.

    Args:
        instances: one instance per actor class (decorated with `@actors.virtual_object` or
            `@actors.service`); the instance carries dependencies, never durable state.

    Raises:
        DefinitionError: an instance's class is not an actor, has no handlers, has a handler
            of the wrong kind, or two instances claim the same type name.
    """

    def __init__(self, instances: Iterable[object]) -> None:
        self.actors: dict[str, ActorDef] = {}
        self._by_function: dict[Callable[..., Any], HandlerDef] = {}
        for instance in instances:
            self._add(instance)

    def _add(self, instance: object) -> None:
        if isinstance(instance, type):
            raise DefinitionError(
                f"pass an instance of {instance.__name__} to the node, not the class itself"
                f" (e.g. {instance.__name__}())"
            )
        cls = type(instance)
        spec = getattr(cls, ACTOR_MARK, None)
        if not isinstance(spec, ActorSpec):
            raise DefinitionError(
                f"{cls.__qualname__} is not an actor class; decorate it with"
                " @actors.virtual_object or @actors.service"
            )
        name = spec.name or cls.__name__
        if len(name.encode()) > MAX_NAME_BYTES:
            raise DefinitionError(f"actor type name {name!r} is longer than {MAX_NAME_BYTES} bytes")
        if name in self.actors:
            raise DefinitionError(
                f"two instances registered for actor type {name!r}; pass one instance per type"
            )
        actor = ActorDef(name=name, kind=spec.kind, cls=cls, instance=instance)
        allowed = {
            ActorKind.SERVICE: {HandlerKind.SERVICE},
            ActorKind.VIRTUAL_OBJECT: {HandlerKind.EXCLUSIVE, HandlerKind.SHARED},
            ActorKind.WORKFLOW: {HandlerKind.RUN, HandlerKind.SHARED},
        }[spec.kind]
        for attr_name, fn in inspect.getmembers(cls, inspect.isfunction):
            hspec = getattr(fn, HANDLER_MARK, None)
            if not isinstance(hspec, HandlerSpec):
                continue
            qualname = f"{name}.{attr_name}"
            if hspec.kind not in allowed:
                hint = {
                    ActorKind.SERVICE: "use @actors.handler in a service",
                    ActorKind.VIRTUAL_OBJECT: (
                        "use @actors.exclusive or @actors.shared in a virtual object"
                    ),
                    ActorKind.WORKFLOW: "use @actors.run or @actors.shared in a workflow",
                }[spec.kind]
                raise DefinitionError(
                    f"{qualname} is marked @actors.{DECORATOR_NAMES[hspec.kind]} but {name} is"
                    f" a {spec.kind.value}; {hint}"
                )
            hname = hspec.name or attr_name
            if len(hname.encode()) > MAX_NAME_BYTES:
                raise DefinitionError(
                    f"handler name {hname!r} of {name} is longer than {MAX_NAME_BYTES} bytes;"
                    " give it a shorter wire name with @actors.exclusive(name=...)"
                )
            if hname in actor.handlers:
                raise DefinitionError(f"{name} has two handlers named {hname!r}")
            signature, params = _handler_parameters(cls, fn, qualname)
            user_params = list(signature.parameters.values())[2:]
            positional = (
                inspect.Parameter.POSITIONAL_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
            )
            hdef = HandlerDef(
                required=sum(
                    p.default is inspect.Parameter.empty and p.kind in positional
                    for p in user_params
                ),
                simple=all(p.kind in positional for p in user_params),
                actor=actor,
                name=hname,
                kind=hspec.kind,
                function=fn,
                signature=signature,
                parameters=params,
            )
            other = self._by_function.get(fn)
            if other is not None:
                raise DefinitionError(
                    f"{qualname} is the same function as {other.qualified_name} (inherited):"
                    " handlers are looked up by function object, so a class and its subclass"
                    " cannot both serve it. Override the handler in the subclass, or register"
                    " only one of the two classes"
                )
            actor.handlers[hname] = hdef
            self._by_function[fn] = hdef
        runs = [h for h in actor.handlers.values() if h.kind is HandlerKind.RUN]
        if spec.kind is ActorKind.WORKFLOW and len(runs) != 1:
            raise DefinitionError(
                f"workflow {name} needs exactly one @actors.run handler, found {len(runs)}"
            )
        if not actor.handlers:
            raise DefinitionError(
                f"{name} has no handlers; mark its async methods with @actors.exclusive,"
                " @actors.shared or (in a service) @actors.handler"
            )
        self.actors[name] = actor

    def handler_for(self, fn: Callable[..., Any]) -> HandlerDef:
        """The registered handler for a function object such as ``Cart.add_item``.

        Raises:
            UnknownHandler: the function is not a handler of any actor on this node.
        """
        # A bound method of the registered instance (``cart.add_item``) names the same handler.
        fn = getattr(fn, "__func__", fn)
        try:
            return self._by_function[fn]
        except (KeyError, TypeError):
            pass
        name = getattr(fn, "__qualname__", repr(fn))
        if getattr(fn, HANDLER_MARK, None) is None:
            raise UnknownHandler(
                f"{name} is not a handler; mark it with @actors.exclusive, @actors.shared or"
                " @actors.handler"
            ) from None
        owner = name.rsplit(".", 1)[0]
        raise UnknownHandler(
            f"{name} belongs to an actor that is not registered on this node; pass an"
            f" instance of {owner} to open_node"
        ) from None

    def lookup(self, type_name: str, handler_name: str) -> HandlerDef:
        """The handler registered under these wire names.

        Raises:
            UnknownHandler: no such actor type or handler, naming what is registered.
        """
        actor = self.actors.get(type_name)
        if actor is None:
            known = ", ".join(sorted(self.actors)) or "none"
            raise UnknownHandler(f"unknown actor type {type_name!r}; registered types: {known}")
        hdef = actor.handlers.get(handler_name)
        if hdef is None:
            known = ", ".join(sorted(actor.handlers))
            raise UnknownHandler(
                f"{type_name} has no handler {handler_name!r}; its handlers are: {known}"
            )
        return hdef
