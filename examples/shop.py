"""A shop: the checkout saga, the shopping cart and a counter on one node.

Serve it with ``actors serve examples.shop:app --data ./data --http 127.0.0.1:8080`` and talk
to it with the command line, e.g. ``actors call Cart/alice/add_item '["apple"]'`` or
``actors call Counter/visits/add '[1]'``.
"""

from __future__ import annotations

from datetime import timedelta

import actors
from examples import cart, checkout_saga, counter

app = actors.App(
    [*checkout_saga.app(), *cart.app(), *counter.app()],
    types=[*checkout_saga.TYPES, *cart.TYPES],
    # Keep finished invocations for an hour, so `actors invocations list/show` has something
    # to show (a production node keeps only those submitted with an idempotency key).
    options=actors.NodeOptions(completed_retention=timedelta(hours=1)),
)
"""The actor instances of the shop (with in-memory fake clients), the types they use, and
node options for exploring it."""
