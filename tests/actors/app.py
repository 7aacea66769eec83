"""A test application: actors that misbehave on demand, plus witnesses that observe them."""

from __future__ import annotations

from collections import Counter as Tally
from collections import defaultdict

import attrs
import trio

import actors


@attrs.define
class Witness:
    """Records what handlers do: overlap of exclusive runs per key, and effects by id."""

    active: dict[str, int] = attrs.field(factory=lambda: defaultdict(int))
    overlaps: int = 0
    effects: Tally[str] = attrs.field(factory=Tally)
    gates: dict[str, trio.Event] = attrs.field(factory=dict)
    entered: dict[str, trio.Event] = attrs.field(factory=dict)

    def enter(self, key: str) -> None:
        self.active[key] += 1
        if self.active[key] > 1:
            self.overlaps += 1

    def leave(self, key: str) -> None:
        self.active[key] -= 1

    def gate(self, name: str) -> trio.Event:
        return self.gates.setdefault(name, trio.Event())

    def entered_event(self, name: str) -> trio.Event:
        return self.entered.setdefault(name, trio.Event())


@attrs.frozen(kw_only=True)
class Point:
    """A registered value type."""

    x: int
    y: int


@actors.virtual_object
class Account:
    """Read-modify-write handlers with checkpoints inside, to expose any overlap."""

    def __init__(self, witness: Witness) -> None:
        self.witness = witness
        self.failures_left: dict[str, int] = {}
        self.broken = False

    @actors.exclusive
    async def deposit(self, ctx: actors.ObjectContext, amount: int) -> int:
        self.witness.enter(ctx.key)
        try:
            balance: int = ctx.get("balance", default=0)
            await trio.lowlevel.checkpoint()
            await trio.lowlevel.checkpoint()
            ctx.set("balance", balance + amount)
            return balance + amount
        finally:
            self.witness.leave(ctx.key)

    @actors.exclusive
    async def record(self, ctx: actors.ObjectContext, op: str) -> int:
        """Append `op` to the key's log (so a duplicate execution shows up as a repeat)."""
        log: list[str] = ctx.get("log", default=[])
        log.append(op)
        ctx.set("log", log)
        return len(log)

    @actors.exclusive
    async def set_then_wait(self, ctx: actors.ObjectContext, value: int, gate: str) -> int:
        ctx.set("balance", value)
        self.witness.entered_event(gate).set()
        await self.witness.gate(gate).wait()
        return value

    @actors.exclusive
    async def flaky(self, ctx: actors.ObjectContext, op: str) -> str:
        """Fails while `failures_left[op]` > 0 or while the instance is `broken`."""
        self.witness.effects[op] += 1
        left = self.failures_left.get(op, 0)
        if left > 0:
            self.failures_left[op] = left - 1
            raise RuntimeError(f"transient failure of {op}")
        if self.broken:
            raise RuntimeError("the dependency is down")
        ctx.set("flaky", op)
        return f"done {op}"

    @actors.exclusive
    async def hang(self, ctx: actors.ObjectContext) -> None:
        self.witness.effects["hang"] += 1
        ctx.set("hung", True)
        await trio.sleep_forever()

    @actors.exclusive
    async def fail_terminally(self, ctx: actors.ObjectContext) -> None:
        ctx.set("before_failure", True)
        raise actors.TerminalError("insufficient funds", code=409)

    @actors.exclusive
    async def store_value(self, ctx: actors.ObjectContext, name: str, value: object) -> None:
        ctx.set(name, value)

    @actors.exclusive
    async def return_value(self, ctx: actors.ObjectContext, value: object) -> object:
        return value

    @actors.exclusive
    async def return_unencodable(self, ctx: actors.ObjectContext) -> object:
        return object()

    @actors.exclusive
    async def store_unencodable(self, ctx: actors.ObjectContext) -> None:
        ctx.set("bad", object())

    @actors.exclusive
    async def wipe(self, ctx: actors.ObjectContext) -> list[str]:
        ctx.clear_all()
        return ctx.keys()

    @actors.exclusive
    async def move(self, ctx: actors.ObjectContext, p: Point) -> Point:
        moved = Point(x=p.x + 1, y=p.y + 1)
        ctx.set("point", moved)
        return moved

    @actors.shared
    async def balance(self, ctx: actors.SharedContext) -> int:
        value: int = ctx.get("balance", default=0)
        return value

    @actors.shared
    async def snapshot(self, ctx: actors.SharedContext) -> dict[str, object]:
        return {name: ctx.get(name) for name in ctx.keys()}  # noqa: SIM118

    @actors.shared
    async def try_to_write(self, ctx: actors.SharedContext) -> None:
        ctx.set("balance", 1)  # type: ignore[attr-defined]


@actors.service
class Greeter:
    """A stateless service."""

    @actors.handler
    async def greet(self, ctx: actors.ServiceContext, name: str) -> str:
        return f"hello {name}"

    @actors.handler
    async def draws(self, ctx: actors.ServiceContext) -> tuple[float, str]:
        return ctx.random(), str(ctx.uuid())


def instances(witness: Witness | None = None) -> list[object]:
    """The test app's instances."""
    return [Account(witness or Witness()), Greeter()]


TYPES = [Point]
