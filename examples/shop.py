"""A shop: the checkout saga, the shopping cart and a counter on one node.

Serve it with ``actors serve examples.shop:app --data ./data --http 127.0.0.1:8080`` and talk
to it with the command line, e.g. ``actors call Cart/alice/add_item '["apple"]'`` or
``actors call Counter/visits/add '[1]'``, or place an order (the fake warehouse stocks
sku-1, sku-2 and sku-3)::

    actors call Checkout/order-1/place '[{"customer": "ann", "email": "ann@example.com",
        "items": ["sku-1"], "amount_cents": 1250}]'
"""

from __future__ import annotations

from datetime import timedelta

import actors
from examples import cart, checkout_saga, counter

_clients = checkout_saga.Clients()
_clients.inventory.stock.update({"sku-1": 1000, "sku-2": 1000, "sku-3": 1000})
"""The saga's stand-in services: the warehouse stocks sku-1, sku-2 and sku-3."""

app = actors.App(
    [*checkout_saga.app(_clients), *cart.app(), *counter.app()],
    types=[*checkout_saga.TYPES, *cart.TYPES],
    # Keep finished invocations for an hour, so `actors invocations list/show` has something
    # to show (a production node keeps only those submitted with an idempotency key).
    options=actors.NodeOptions(completed_retention=timedelta(hours=1)),
)
"""The actor instances of the shop (with in-memory fake clients), the types they use, and
node options for exploring it."""
