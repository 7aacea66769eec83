"""Actors for the HTTP tests: a ledger (keyed, durable), a service, and an approval workflow
that waits on an awakeable and a promise."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs
import trio

import actors


@attrs.define
class Gates:
    """Lets a test hold a handler mid-flight."""

    release: trio.Event = attrs.field(factory=trio.Event)
    entered: trio.Event = attrs.field(factory=trio.Event)
    failures_left: int = 0


class Kind(enum.Enum):
    """A registered enum."""

    WIRE = "wire"
    CARD = "card"


@attrs.frozen(kw_only=True)
class Transfer:
    """A registered attrs value, sent over HTTP as a JSON object."""

    to: str
    amount: int
    when: datetime
    kind: Kind = Kind.WIRE
    tags: tuple[str, ...] = ()


TYPES = [Kind, Transfer]


@actors.virtual_object
class Ledger:
    """A keyed balance."""

    def __init__(self, gates: Gates) -> None:
        self.gates = gates

    @actors.exclusive
    async def add(self, ctx: actors.ObjectContext, amount: int, note: str = "") -> int:
        balance: int = ctx.get("balance", default=0) + amount
        ctx.set("balance", balance)
        if note:
            ctx.set("note", note)
        return balance

    @actors.exclusive
    async def refuse(self, ctx: actors.ObjectContext) -> None:
        raise actors.TerminalError("insufficient funds", code=422)

    @actors.exclusive
    async def flaky(self, ctx: actors.ObjectContext) -> str:
        if self.gates.failures_left > 0:
            self.gates.failures_left -= 1
            raise RuntimeError("the bank is down")
        return "ok"

    @actors.exclusive
    async def hold(self, ctx: actors.ObjectContext) -> object:
        """Waits for an awakeable that nobody resolves (until a test does)."""
        awakeable = ctx.awakeable()
        ctx.set("held", awakeable.id)
        self.gates.entered.set()
        return await awakeable.wait()

    @actors.exclusive
    async def transfer(self, ctx: actors.ObjectContext, transfer: Transfer) -> Transfer:
        ctx.set("last_transfer", transfer)
        return transfer

    @actors.shared
    async def balance(self, ctx: actors.SharedContext) -> int:
        value: int = ctx.get("balance", default=0)
        return value


@actors.service
class Echo:
    """A stateless service."""

    @actors.handler
    async def echo(self, ctx: actors.ServiceContext, value: object) -> object:
        return value

    @actors.handler
    async def pair(self, ctx: actors.ServiceContext, a: int, b: int = 0) -> list[int]:
        return [a, b]


@actors.workflow
class Approval:
    """Waits for an awakeable, then for a promise, then returns both."""

    @actors.run
    async def run(self, ctx: actors.WorkflowContext, amount: int) -> dict[str, object]:
        awakeable = ctx.awakeable()
        ctx.set("awakeable", awakeable.id)
        ctx.set("stage", "waiting for the bank")
        bank = await awakeable.wait()
        ctx.set("stage", "waiting for a manager")
        manager = await ctx.promise("manager").wait()
        return {"amount": amount, "bank": bank, "manager": manager}

    @actors.shared
    async def status(self, ctx: actors.WorkflowSharedContext) -> dict[str, object]:
        return {"stage": ctx.get("stage"), "awakeable": ctx.get("awakeable")}


def instances(gates: Gates) -> list[object]:
    """One instance of each actor."""
    return [Ledger(gates), Echo(), Approval()]
