"""A shop: the checkout saga, the shopping cart and a counter on one node.

Serve it with ``actors serve examples.shop:app --data ./data --http 127.0.0.1:8080`` and talk
to it with the command line, e.g. ``actors call Cart/alice/add_item '["apple"]'`` or
``actors call Counter/visits/add '[1]'``.
"""

from __future__ import annotations

import actors
from examples import cart, checkout_saga, counter

app = actors.App(
    [*checkout_saga.app(), *cart.app(), *counter.app()],
    types=[*checkout_saga.TYPES, *cart.TYPES],
)
"""The actor instances of the shop (with in-memory fake clients) and the types they use."""
