"""A node running many checkout sagas, run as a subprocess by `test_saga_kill.py` and killed
with SIGKILL.

Usage: ``python tests/examples/saga_child.py DATA_DIR EFFECTS_FILE COUNT`` with the repository
root as the working directory and on PYTHONPATH.

Opens `actors.open_node(DATA_DIR, ...)` with the checkout-saga app, whose fake clients append
every raw call to EFFECTS_FILE (one ``<effect> <order>`` line, written with `os.write` and
`fsync`ed before the call returns), then sends ``Checkout.place`` for each of the COUNT orders
of `orders` with the order id as idempotency key, and waits until the node is idle. Prints
(flushed, one per line on stdout):

- ``recovered N`` once at start: invocations re-admitted by recovery;
- ``effect E O`` after each raw call of a fake client was recorded;
- ``ack O`` after the send of order O returned (it is durably enqueued);
- ``done`` once every saga and fulfillment request has finished.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import trio

import actors
from examples.checkout_saga import TYPES, Checkout, Clients, EffectLog, Order, Stage, app


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class FileEffectLog(EffectLog):
    """An effect log that survives SIGKILL: each entry is appended and fsynced."""

    def __init__(self, path: Path, *, echo: bool) -> None:
        super().__init__()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.echo = echo

    def record(self, effect: str, order_id: str) -> None:
        super().record(effect, order_id)
        os.write(self.fd, f"{effect} {order_id}\n".encode())
        os.fsync(self.fd)
        if self.echo:
            say(f"effect {effect} {order_id}")

    def close(self) -> None:
        os.close(self.fd)


def orders(count: int) -> dict[str, Order]:
    """The workload: order id -> order. Every 5th customer's card is declined and every 7th
    email address bounces (see `world`)."""
    return {
        f"o{i}": Order(
            customer=f"c{i}",
            email=f"c{i}@example.com",
            items=("apple",) * (1 + i % 3),
            amount_cents=100 * (i + 1),
            warehouse=f"w{i % 3}",
        )
        for i in range(count)
    }


def expected_stage(order_id: str) -> tuple[Stage, tuple[str, ...]]:
    """How the saga of `order_id` ends, and the effects it must have caused (in order)."""
    i = int(order_id.removeprefix("o"))
    if i % 5 == 4:
        return Stage.FAILED, ("reserve", "charge", "release")
    if i % 7 == 6:
        return Stage.FAILED, ("reserve", "charge", "email", "refund", "release")
    return Stage.COMPLETED, ("reserve", "charge", "email", "ship")


def world(log: EffectLog, count: int) -> Clients:
    """Fake clients with enough stock, and the declines and bounces of `expected_stage`."""
    clients = Clients(log)
    clients.inventory.stock["apple"] = 3 * count
    for order_id, order in orders(count).items():
        i = int(order_id.removeprefix("o"))
        if i % 5 == 4:
            clients.payments.declined.add(order.customer)
        elif i % 7 == 6:
            clients.mailer.bouncing.add(order.email)
    return clients


async def main(data_dir: Path, effects: Path, count: int) -> None:
    log = FileEffectLog(effects, echo=True)
    try:
        async with actors.open_node(data_dir, app(world(log, count)), types=TYPES) as node:
            say(f"recovered {node.statistics().invocations_in_memory}")
            for order_id, order in orders(count).items():
                await node.send(Checkout.place, order_id, order, idempotency_key=order_id)
                say(f"ack {order_id}")
            await node.wait_idle()
            say("done")
    finally:
        log.close()


if __name__ == "__main__":
    _, data_dir, effects, count = sys.argv
    trio.run(main, Path(data_dir), Path(effects), int(count))
