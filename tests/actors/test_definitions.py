"""Actor definitions: every `DefinitionError` the decorators and the registry raise, with its
message; wire-name overrides end to end; handler lookup by function object."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import actors
from actors.testing import open_memory_node


async def _register(*instances: object) -> None:
    """Open (and close) a node hosting `instances`: where the registry is built."""
    async with open_memory_node(instances):
        pass


def _raises(fragment: str) -> pytest.RaisesExc[actors.DefinitionError]:
    return pytest.raises(actors.DefinitionError, match=re.escape(fragment))


@actors.virtual_object
class Valid:
    @actors.exclusive
    async def bump(self, ctx: actors.ObjectContext) -> int:
        value: int = ctx.get("n", 0) + 1
        ctx.set("n", value)
        return value


# ----------------------------------------------------------------------------- the registry


async def test_class_passed_instead_of_an_instance() -> None:
    with _raises("pass an instance of Valid to the node, not the class itself (e.g. Valid())"):
        await _register(Valid)


async def test_class_passed_to_open_node(tmp_path: Path) -> None:
    with _raises("pass an instance of Valid to the node, not the class itself"):
        async with actors.open_node(tmp_path, [Valid]):
            pass
    # The refused node released its data directory.
    async with actors.open_node(tmp_path, [Valid()]) as node:
        assert await node.call(Valid.bump, "k") == 1


async def test_undecorated_class() -> None:
    class Plain:
        @actors.exclusive
        async def bump(self, ctx: actors.ObjectContext) -> None:
            pass

    with _raises("Plain is not an actor class; decorate it with @actors.virtual_object"):
        await _register(Plain())
    with _raises("int is not an actor class"):
        await _register(5)


async def test_no_handlers() -> None:
    @actors.virtual_object
    class Empty:
        async def not_marked(self, ctx: actors.ObjectContext) -> None:
            pass

    @actors.service
    class EmptyService:
        pass

    with _raises("Empty has no handlers; mark its async methods with @actors.exclusive"):
        await _register(Empty())
    with _raises("EmptyService has no handlers"):
        await _register(EmptyService())


async def test_sync_handler() -> None:
    @actors.virtual_object
    class Sync:
        @actors.exclusive
        def bump(self, ctx: actors.ObjectContext) -> None:
            pass

    with _raises("handler Sync.bump must be an `async def` method"):
        await _register(Sync())


async def test_async_generator_handler() -> None:
    @actors.service
    class Gen:
        @actors.handler
        async def stream(self, ctx: actors.ServiceContext) -> AsyncIterator[int]:
            yield 1

    with _raises("handler Gen.stream must be an `async def` method"):
        await _register(Gen())


@pytest.mark.parametrize("shape", ["no-ctx", "no-params", "keyword-only-ctx", "var-args"])
async def test_handler_without_a_ctx_parameter(shape: str) -> None:
    if shape == "no-ctx":

        async def fn(self: object) -> None:
            pass
    elif shape == "no-params":

        async def fn() -> None:  # type: ignore[misc]
            pass
    elif shape == "keyword-only-ctx":

        async def fn(self: object, *, ctx: actors.ObjectContext) -> None:  # type: ignore[misc]
            pass
    else:

        async def fn(*args: Any) -> None:  # type: ignore[misc]
            pass

    NoCtx = actors.virtual_object(type("NoCtx", (), {"bump": actors.exclusive(fn)}))
    with _raises("handler NoCtx.bump must take (self, ctx, ...) as its first two parameters"):
        await _register(NoCtx())


async def test_exclusive_inside_a_service() -> None:
    @actors.service
    class Svc:
        @actors.exclusive
        async def bump(self, ctx: actors.ObjectContext) -> None:
            pass

    with _raises(
        "Svc.bump is marked @actors.exclusive but Svc is a service; use @actors.handler"
        " in a service"
    ):
        await _register(Svc())


async def test_shared_inside_a_service() -> None:
    @actors.service
    class Svc:
        @actors.shared
        async def peek(self, ctx: actors.SharedContext) -> None:
            pass

    with _raises("Svc.peek is marked @actors.shared but Svc is a service"):
        await _register(Svc())


async def test_handler_inside_a_virtual_object() -> None:
    @actors.virtual_object
    class Obj:
        @actors.handler
        async def greet(self, ctx: actors.ServiceContext) -> None:
            pass

    with pytest.raises(actors.DefinitionError) as info:
        await _register(Obj())
    message = str(info.value)
    assert "use @actors.exclusive or @actors.shared in a virtual object" in message
    # The message must name the decorator the user wrote (`@actors.handler`), not the class
    # decorator `@actors.service`.
    assert "Obj.greet is marked @actors.handler but Obj is a virtual_object" in message


async def test_duplicate_type_names() -> None:
    with _raises("two instances registered for actor type 'Valid'; pass one instance per type"):
        await _register(Valid(), Valid())

    @actors.virtual_object(name="Valid")
    class Impostor:
        @actors.exclusive
        async def other(self, ctx: actors.ObjectContext) -> None:
            pass

    with _raises("two instances registered for actor type 'Valid'"):
        await _register(Valid(), Impostor())


async def test_duplicate_handler_names() -> None:
    @actors.virtual_object
    class Twice:
        @actors.exclusive(name="bump")
        async def first(self, ctx: actors.ObjectContext) -> None:
            pass

        @actors.shared(name="bump")
        async def second(self, ctx: actors.SharedContext) -> None:
            pass

    with _raises("Twice has two handlers named 'bump'"):
        await _register(Twice())


def test_decorated_twice() -> None:
    with _raises("is decorated twice as a handler; use one"):

        class Both:
            @actors.exclusive
            @actors.shared
            async def both(self, ctx: actors.ObjectContext) -> None:
                pass

    with _raises("is decorated twice as a handler"):

        class Again:
            @actors.exclusive
            @actors.exclusive(name="again")
            async def again(self, ctx: actors.ObjectContext) -> None:
                pass


def test_decorators_on_the_wrong_kind_of_thing() -> None:
    async def fn(self: object, ctx: actors.ObjectContext) -> None:
        pass

    with _raises("@actors.virtual_object decorates a class, not"):
        actors.virtual_object(fn)  # type: ignore[type-var]
    with _raises("@actors.service decorates a class, not"):
        actors.service(fn)  # type: ignore[type-var]
    with _raises("@actors.exclusive decorates an async method, not 5"):
        actors.exclusive(5)  # type: ignore[type-var]
    with _raises("@actors.shared decorates an async method, not 5"):
        actors.shared(5)  # type: ignore[type-var]
    # `@actors.handler` must name itself, not the class decorator `@actors.service`.
    with _raises("@actors.handler decorates an async method, not 5"):
        actors.handler(5)  # type: ignore[type-var]


@pytest.mark.parametrize("name", ["", "has space", "1abc", "a-b", "Cart.add"])
def test_invalid_names(name: str) -> None:
    with _raises(f"actor name {name!r} must be a non-empty Python identifier"):

        @actors.virtual_object(name=name)
        class A:
            pass

    with _raises(f"actor name {name!r} must be a non-empty Python identifier"):

        @actors.service(name=name)
        class S:
            pass

    for decorator in (actors.exclusive, actors.shared, actors.handler):
        with _raises(f"handler name {name!r} must be a non-empty Python identifier"):

            @decorator(name=name)
            async def h(self: object, ctx: actors.ObjectContext) -> None:
                pass


@pytest.mark.parametrize("name", [5, b"Cart", ["Cart"]], ids=["int", "bytes", "list"])
def test_non_str_names_are_definition_errors(name: object) -> None:
    # A name that is not a str is a definition error like any other bad name, not an
    # AttributeError from deep inside the decorator.
    with _raises("must be a non-empty Python identifier"):

        @actors.virtual_object(name=name)  # type: ignore[call-overload]
        class A:
            pass

    with _raises("must be a non-empty Python identifier"):

        @actors.exclusive(name=name)  # type: ignore[call-overload]
        async def h(self: object, ctx: actors.ObjectContext) -> None:
            pass


async def test_type_name_too_long() -> None:
    name = "T" * 65

    @actors.virtual_object(name=name)
    class Long:
        @actors.exclusive
        async def bump(self, ctx: actors.ObjectContext) -> None:
            pass

    with _raises(f"actor type name {name!r} is longer than 64 bytes"):
        await _register(Long())
    # 64 bytes is fine.
    Long = actors.virtual_object(name="T" * 64)(Long)
    await _register(Long())


async def test_handler_name_too_long() -> None:
    # Handler wire names go into stored keys behind a one-byte length (the idempotency table),
    # so an overlong one must be refused at registration, not fail later inside a call.
    name = "h" * 300

    @actors.virtual_object
    class LongHandler:
        @actors.exclusive(name=name)
        async def bump(self, ctx: actors.ObjectContext) -> int:
            return 1

    with pytest.raises(actors.DefinitionError, match="longer than"):
        async with open_memory_node([LongHandler()]) as node:
            await node.call(LongHandler.bump, "k", idempotency_key="once")


async def test_decorators_register_nothing_at_import() -> None:
    async with open_memory_node([Valid()]) as node:
        assert await node.call(Valid.bump, "k") == 1
    async with open_memory_node([Greeter()]) as node:
        with pytest.raises(actors.UnknownHandler, match="not registered on this node"):
            await node.call(Valid.bump, "k")


# ----------------------------------------------------------------------------- wire names


@actors.virtual_object(name="Wallet")
class Purse:
    def __init__(self) -> None:
        self.runs = 0

    @actors.exclusive(name="put")
    async def add(self, ctx: actors.ObjectContext, amount: int) -> int:
        self.runs += 1
        total: int = ctx.get("total", 0) + amount
        ctx.set("total", total)
        return total

    @actors.shared(name="peek")
    async def total(self, ctx: actors.SharedContext) -> int:
        value: int = ctx.get("total", 0)
        return value


@actors.virtual_object
class SubPurse(Purse):
    """Inherits Purse's handler functions under its own type name."""


