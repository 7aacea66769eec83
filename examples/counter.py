"""A counter per key: the smallest virtual object."""

from __future__ import annotations

import actors


@actors.virtual_object
class Counter:
    """A durable integer per key."""

    @actors.exclusive
    async def add(self, ctx: actors.ObjectContext, amount: int = 1) -> int:
        """Add `amount`; returns the new value."""
        value: int = ctx.get("value", default=0) + amount
        ctx.set("value", value)
        return value

    @actors.exclusive
    async def reset(self, ctx: actors.ObjectContext) -> None:
        """Forget the value."""
        ctx.clear_all()

    @actors.shared
    async def get(self, ctx: actors.SharedContext) -> int:
        """The current value."""
        value: int = ctx.get("value", default=0)
        return value


def app() -> list[object]:
    """The actor instances of this example."""
    return [Counter()]
