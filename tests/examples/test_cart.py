"""The shopping-cart example, on virtual time and on real LMDB."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

import actors
from actors.testing import open_memory_node
from examples.cart import PRICE_CENTS, TYPES, Cart, PaymentClient, Receipt, app


async def test_add_remove_checkout(autojump_clock: trio.testing.MockClock) -> None:
    payments = PaymentClient()
    async with open_memory_node(app(payments), types=TYPES) as node:
        assert await node.call(Cart.add_item, "alice", "apple") == 1
        assert await node.call(Cart.add_item, "alice", "pear") == 2
        assert await node.call(Cart.remove_item, "alice", "plum") is False
        assert await node.call(Cart.remove_item, "alice", "pear") is True
        assert await node.call(Cart.items, "alice") == ["apple"]
        receipt = await node.call(Cart.checkout, "alice")
        assert receipt == Receipt(user="alice", items=("apple",), charge_id="ch_alice_1")
        assert payments.charges == [("alice", PRICE_CENTS)]
        assert await node.call(Cart.items, "alice") == []
        assert node.get_state(Cart, "alice") == {"orders": 1}


async def test_empty_checkout_is_a_terminal_error(autojump_clock: trio.testing.MockClock) -> None:
    payments = PaymentClient()
    async with open_memory_node(app(payments), types=TYPES) as node:
        with pytest.raises(actors.TerminalError, match="cart is empty") as info:
            await node.call(Cart.checkout, "bob")
        assert info.value.code == 400
        assert payments.charges == []


async def test_carts_survive_a_restart(tmp_path: Path) -> None:
    async with actors.open_node(tmp_path, app(), types=TYPES) as node:
        await node.call(Cart.add_item, "alice", "fig")
        inv = await node.send(Cart.add_item, "bob", "kiwi")
        assert await node.attach(inv) == 1
    async with actors.open_node(tmp_path, app(), types=TYPES) as node:
        assert await node.call(Cart.items, "alice") == ["fig"]
        assert await node.call(Cart.items, "bob") == ["kiwi"]