@actors.service(name="Hello")
class Greeter:
    @actors.handler(name="hi")
    async def greet(self, ctx: actors.ServiceContext, who: str) -> str:
        return f"hi {who}"


async def test_wire_name_overrides_end_to_end() -> None:
    async with open_memory_node([Purse(), Greeter()]) as node:
        assert await node.call(Purse.add, "k", 2) == 2
        assert await node.call(Purse.add, "k", 3) == 5
        assert await node.call(Purse.total, "k") == 5
        assert node.get_state(Purse, "k") == {"total": 5}
        assert node.get_state("Wallet", "k") == {"total": 5}
        assert node.get_state("Purse", "k") == {}

        sent = await node.send(Purse.add, "k", 1)
        record = node.get_invocation(sent)
        assert (record.actor.type, record.actor.key, record.handler) == ("Wallet", "k", "put")
        assert [r.id for r in node.list_invocations(actor_type="Wallet")] == [record.id]
        assert node.list_invocations(actor_type="Purse") == []
        assert await node.attach(sent) == 6

        greeting = await node.send(Greeter.greet, "bob")
        record = node.get_invocation(greeting)
        assert (record.actor.type, record.handler) == ("Hello", "hi")
        assert await node.attach(greeting) == "hi bob"
        assert await node.call(Greeter.greet, "eve") == "hi eve"


