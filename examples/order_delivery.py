"""An order workflow: ship, then wait up to 14 days for a delivery confirmation.

The run executes once per order id; shared handlers answer status queries and carry the
confirmation signal (a durable promise) while the run waits. The 14-day timeout is durable: it
holds across restarts, and under trio's `MockClock` it takes no real time.
"""

from __future__ import annotations

from datetime import timedelta

import attrs

import actors

DELIVERY_WINDOW = timedelta(days=14)


@attrs.frozen(kw_only=True)
class Order:
    """What the shop sends to the workflow."""

    sku: str
    qty: int
    address: str


class Carrier:
    """A stand-in shipping carrier (a dependency of the workflow instance)."""

    def __init__(self) -> None:
        self.shipments: list[tuple[str, str]] = []

    async def ship(self, order_id: str, address: str) -> str:
        """Hand the parcel to the carrier; returns a tracking number."""
        self.shipments.append((order_id, address))
        return f"track-{order_id}-{len(self.shipments)}"


@actors.workflow
class OrderDelivery:
    """One workflow per order id."""

    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    @actors.run
    async def run(self, ctx: actors.WorkflowContext, order: Order) -> str:
        """Ship the order, then wait for the confirmation or the end of the window."""
        tracking = await ctx.run("ship", self.carrier.ship, ctx.key, order.address)
        ctx.set("tracking", tracking)
        ctx.set("status", "shipped")
        receiver = await ctx.promise("delivered").wait(timeout=DELIVERY_WINDOW)
        if receiver is None:
            ctx.set("status", "lost")
            return "timed out"
        ctx.set("status", f"delivered to {receiver}")
        return "done"

    @actors.shared
    async def confirm_delivery(self, ctx: actors.WorkflowSharedContext, receiver: str) -> None:
        """The signal: the parcel arrived (once; a second confirmation is refused)."""
        ctx.promise("delivered").resolve(receiver)

    @actors.shared
    async def status(self, ctx: actors.WorkflowSharedContext) -> str:
        """Where the order is, as of the workflow's last durable step."""
        status: str = ctx.get("status", default="started")
        return status


def app(carrier: Carrier | None = None) -> list[object]:
    """The actor instances of this example."""
    return [OrderDelivery(carrier or Carrier())]


TYPES = [Order]
"""Classes this app passes through the codec."""
