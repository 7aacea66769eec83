"""A shopping cart per user: exclusive handlers change it, a shared handler reads it."""

from __future__ import annotations

import attrs

import actors


@attrs.frozen(kw_only=True)
class Receipt:
    """What a successful checkout returns."""

    user: str
    items: tuple[str, ...]
    charge_id: str


class PaymentClient:
    """A stand-in payment gateway: a dependency injected into the actor instance."""

    def __init__(self) -> None:
        self.charges: list[tuple[str, int]] = []

    async def charge(self, user: str, amount: int) -> str:
        """Charge `amount` cents to `user`; returns a charge id."""
        self.charges.append((user, amount))
        return f"ch_{user}_{len(self.charges)}"


PRICE_CENTS = 250


@actors.virtual_object
class Cart:
    """One cart per key (a user id)."""

    def __init__(self, payments: PaymentClient) -> None:
        self.payments = payments

    @actors.exclusive
    async def add_item(self, ctx: actors.ObjectContext, item: str) -> int:
        """Add `item`; returns the number of items in the cart."""
        items: list[str] = ctx.get("items", default=[])
        items.append(item)
        ctx.set("items", items)
        return len(items)

    @actors.exclusive
    async def remove_item(self, ctx: actors.ObjectContext, item: str) -> bool:
        """Remove one `item`; returns False if it was not in the cart."""
        items: list[str] = ctx.get("items", default=[])
        if item not in items:
            return False
        items.remove(item)
        ctx.set("items", items)
        return True

    @actors.exclusive
    async def checkout(self, ctx: actors.ObjectContext) -> Receipt:
        """Charge for the items and empty the cart.

        Raises:
            actors.TerminalError: the cart is empty (code 400; not retried).
        """
        items: list[str] = ctx.get("items", default=[])
        if not items:
            raise actors.TerminalError("cart is empty", code=400)
        charge_id = await self.payments.charge(ctx.key, PRICE_CENTS * len(items))
        ctx.clear("items")
        ctx.set("orders", ctx.get("orders", default=0) + 1)
        return Receipt(user=ctx.key, items=tuple(items), charge_id=charge_id)

    @actors.shared
    async def items(self, ctx: actors.SharedContext) -> list[str]:
        """The items in the cart (read-only; runs concurrently with everything)."""
        items: list[str] = ctx.get("items", default=[])
        return items


def app(payments: PaymentClient | None = None) -> list[object]:
    """The actor instances of this example, ready for `actors.open_node`."""
    return [Cart(payments or PaymentClient())]


TYPES = [Receipt]
"""Classes this app passes through the codec (give them to `open_node(types=...)`)."""
