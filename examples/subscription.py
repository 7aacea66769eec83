"""A subscription per customer: billed every 30 days for years, with a 7-day grace period of
daily retries after a failed charge, suspension when the grace period runs out, and
cancellation at any time.

Design: the billing loop is a chain of short invocations, not one long handler.

The obvious design, an exclusive ``start`` handler that loops ``charge; ctx.sleep(30 days)``,
cannot be cancelled: exclusive handlers of a key run one at a time, so a ``cancel`` handler on
the same key would wait behind the sleeping loop for ever, and a shared handler cannot write
the flag the loop would check (shared handlers are read-only). So the key is never held while
time passes:

- `Subscription.start`, `Subscription.bill` and `Subscription.cancel` are exclusive handlers of
  the customer's key that run briefly. A charge attempt (`start` makes the first one, `bill`
  every later one) is a journaled `ctx.run` step; then the handler decides the next attempt
  (30 days after the period start on success, one day later during the grace period) and
  schedules it with ``ctx.send(BillingTimer.wake, ...)``. The send is committed with the
  handler's completion, so exactly one wake-up is pending per subscription.
- `BillingTimer.wake` is a stateless service handler (services run concurrently and hold no
  key): it sleeps durably until the due time (``ctx.sleep_until``, which survives restarts and
  is virtual under trio's MockClock), then sends `Subscription.bill` back to the customer's key.
- Cancellation is therefore an ordinary exclusive handler that runs at once. `bill` is queued
  on the same key, so it runs strictly before or strictly after `cancel`; after `cancel`
  returns, every pending wake-up finds the subscription cancelled and charges nothing. Each
  wake-up also carries the subscription's generation and the attempt's due time; a stale one
  (from before a cancel and restart) is dropped. The timer itself keeps sleeping until its due
  time and then wakes to do nothing, which is harmless (a sleeping timer is suspended out of
  memory after `NodeOptions.suspend_after`).

Billing periods are anchored: period n starts exactly ``n * 30`` days after `start`, whether
its charge succeeded at once or on a grace-period retry, and every attempt's time comes from
durable state (the start time is journaled with ``ctx.now()``), so the schedule is
deterministic and replays exactly.

Charges go through an injected `PaymentGateway` (an in-memory fake here). A declined card is
`CardDeclined`, listed as ``non_retryable`` so the step fails terminally at once; any other
error (a network error) is retried in place under `CHARGE_RETRY` and, if it persists, counts
as a failed attempt like a decline. Each attempt has its own idempotency key, so the
at-least-once window of `ctx.run` (a crash after the charge, before its result was committed)
cannot charge twice at a gateway that honours the key.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs

import actors

PERIOD = timedelta(days=30)
"""The length of a billing period."""
RETRY_EVERY = timedelta(days=1)
"""The wait between charge attempts in the grace period."""
GRACE_RETRIES = 7
"""Retries after a failed charge (daily, so a 7-day grace period) before suspension."""
CHARGE_RETRY = actors.RetryPolicy(
    initial_interval=timedelta(seconds=10), factor=3.0, max_attempts=3
)
"""In-place retries of one charge attempt on transient errors (10 s, then 30 s)."""


class Status(enum.Enum):
    """Where a subscription stands."""

    ACTIVE = "active"
    """Paid up; the next period is billed when it starts."""
    PAST_DUE = "past_due"
    """The current period's charge failed; retrying daily during the grace period."""
    SUSPENDED = "suspended"
    """The grace period ran out; no more charges (`start` again to resubscribe)."""
    CANCELLED = "cancelled"
    """Cancelled by the customer; no more charges (`start` again to resubscribe)."""


BILLING = (Status.ACTIVE, Status.PAST_DUE)
"""The statuses in which a subscription has a charge attempt scheduled."""


@attrs.frozen(kw_only=True)
class SubscriptionInfo:
    """A subscription's durable state (one value, replaced as a whole)."""

    status: Status
    price_cents: int
    generation: int
    """Incremented by every (re)start; wake-ups of an older generation are ignored."""
    started_at: datetime
    period: int
    """Periods paid in this generation, which is also the 0-based number of the period billed
    next: it starts at ``started_at + period * PERIOD``."""
    failed_attempts: int = 0
    """Failed charge attempts for that period (0 unless past due)."""
    last_charge_id: str | None = None

    @property
    def paid_until(self) -> datetime:
        """The end of the last paid period: the start of the period billed next."""
        return self.started_at + self.period * PERIOD

    @property
    def next_attempt_at(self) -> datetime | None:
        """When the next charge attempt is due (None: none is scheduled)."""
        if self.status not in BILLING:
            return None
        return self.paid_until + self.failed_attempts * RETRY_EVERY


class CardDeclined(Exception):
    """The card was declined (not worth retrying in place)."""


@attrs.frozen(kw_only=True)
class ChargeAttempt:
    """One raw call the fake gateway received."""

    customer: str
    amount_cents: int
    idempotency_key: str
    at: datetime
    charge_id: str | None
    """None: declined (or failed)."""


