"""The counter example."""

from __future__ import annotations

import trio

from actors.testing import open_memory_node
from examples.counter import Counter, app


async def test_counter(autojump_clock: trio.testing.MockClock) -> None:
    async with open_memory_node(app()) as node:
        assert await node.call(Counter.add, "a") == 1
        assert await node.call(Counter.add, "a", 41) == 42
        assert await node.call(Counter.get, "a") == 42
        assert await node.call(Counter.get, "b") == 0
        await node.call(Counter.reset, "a")
        assert await node.call(Counter.get, "a") == 0
        assert node.get_state(Counter, "a") == {}


async def test_concurrent_adds_are_serialized(autojump_clock: trio.testing.MockClock) -> None:
    async with open_memory_node(app()) as node:
        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(node.call, Counter.add, "hot", 1)
        assert await node.call(Counter.get, "hot") == 100
