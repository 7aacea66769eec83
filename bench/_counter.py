"""The actor the workloads call: a durable integer per key.

The same class as ``examples/counter.py``'s ``Counter.add``/``get``, kept here because the
project's import-linter layers make ``bench`` and ``examples`` independent (neither may import
the other). Keep the two in step: the benchmark is meant to measure the example's call path.
"""

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

    @actors.shared
    async def get(self, ctx: actors.SharedContext) -> int:
        """The current value."""
        value: int = ctx.get("value", default=0)
        return value