class PaymentGateway:
    """A stand-in card processor: records every call with the time it happened.

    Args:
        clock: where the time of each call comes from (tests give it the node's clock, so
            the times are virtual). Default: the system clock.
    """

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.attempts: list[ChargeAttempt] = []
        self.charges: dict[str, str] = {}
        """Captured charges: idempotency key -> charge id."""
        self.declined: set[str] = set()
        """Customers whose card is declined."""
        self.declines_left: dict[str, int] = {}
        """Customers whose next this many charges are declined."""
        self.unreachable = 0
        """The next this many calls fail with `ConnectionError` (transient)."""

    async def charge(self, customer: str, amount_cents: int, idempotency_key: str) -> str:
        """Charge `customer`; returns the charge id (the same one for a repeated key).

        Raises:
            ConnectionError: the gateway is unreachable (transient).
            CardDeclined: the card was declined.
        """
        charge_id: str | None = None
        try:
            if self.unreachable:
                self.unreachable -= 1
                raise ConnectionError("payment gateway unreachable")
            if self.declines_left.get(customer, 0) > 0:
                self.declines_left[customer] -= 1
                raise CardDeclined(f"card of {customer} declined")
            if customer in self.declined:
                raise CardDeclined(f"card of {customer} declined")
            charge_id = self.charges.setdefault(idempotency_key, f"ch-{idempotency_key}")
            return charge_id
        finally:
            self.attempts.append(
                ChargeAttempt(
                    customer=customer,
                    amount_cents=amount_cents,
                    idempotency_key=idempotency_key,
                    at=self.clock(),
                    charge_id=charge_id,
                )
            )

    def paid(self, customer: str) -> list[ChargeAttempt]:
        """The successful attempts for `customer`, in order."""
        return [a for a in self.attempts if a.customer == customer and a.charge_id is not None]


@actors.virtual_object
class Subscription:
    """One subscription per key (a customer id)."""

    def __init__(self, payments: PaymentGateway) -> None:
        self.payments = payments

    @actors.exclusive
    async def start(self, ctx: actors.ObjectContext, price_cents: int) -> SubscriptionInfo:
        """Subscribe and charge the first period now.

        A no-op while the subscription is active or past due (returns it as it is). After a
        cancellation or suspension it starts a new subscription (a new generation) whose first
        period starts now.
        """
        current: SubscriptionInfo | None = ctx.get("subscription")
        if current is not None and current.status in BILLING:
            return current
        info = SubscriptionInfo(
            status=Status.ACTIVE,
            price_cents=price_cents,
            generation=1 if current is None else current.generation + 1,
            started_at=ctx.now(),
            period=0,
        )
        return await self._attempt(ctx, info)

    @actors.exclusive
    async def bill(self, ctx: actors.ObjectContext, generation: int, due: datetime) -> None:
        """A scheduled charge attempt (sent by `BillingTimer.wake`); ignored unless it is the
        one the subscription is waiting for."""
        info: SubscriptionInfo | None = ctx.get("subscription")
        if info is None or info.generation != generation or info.next_attempt_at != due:
            return  # cancelled, suspended, restarted since, or a stale wake-up
        await self._attempt(ctx, info)

    @actors.exclusive
    async def cancel(self, ctx: actors.ObjectContext) -> SubscriptionInfo | None:
        """Cancel: no charge happens after this returns. Returns the subscription (None if
        there is none); cancelling a cancelled or suspended one changes nothing."""
        info: SubscriptionInfo | None = ctx.get("subscription")
        if info is None or info.status not in BILLING:
            return info
        info = attrs.evolve(info, status=Status.CANCELLED)
        ctx.set("subscription", info)
        return info

    @actors.shared
    async def info(self, ctx: actors.SharedContext) -> SubscriptionInfo | None:
        """The subscription as of its last committed change."""
        info: SubscriptionInfo | None = ctx.get("subscription")
        return info

    async def _attempt(self, ctx: actors.ObjectContext, info: SubscriptionInfo) -> SubscriptionInfo:
        """Charge for `info.period`, record the outcome, schedule the next attempt."""
        key = f"{ctx.key}/{info.generation}/{info.period}/{info.failed_attempts}"
        try:
            charge_id: str = await ctx.run(
                "charge",
                self.payments.charge,
                ctx.key,
                info.price_cents,
                key,
                retry=CHARGE_RETRY,
                non_retryable=(CardDeclined,),
            )
        except actors.TerminalError:
            if info.failed_attempts < GRACE_RETRIES:
                info = attrs.evolve(
                    info, status=Status.PAST_DUE, failed_attempts=info.failed_attempts + 1
                )
            else:
                info = attrs.evolve(info, status=Status.SUSPENDED)
        else:
            info = attrs.evolve(
                info,
                status=Status.ACTIVE,
                period=info.period + 1,
                failed_attempts=0,
                last_charge_id=charge_id,
            )
        ctx.set("subscription", info)
        due = info.next_attempt_at
        if due is not None:
            ctx.send(BillingTimer.wake, ctx.key, info.generation, due)
        return info


@actors.service
class BillingTimer:
    """Durable wake-ups for subscriptions (stateless: they run concurrently, hold no key)."""

    @actors.handler
    async def wake(
        self, ctx: actors.ServiceContext, customer: str, generation: int, due: datetime
    ) -> None:
        """Sleep until `due`, then ask the customer's subscription to bill."""
        await ctx.sleep_until(due)
        ctx.send(Subscription.bill, customer, generation, due)


def app(payments: PaymentGateway | None = None) -> list[object]:
    """The actor instances of this example, ready for `actors.open_node`."""
    return [Subscription(payments or PaymentGateway()), BillingTimer()]


TYPES = [Status, SubscriptionInfo]
"""Classes this app passes through the codec (give them to `open_node(types=...)`)."""