async def test_idempotency_follows_the_wire_names() -> None:
    purse = Purse()
    async with open_memory_node([purse]) as node:
        assert await node.call(Purse.add, "k", 4, idempotency_key="req") == 4
        assert await node.call(Purse.add, "k", 4, idempotency_key="req") == 4
        assert purse.runs == 1


async def test_wire_names_survive_a_class_rename(tmp_path: Path) -> None:
    async with actors.open_node(tmp_path, [Purse()]) as node:
        assert await node.call(Purse.add, "k", 7) == 7

    @actors.virtual_object(name="Wallet")
    class RenamedPurse:
        @actors.exclusive(name="put")
        async def deposit(self, ctx: actors.ObjectContext, amount: int) -> int:
            total: int = ctx.get("total", 0) + amount
            ctx.set("total", total)
            return total

    async with actors.open_node(tmp_path, [RenamedPurse()]) as node:
        assert node.get_state(RenamedPurse, "k") == {"total": 7}
        assert await node.call(RenamedPurse.deposit, "k", 1) == 8


# ----------------------------------------------------------------------------- lookup


async def test_handlers_are_looked_up_by_function_object() -> None:
    async with open_memory_node([Purse(), Greeter(), Valid()]) as node:
        assert await node.call(Purse.add, "k", 1) == 1
        assert await node.call(Valid.bump, "k") == 1
        # Not by wire name or any other string: there is no string registry.
        for not_a_function in ("Wallet.put", "put", "Purse.add"):
            with pytest.raises(actors.UnknownHandler, match="is not a handler"):
                await node.call(not_a_function, "k", 1)  # type: ignore[call-overload]
        with pytest.raises(actors.UnknownHandler, match="is not a handler"):
            await node.call(lambda self, ctx: None, "k")  # type: ignore[call-overload]
        assert node.list_invocations() == []


async def test_bound_method_of_the_registered_instance() -> None:
    purse = Purse()
    async with open_memory_node([purse]) as node:
        try:
            result = await node.call(purse.add, "k", 1)  # type: ignore[call-overload]
        except actors.UnknownHandler as exc:
            # Refusing a bound method is fine, but the message must not claim that the
            # actor (whose instance this very method is bound to) is not registered.
            assert "not registered" not in str(exc), str(exc)
        else:
            assert result == 1


async def test_inherited_handler_functions_are_not_misrouted() -> None:
    # Purse.add is also SubPurse.add (the same function object). With both registered, a call
    # of Purse.add must run on Purse ("Wallet"), or the registry must refuse the ambiguity.
    try:
        async with open_memory_node([Purse(), SubPurse()]) as node:
            assert await node.call(Purse.add, "k", 1) == 1
            assert node.get_state("Wallet", "k") == {"total": 1}
            assert node.get_state("SubPurse", "k") == {}
    except actors.DefinitionError as exc:
        assert "add" in str(exc)


async def test_a_subclass_alone_serves_its_inherited_handlers() -> None:
    async with open_memory_node([SubPurse()]) as node:
        assert await node.call(SubPurse.add, "k", 2) == 2
        assert node.get_state(SubPurse, "k") == {"total": 2}
