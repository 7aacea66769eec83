"""The order-delivery workflow on virtual time, and across a restart on real LMDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

import actors
from actors.testing import open_memory_node
from examples.order_delivery import DELIVERY_WINDOW, TYPES, Carrier, Order, OrderDelivery, app

ORDER = Order(sku="tea", qty=2, address="1 Main St")


async def test_confirmed_delivery(autojump_clock: trio.testing.MockClock) -> None:
    carrier = Carrier()
    async with open_memory_node(app(carrier), types=TYPES) as node:
        run = await node.start(OrderDelivery.run, "order-1", ORDER)
        await trio.sleep(timedelta(days=3).total_seconds())
        assert await node.call(OrderDelivery.status, "order-1") == "shipped"
        await node.call(OrderDelivery.confirm_delivery, "order-1", "alice")
        assert await node.attach(run) == "done"
        assert await node.call(OrderDelivery.status, "order-1") == "delivered to alice"
        assert carrier.shipments == [("order-1", "1 Main St")]
        with pytest.raises(actors.TerminalError, match="already completed"):
            await node.call(OrderDelivery.confirm_delivery, "order-1", "bob")


async def test_the_window_closes_after_14_days(autojump_clock: trio.testing.MockClock) -> None:
    async with open_memory_node(app(), types=TYPES) as node:
        start = trio.current_time()
        assert await node.call(OrderDelivery.run, "order-2", ORDER) == "timed out"
        assert trio.current_time() - start == pytest.approx(DELIVERY_WINDOW.total_seconds())
        assert await node.call(OrderDelivery.status, "order-2") == "lost"


async def test_starting_twice_attaches(autojump_clock: trio.testing.MockClock) -> None:
    carrier = Carrier()
    async with open_memory_node(app(carrier), types=TYPES) as node:
        first = await node.start(OrderDelivery.run, "order-3", ORDER)
        second = await node.start(OrderDelivery.run, "order-3", ORDER)
        assert first == second
        await node.resolve_promise(OrderDelivery, "order-3", "delivered", "carol")
        assert await node.attach(first) == "done"
        assert len(carrier.shipments) == 1


async def test_the_deadline_holds_across_a_restart(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    t0 = datetime(2031, 5, 1, tzinfo=UTC)
    carrier = Carrier()
    before = actors.NodeOptions(clock=actors.TrioWallClock(start=t0))
    async with actors.open_node(tmp_path, app(carrier), types=TYPES, options=before) as node:
        run = await node.start(OrderDelivery.run, "order-4", ORDER)
        await trio.sleep(timedelta(days=1).total_seconds())
        assert await node.call(OrderDelivery.status, "order-4") == "shipped"
    # The node stays down for 20 days: at restart the 14-day window has already closed.
    after = actors.NodeOptions(clock=actors.TrioWallClock(start=t0 + timedelta(days=21)))
    async with actors.open_node(tmp_path, app(carrier), types=TYPES, options=after) as node:
        start = trio.current_time()
        assert await node.attach(run) == "timed out"
        assert trio.current_time() == start
        assert carrier.shipments == [("order-4", "1 Main St")]  # not shipped again
