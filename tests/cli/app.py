"""A small app for the command-line tests: a service, a keyed object whose handler journals
a step returning a registered attrs type and then waits on an awakeable (so a stopped node's
data directory holds a suspended invocation with a journal), and a gate the test controls."""

from __future__ import annotations

from datetime import timedelta

import attrs
import trio

import actors


@attrs.frozen(kw_only=True)
class Ticket:
    """A value of a registered type: it decodes only with the app's types."""

    number: int
    holder: str


async def issue(holder: str) -> Ticket:
    return Ticket(number=len(holder), holder=holder)


@actors.service
class Greeter:
    @actors.handler
    async def greet(self, ctx: actors.ServiceContext, name: str) -> str:
        return f"hello {name}"


class Gate:
    """Holds `Desk.slow` inside its step until the test opens it."""

    def __init__(self) -> None:
        self.entered = trio.Event()
        self.opened = trio.Event()

    async def wait(self) -> str:
        self.entered.set()
        await self.opened.wait()
        return "through"


@actors.virtual_object
class Desk:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    @actors.exclusive
    async def book(self, ctx: actors.ObjectContext, holder: str) -> Ticket:
        ticket = await ctx.run("issue", issue, holder)
        ctx.set("ticket", ticket)
        # Waits for outside help: the node counts it idle.
        await ctx.awakeable().wait()
        return ticket

    @actors.exclusive
    async def note(self, ctx: actors.ObjectContext, text: str) -> int:
        notes: list[str] = ctx.get("notes", default=[])
        notes.append(text)
        ctx.set("notes", notes)
        return len(notes)

    @actors.exclusive
    async def slow(self, ctx: actors.ObjectContext) -> str:
        passed: str = await ctx.run("gate", self.gate.wait)
        ctx.set("slow", passed)
        return passed


@actors.workflow
class Signup:
    @actors.run
    async def run(self, ctx: actors.WorkflowContext, email: str) -> str:
        ctx.set("email", email)
        confirmed = await ctx.promise("confirmed").wait()
        return f"welcome {email} ({confirmed})"


TYPES = [Ticket]


def make_app(gate: Gate | None = None) -> actors.App:
    """The app, with the test's gate (or a fresh one)."""
    return actors.App(
        [Greeter(), Desk(gate or Gate()), Signup()],
        types=TYPES,
        # Waiters suspend at once, so `Node.wait_idle` returns as soon as `book` waits.
        options=actors.NodeOptions(
            completed_retention=timedelta(hours=1), suspend_after=timedelta(0)
        ),
    )


app = make_app()
