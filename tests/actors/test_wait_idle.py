"""`Node.wait_idle(horizon=...)`: timers further away than the horizon do not count as
progress to wait for (what a graceful stop needs); without a horizon every timer does."""

from __future__ import annotations

from datetime import timedelta

import trio

import actors
from actors.testing import open_memory_node

from .durable_app import Saga, Sink, instances


async def test_far_timers_are_idle_within_a_horizon(autojump_clock: object) -> None:
    sink = Sink()
    async with open_memory_node(instances(sink)) as node:
        napping = await node.send(Saga.nap, "sleeper", 3600.0)  # suspends: wakes in an hour
        later = await node.send(Saga.forward, "later", "m", 0, delay=timedelta(hours=2))
        started = trio.current_time()
        await node.wait_idle(horizon=timedelta(seconds=10))
        assert trio.current_time() - started < 10
        assert node.get_invocation(napping).status is actors.InvocationStatus.SUSPENDED
        assert node.get_invocation(later).status is actors.InvocationStatus.SCHEDULED
        # A horizon that reaches the nap's wake-up waits for it (not for the later send).
        await node.wait_idle(horizon=timedelta(minutes=90))
        assert 3600 <= trio.current_time() - started < 7200
        assert sink.effects["woke"] == 1
        # Without a horizon, every timer is progress: the delayed send runs too.
        await node.wait_idle()
        assert trio.current_time() - started >= 7200
        assert node.get_state(Saga, "later") == {"log": ["m"]}
