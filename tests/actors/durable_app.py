"""A test application for durable execution: handlers that take journaled steps."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import attrs

import actors


@attrs.define
class Sink:
    """Counts side effects by tag, and fails on demand."""

    effects: Counter[str] = attrs.field(factory=Counter)
    fail_handler_after: set[str] = attrs.field(factory=set)
    """Step names after which the handler raises a retryable error once."""
    step_names: dict[str, str] = attrs.field(factory=dict)
    """Renames of steps (to make a handler non-deterministic on purpose)."""
    flaky_effects: dict[str, int] = attrs.field(factory=dict)
    """Effects that raise this many times before succeeding."""

    def effect(self, tag: str) -> str:
        self.effects[tag] += 1
        left = self.flaky_effects.get(tag, 0)
        if left:
            self.flaky_effects[tag] = left - 1
            raise ConnectionError(f"{tag} is unreachable")
        return tag

    async def async_effect(self, tag: str) -> str:
        return self.effect(tag)

    def maybe_fail(self, step: str) -> None:
        if step in self.fail_handler_after:
            self.fail_handler_after.discard(step)
            raise RuntimeError(f"crash-like failure after {step}")


@actors.virtual_object
class Saga:
    """Steps with side effects, state between them, and messages to other keys."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    @actors.exclusive
    async def checkout(self, ctx: actors.ObjectContext, order: str) -> list[str]:
        done: list[str] = []
        for step in ("reserve", "charge", "confirm"):
            name = self.sink.step_names.get(step, step)
            tag = await ctx.run(name, self.sink.effect, f"{order}:{step}")
            done.append(tag)
            ctx.set("progress", done)
            self.sink.maybe_fail(step)
        return done

    @actors.exclusive
    async def async_steps(self, ctx: actors.ObjectContext, order: str) -> str:
        first = await ctx.run("one", self.sink.async_effect, f"{order}:one")
        self.sink.maybe_fail("one")
        second = await ctx.run("two", self.sink.async_effect, f"{order}:two")
        return f"{first}+{second}"

    @actors.exclusive
    async def increment_then_step(self, ctx: actors.ObjectContext) -> int:
        value: int = ctx.get("x", default=0) + 1
        ctx.set("x", value)
        await ctx.run("step", self.sink.effect, f"{ctx.key}:step")
        self.sink.maybe_fail("step")
        seen: int = ctx.get("x")
        return seen

    @actors.exclusive
    async def nap(self, ctx: actors.ObjectContext, seconds: float) -> str:
        await ctx.sleep(timedelta(seconds=seconds))
        self.sink.effects["woke"] += 1
        return "awake"

    @actors.exclusive
    async def stamp(self, ctx: actors.ObjectContext) -> datetime:
        moment = ctx.now()
        await ctx.run("noop", self.sink.effect, f"{ctx.key}:noop")
        self.sink.maybe_fail("noop")
        return moment

    @actors.exclusive
    async def forward(self, ctx: actors.ObjectContext, op: str, hops: int) -> None:
        """Record `op`, then pass it on to the next key (a chain of exactly-once sends)."""
        log: list[str] = ctx.get("log", default=[])
        log.append(op)
        ctx.set("log", log)
        if hops > 0:
            ctx.send(Saga.forward, f"{ctx.key}+", op, hops - 1)
        await ctx.run("after-send", self.sink.effect, f"{ctx.key}:{op}")
        self.sink.maybe_fail("after-send")

    @actors.exclusive
    async def guarded(self, ctx: actors.ObjectContext) -> str:
        try:
            return await ctx.run(
                "pay",
                self.sink.effect,
                "pay",
                retry=actors.RetryPolicy(initial_interval=timedelta(seconds=1), max_attempts=3),
            )
        except actors.TerminalError as exc:
            ctx.set("compensated", exc.message)
            return "compensated"

    @actors.exclusive
    async def refused(self, ctx: actors.ObjectContext) -> str:
        return await ctx.run("pay", self.sink.effect, "pay", non_retryable=(ConnectionError,))

    @actors.shared
    async def peek(self, ctx: actors.SharedContext) -> dict[str, object]:
        return {name: ctx.get(name) for name in ctx.keys()}  # noqa: SIM118


@actors.service
class Clerk:
    """A journaled stateless service."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    @actors.handler
    async def file(self, ctx: actors.ServiceContext, doc: str) -> str:
        stamped = await ctx.run("stamp", self.sink.effect, f"file:{doc}")
        self.sink.maybe_fail("stamp")
        ctx.send(Saga.forward, "archive", doc, 0)
        return stamped


def instances(sink: Sink) -> list[object]:
    return [Saga(sink), Clerk(sink)]
