"""A checkout saga: reserve inventory, charge the card, confirm by email, request fulfillment.

`Checkout` is a virtual object keyed by order id. `Checkout.place` runs the four steps; each
side effect is a journaled `ctx.run` step against a client injected into the actor instance
(here in-memory fakes), so a crash or a retry of the handler never repeats a step whose result
was committed: the handler is re-executed and the recorded results are returned instead.

Compensation: when a step fails terminally (the card is declined, the email address bounces,
the item is out of stock, or the payment gateway stays unreachable through the step's retries),
`ctx.run` raises `actors.TerminalError`; the saga then undoes what was done, newest first
(refund the charge, release the reservation), each undo a `ctx.run` step too, records the
outcome in state and returns a failed `CheckoutResult`. A transient error (an exception that is
not terminal) does not compensate: the charge step retries in place under `CHARGE_RETRY`, the
other steps retry the whole invocation under the node's retry policy, replaying the steps
already done.

Fulfillment is a `ctx.send` to the `Fulfillment` object of the order's warehouse: a one-way
message committed with the saga's completion, so it is delivered exactly once.

The at-least-once window: a step whose effect ran but whose result was not yet committed when
the process died runs again after the restart. The fake clients are idempotent by order id
(as real ones should be: use ``order_id`` or ``(ctx.invocation_id, step)`` as the idempotency
key) and log every raw call in an `EffectLog`, so tests can count re-runs.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta

import attrs

import actors

CHARGE_RETRY = actors.RetryPolicy(initial_interval=timedelta(seconds=1), factor=2.0, max_attempts=4)
"""In-place retries of the charge step on transient gateway errors (1 s, 2 s, 4 s apart);
after the last one the saga compensates."""


@attrs.frozen(kw_only=True)
class Order:
    """What the customer checks out."""

    customer: str
    email: str
    items: tuple[str, ...]
    """SKUs, one entry per unit."""
    amount_cents: int
    warehouse: str = "main"


class Stage(enum.Enum):
    """How far a checkout got (the last step whose result is durable)."""

    RESERVED = "reserved"
    CHARGED = "charged"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    """Everything done and the fulfillment request sent."""
    FAILED = "failed"
    """A step failed terminally; what was done before it has been undone."""


@attrs.frozen(kw_only=True)
class CheckoutResult:
    """The outcome of a checkout (also kept in the order's state)."""

    order_id: str
    stage: Stage
    """`Stage.COMPLETED` or `Stage.FAILED`."""
    reason: str | None = None
    """Why it failed (the terminal error's message)."""
    reservation_id: str | None = None
    charge_id: str | None = None
    confirmation_id: str | None = None
    compensated: tuple[str, ...] = ()
    """The ids of the undo operations that ran, in order (a refund id, then a release id)."""


@attrs.frozen(kw_only=True)
class CheckoutStatus:
    """What `Checkout.status` reports."""

    stage: Stage | None
    """None: no such order (or its first step is not durable yet)."""
    result: CheckoutResult | None


# ----------------------------------------------------------------------------- fake clients


class EffectLog:
    """Every raw call the fake clients receive, as ``(effect, order_id)`` in call order.

    This is what the outside world saw; tests count it. Subclass it to also record durably
    (the process-kill test appends each entry to a file).
    """

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []

    def record(self, effect: str, order_id: str) -> None:
        """Note one raw call."""
        self.entries.append((effect, order_id))

    def counts(self) -> Counter[tuple[str, str]]:
        """How many times each ``(effect, order_id)`` was called."""
        return Counter(self.entries)


class InventoryClient:
    """A stand-in inventory service: stock per SKU, reservations per order (idempotent)."""

    def __init__(self, log: EffectLog, stock: dict[str, int] | None = None) -> None:
        self.log = log
        self.stock: Counter[str] = Counter(stock or {})
        self.reservations: dict[str, tuple[str, ...]] = {}
        """Open reservations by reservation id."""
        self.released: list[str] = []

    async def reserve(self, order_id: str, items: tuple[str, ...]) -> str:
        """Hold `items` for `order_id`; returns the reservation id.

        Raises:
            actors.TerminalError: not enough stock (code 409).
        """
        self.log.record("reserve", order_id)
        reservation_id = f"res-{order_id}"
        if reservation_id in self.reservations:
            return reservation_id  # a repeated call: already held
        wanted = Counter(items)
        short = sorted(sku for sku, n in wanted.items() if self.stock[sku] < n)
        if short:
            raise actors.TerminalError(f"out of stock: {', '.join(short)}", code=409)
        self.stock.subtract(wanted)
        self.reservations[reservation_id] = items
        return reservation_id

    async def release(self, reservation_id: str) -> str:
        """Put a reservation's items back; returns the release id (the same one for a
        repeated call, which changes nothing)."""
        self.log.record("release", reservation_id.removeprefix("res-"))
        items = self.reservations.pop(reservation_id, None)
        if items is not None:
            self.stock.update(items)
            self.released.append(reservation_id)
        return f"rel-{reservation_id}"


class PaymentGateway:
    """A stand-in card processor: charges keyed by order id (idempotent), refunds."""

    def __init__(self, log: EffectLog) -> None:
        self.log = log
        self.charges: dict[str, tuple[str, int]] = {}
        """Captured charges: charge id -> (customer, amount in cents)."""
        self.refunds: list[str] = []
        self.declined: set[str] = set()
        """Customers whose card is declined."""
        self.unreachable = 0
        """The next this many calls fail with `ConnectionError` (a transient error)."""

    async def charge(self, order_id: str, customer: str, amount_cents: int) -> str:
        """Charge `amount_cents` to `customer`'s card; returns the charge id.

        Raises:
            ConnectionError: the gateway is unreachable (transient: retry).
            actors.TerminalError: the card is declined (code 402).
        """
        self.log.record("charge", order_id)
        if self.unreachable:
            self.unreachable -= 1
            raise ConnectionError("payment gateway unreachable")
        if customer in self.declined:
            raise actors.TerminalError("card declined", code=402)
        charge_id = f"ch-{order_id}"
        self.charges.setdefault(charge_id, (customer, amount_cents))
        return charge_id

    async def refund(self, charge_id: str) -> str:
        """Refund a charge in full; returns the refund id (the same one for a repeated call)."""
        self.log.record("refund", charge_id.removeprefix("ch-"))
        if self.charges.pop(charge_id, None) is not None:
            self.refunds.append(charge_id)
        return f"re-{charge_id}"


class Mailer:
    """A stand-in email service."""

    def __init__(self, log: EffectLog) -> None:
        self.log = log
        self.sent: dict[str, str] = {}
        """Confirmation emails by order id -> address."""
        self.bouncing: set[str] = set()
        """Addresses that are rejected (terminal)."""
        self.flaky = 0
        """The next this many calls fail with `TimeoutError` (transient)."""

    async def send_confirmation(self, order_id: str, email: str, charge_id: str) -> str:
        """Email the order confirmation; returns the message id.

        Raises:
            TimeoutError: the mail server timed out (transient).
            actors.TerminalError: the address is rejected (code 422).
        """
        self.log.record("email", order_id)
        if self.flaky:
            self.flaky -= 1
            raise TimeoutError("mail server timed out")
        if email in self.bouncing:
            raise actors.TerminalError(f"address rejected: {email}", code=422)
        self.sent[order_id] = email
        return f"msg-{order_id}"


class WarehouseClient:
    """A stand-in warehouse system that accepts shipment requests (idempotent by order)."""

    def __init__(self, log: EffectLog) -> None:
        self.log = log
        self.shipments: dict[str, tuple[str, tuple[str, ...]]] = {}
        """Shipment requests by order id -> (warehouse, items)."""

    async def ship(self, warehouse: str, order_id: str, items: tuple[str, ...]) -> str:
        """Ask `warehouse` to ship `items`; returns a shipment id."""
        self.log.record("ship", order_id)
        self.shipments.setdefault(order_id, (warehouse, items))
        return f"shp-{order_id}"


# ----------------------------------------------------------------------------- actors


@actors.virtual_object
class Checkout:
    """One saga per key (an order id)."""

    def __init__(self, inventory: InventoryClient, payments: PaymentGateway, mailer: Mailer):
        self.inventory = inventory
        self.payments = payments
        self.mailer = mailer

    @actors.exclusive
    async def place(self, ctx: actors.ObjectContext, order: Order) -> CheckoutResult:
        """Run the checkout of `order` (keyed by its order id) to completion or compensation.

        Placing the same order id again returns the recorded result and does nothing else.
        """
        done: CheckoutResult | None = ctx.get("result")
        if done is not None:
            return done
        order_id = ctx.key
        ctx.set("order", order)
        # The undo of each step that succeeded, pushed as the saga goes.
        undo: list[tuple[str, Callable[[str], Awaitable[str]], str]] = []
        try:
            reservation_id: str = await ctx.run(
                "reserve", self.inventory.reserve, order_id, order.items
            )
            undo.append(("release", self.inventory.release, reservation_id))
            ctx.set("stage", Stage.RESERVED)
            charge_id: str = await ctx.run(
                "charge",
                self.payments.charge,
                order_id,
                order.customer,
                order.amount_cents,
                retry=CHARGE_RETRY,
            )
            undo.append(("refund", self.payments.refund, charge_id))
            ctx.set("stage", Stage.CHARGED)
            message_id: str = await ctx.run(
                "email", self.mailer.send_confirmation, order_id, order.email, charge_id
            )
            ctx.set("stage", Stage.CONFIRMED)
        except actors.TerminalError as exc:
            # Compensate, newest first. Each undo is a journaled step too: a crash in the
            # middle of the compensation resumes it without repeating a recorded undo.
            compensated: list[str] = []
            for name, fn, arg in reversed(undo):
                undo_id: str = await ctx.run(name, fn, arg)
                compensated.append(undo_id)
            result = CheckoutResult(
                order_id=order_id,
                stage=Stage.FAILED,
                reason=exc.message,
                compensated=tuple(compensated),
            )
        else:
            # Committed with the completion: exactly one fulfillment request per order.
            ctx.send(Fulfillment.request, order.warehouse, order_id, order.items)
            result = CheckoutResult(
                order_id=order_id,
                stage=Stage.COMPLETED,
                reservation_id=reservation_id,
                charge_id=charge_id,
                confirmation_id=message_id,
            )
        ctx.set("stage", result.stage)
        ctx.set("result", result)
        return result

    @actors.shared
    async def status(self, ctx: actors.SharedContext) -> CheckoutStatus:
        """The order's stage and, once it finished, its result.

        State changes become visible at the saga's next durable point (the next step's
        commit), so the stage lags the step that is running.
        """
        return CheckoutStatus(stage=ctx.get("stage"), result=ctx.get("result"))


@actors.virtual_object
class Fulfillment:
    """The fulfillment queue of one warehouse (the key)."""

    def __init__(self, warehouse: WarehouseClient) -> None:
        self.warehouse = warehouse

    @actors.exclusive
    async def request(
        self, ctx: actors.ObjectContext, order_id: str, items: tuple[str, ...]
    ) -> str:
        """Ask the warehouse to ship an order; returns the shipment id."""
        requested: list[str] = ctx.get("requested", default=[])
        requested.append(order_id)
        ctx.set("requested", requested)
        shipment: str = await ctx.run("ship", self.warehouse.ship, ctx.key, order_id, items)
        return shipment

    @actors.shared
    async def requested(self, ctx: actors.SharedContext) -> list[str]:
        """The order ids this warehouse was asked to ship, in arrival order."""
        requested: list[str] = ctx.get("requested", default=[])
        return requested


class Clients:
    """The fake outside world of this example, sharing one `EffectLog`."""

    def __init__(self, log: EffectLog | None = None) -> None:
        self.log = log or EffectLog()
        self.inventory = InventoryClient(self.log)
        self.payments = PaymentGateway(self.log)
        self.mailer = Mailer(self.log)
        self.warehouse = WarehouseClient(self.log)


def app(clients: Clients | None = None) -> list[object]:
    """The actor instances of this example, ready for `actors.open_node`."""
    clients = clients or Clients()
    return [
        Checkout(clients.inventory, clients.payments, clients.mailer),
        Fulfillment(clients.warehouse),
    ]


TYPES = [Order, Stage, CheckoutResult, CheckoutStatus]
"""Classes this app passes through the codec (give them to `open_node(types=...)`)."""
