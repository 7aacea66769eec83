"""The subscription example on virtual time (normal and always-replay mode): years of 30-day
billing, the grace period and suspension, cancellation, restarts; and a crash at every commit
on real LMDB."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest
import trio

import actors
import storage
from actors.testing import open_memory_node, run_until_crash
from examples.subscription import (
    PERIOD,
    TYPES,
    PaymentGateway,
    Status,
    Subscription,
    SubscriptionInfo,
    app,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
PRICE = 999


def days(n: float) -> float:
    """`n` days in seconds (for trio.sleep on the virtual clock)."""
    return n * 86_400


@pytest.fixture(params=[False, True], ids=["normal", "always-replay"])
def always_replay(request: pytest.FixtureRequest) -> bool:
    flag: bool = request.param
    return flag


@attrs.define
class World:
    node: actors.Node
    payments: PaymentGateway
    origin: float
    """trio time at T0."""

    async def until(self, day: float) -> None:
        """Let virtual time pass until `day` days after T0."""
        await trio.sleep_until(self.origin + days(day))

    def charged_days(self, customer: str) -> list[float]:
        return [(a.at - T0) / DAY for a in self.payments.paid(customer)]

    def attempt_days(self, customer: str) -> list[float]:
        return [(a.at - T0) / DAY for a in self.payments.attempts if a.customer == customer]


@asynccontextmanager
async def open_world(always_replay: bool = False) -> AsyncIterator[World]:
    """A memory node whose durable clock reads T0 now, and a gateway on the same clock."""
    clock = actors.TrioWallClock(start=T0)
    payments = PaymentGateway(clock.now)
    options = actors.NodeOptions(clock=clock, always_replay=always_replay)
    async with open_memory_node(app(payments), types=TYPES, options=options) as node:
        yield World(node=node, payments=payments, origin=trio.current_time())


async def test_bills_every_30_days(
    autojump_clock: trio.testing.MockClock, always_replay: bool
) -> None:
    async with open_world(always_replay) as w:
        info = await w.node.call(Subscription.start, "alice", PRICE)
        assert (info.status, info.period, info.generation) == (Status.ACTIVE, 1, 1)
        assert info.started_at == T0
        assert info.next_attempt_at == T0 + PERIOD
        await w.until(200)
        # Periods start on days 0, 30, ..., 180; each is charged exactly on time.
        assert [a.at for a in w.payments.paid("alice")] == [T0 + n * PERIOD for n in range(7)]
        assert len(w.payments.attempts) == 7
        assert {a.amount_cents for a in w.payments.attempts} == {PRICE}
        info = await w.node.call(Subscription.info, "alice")
        assert info is not None
        assert (info.status, info.period, info.paid_until) == (Status.ACTIVE, 7, T0 + 210 * DAY)


async def test_three_virtual_years_take_well_under_a_real_second(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A regression guard: until commit 0edd89d the node's expiry sweeper woke every 10 minutes
    of durable time, so 3 virtual years cost ~158,000 sweeps and ~20 s of real time."""
    real_start = time.perf_counter()
    async with open_world() as w:
        await w.node.call(Subscription.start, "alice", PRICE)
        await w.until(3 * 365)
        # 1095 days: periods start on days 0, 30, ..., 1080.
        assert w.charged_days("alice") == [30.0 * n for n in range(37)]
        assert [a.at for a in w.payments.paid("alice")] == [T0 + n * PERIOD for n in range(37)]
    elapsed = time.perf_counter() - real_start
    assert elapsed < 0.5, f"three virtual years of billing took {elapsed:.1f} s of real time"


async def test_starting_twice_does_not_start_a_second_loop(
    autojump_clock: trio.testing.MockClock, always_replay: bool
) -> None:
    async with open_world(always_replay) as w:
        first = await w.node.call(Subscription.start, "alice", PRICE)
        await w.until(45)
        again = await w.node.call(Subscription.start, "alice", PRICE)
        assert again == attrs.evolve(first, period=2, last_charge_id=again.last_charge_id)
        await w.until(100)
        assert w.charged_days("alice") == [0, 30, 60, 90]


async def test_grace_period_retries_daily_and_recovers(
    autojump_clock: trio.testing.MockClock, always_replay: bool
) -> None:
    async with open_world(always_replay) as w:
        await w.node.call(Subscription.start, "alice", PRICE)
        await w.until(10)
        w.payments.declines_left["alice"] = 3  # the day-30 charge and two retries fail
        await w.until(31.5)
        info = await w.node.call(Subscription.info, "alice")
        assert info is not None
        assert (info.status, info.failed_attempts) == (Status.PAST_DUE, 2)
        assert info.next_attempt_at == T0 + 32 * DAY
        await w.until(100)
        assert w.attempt_days("alice") == [0, 30, 31, 32, 33, 60, 90]
        # Paid late on day 33, but the periods stay anchored to the start.
        assert w.charged_days("alice") == [0, 33, 60, 90]
        info = await w.node.call(Subscription.info, "alice")
        assert info is not None
        assert (info.status, info.period, info.failed_attempts) == (Status.ACTIVE, 4, 0)


async def test_grace_period_runs_out_and_suspends(
    autojump_clock: trio.testing.MockClock, always_replay: bool
) -> None:
    async with open_world(always_replay) as w:
        await w.node.call(Subscription.start, "alice", PRICE)
        await w.until(20)
        w.payments.declined.add("alice")
        await w.until(40)
        # Day 30 fails, then one retry a day for 7 days; suspended after the last one.
        assert w.attempt_days("alice") == [0, *range(30, 38)]
        assert w.charged_days("alice") == [0]
        info = await w.node.call(Subscription.info, "alice")
        assert info is not None
        assert (info.status, info.period, info.failed_attempts) == (Status.SUSPENDED, 1, 7)
        assert info.next_attempt_at is None
        await w.node.wait_idle()  # no timer is left behind
        assert len(w.payments.attempts) == 9


async def test_transient_errors_retry_in_place(
    autojump_clock: trio.testing.MockClock, always_replay: bool
) -> None:
    async with open_world(always_replay) as w:
        w.payments.unreachable = 2
        info = await w.node.call(Subscription.start, "alice", PRICE)
        assert (info.status, info.period) == (Status.ACTIVE, 1)
        # Two network errors, retried 10 s and 30 s later under CHARGE_RETRY.
        assert [(a.at - T0).total_seconds() for a in w.payments.attempts] == [0, 10, 40]
        await w.until(40)
        w.payments.unreachable = 3  # outlasts CHARGE_RETRY: a failed attempt, like a decline
        await w.until(62)
        assert w.charged_days("alice")[1:] == [30, 61]
        assert len(w.payments.attempts) == 3 + 1 + 3 + 1
        info = await w.node.call(Subscription.info, "alice")
        assert info is not None
        assert (info.status, info.period) == (Status.ACTIVE, 3)


async def test_cancel_stops_billing(
    autojump_clock: trio.testing.MockClock, always_replay: bool
) -> None:
    async with open_world(always_replay) as w:
        await w.node.call(Subscription.start, "alice", PRICE)
        await w.node.call(Subscription.start, "bob", PRICE)
        await w.until(95)
        cancelled = await w.node.call(Subscription.cancel, "alice")
        assert cancelled is not None
        assert cancelled.status is Status.CANCELLED
        assert cancelled.paid_until == T0 + 120 * DAY
        assert cancelled.next_attempt_at is None
        assert await w.node.call(Subscription.cancel, "alice") == cancelled  # idempotent
        await w.until(200)
        assert w.charged_days("alice") == [0, 30, 60, 90]
        assert len(w.charged_days("bob")) == 7  # the other customer is unaffected
        assert await w.node.call(Subscription.info, "alice") == cancelled


async def test_cancel_during_the_grace_period_stops_the_retries(
    autojump_clock: trio.testing.MockClock, always_replay: bool
) -> None:
    async with open_world(always_replay) as w:
        await w.node.call(Subscription.start, "alice", PRICE)
        w.payments.declined.add("alice")
        await w.until(32.5)
        await w.node.call(Subscription.cancel, "alice")
        await w.node.wait_idle()  # the day-33 wake-up came and went
        assert w.attempt_days("alice") == [0, 30, 31, 32]


async def test_cancel_at_the_moment_a_charge_is_due(
    autojump_clock: trio.testing.MockClock, always_replay: bool
) -> None:
    async with open_world(always_replay) as w:
        await w.node.call(Subscription.start, "alice", PRICE)
        await w.until(30)  # the timer is due now too: whichever runs first on the key wins
        cancelled = await w.node.call(Subscription.cancel, "alice")
        assert cancelled is not None
        charged = len(w.payments.attempts)
        assert cancelled.period == charged  # the charge happened before the cancel, or not at all
        await w.node.wait_idle()
        assert len(w.payments.attempts) == charged


async def test_restart_after_cancel_ignores_the_old_timer(
    autojump_clock: trio.testing.MockClock, always_replay: bool
) -> None:
    async with open_world(always_replay) as w:
        await w.node.call(Subscription.start, "alice", PRICE)
        await w.until(10)
        await w.node.call(Subscription.cancel, "alice")
        await w.until(20)
        info = await w.node.call(Subscription.start, "alice", PRICE)
        assert (info.generation, info.started_at, info.period) == (2, T0 + 20 * DAY, 1)
        await w.until(100)
        # The first generation's wake-up on day 30 found a newer generation and did nothing.
        assert w.charged_days("alice") == [0, 20, 50, 80]
        assert [a.idempotency_key for a in w.payments.attempts] == [
            "alice/1/0/0",
            "alice/2/0/0",
            "alice/2/1/0",
            "alice/2/2/0",
        ]


# ----------------------------------------------------------------------------- crash sweep
#
# The workload: alice subscribes on day 0 and cancels on day 45, once her day-30 charge went
# through; bob subscribes on day 1 and his card is declined from day 20, so his day-31 charge
# fails and he is suspended after the last retry, on day 38. After a crash the test reopens the
# node and runs the phases not yet acknowledged (the interrupted one again, with the same
# idempotency key), waits until bob is suspended, then until the node is idle (alice's last
# wake-up, on day 60, finds her cancelled and charges nothing).
#
# The driver waits for states as well as times (alice's cancel waits until her day-30 charge
# is recorded), so the workload keeps its meaning if commits ever move virtual time again (see
# `test_virtual_time_does_not_leap_during_lmdb_commits`).

NO_FSYNC = storage.LmdbOptions(sync=False, i_accept_data_loss=True)
"""The crashes of this sweep are simulated in the process (the store refuses commit k), so
flushing to disk proves nothing here and only costs time: ~100 node runs of ~50 commits."""
CANCEL_DAY = 45
DECLINE_DAY = 20
STARTED = {"alice": 0, "bob": 1}


@attrs.define
class Driver:
    payments: PaymentGateway
    origin: float
    done: set[str] = attrs.field(factory=set)
    """Phases acknowledged by the node."""

    async def at(self, day: float) -> None:
        await trio.sleep_until(self.origin + days(day))

    async def until(
        self, node: actors.Node, customer: str, ready: Callable[[SubscriptionInfo], bool]
    ) -> None:
        while True:
            info = await node.call(Subscription.info, customer)
            if info is not None and ready(info):
                return
            await trio.sleep(3600)

    async def run(self, node: actors.Node) -> None:
        for customer, day in STARTED.items():
            if customer not in self.done:
                await self.at(day)
                key = f"start-{customer}"
                await node.call(Subscription.start, customer, PRICE, idempotency_key=key)
                self.done.add(customer)
        await self.at(DECLINE_DAY)
        self.payments.declined.add("bob")
        if "cancel" not in self.done:
            await self.at(CANCEL_DAY)
            await self.until(node, "alice", lambda info: info.period == 2)
            await node.call(Subscription.cancel, "alice", idempotency_key="cancel-alice")
            self.done.add("cancel")
        await self.until(node, "bob", lambda info: info.status is Status.SUSPENDED)
        with trio.fail_after(days(365)):
            await node.wait_idle()


EXPECTED_KEYS = {"alice/1/0/0", "alice/1/1/0", "bob/1/0/0"} | {f"bob/1/1/{n}" for n in range(8)}


async def _check_after_reopen(path: Path, driver: Driver, clock: actors.TrioWallClock) -> int:
    options = actors.NodeOptions(clock=clock, lmdb=NO_FSYNC)
    async with actors.open_node(path, app(driver.payments), types=TYPES, options=options) as node:
        await driver.run(node)
        alice = await node.call(Subscription.info, "alice")
        bob = await node.call(Subscription.info, "bob")
    assert alice is not None
    assert bob is not None
    assert (alice.status, alice.period, alice.generation) == (Status.CANCELLED, 2, 1)
    assert (bob.status, bob.period, bob.failed_attempts) == (Status.SUSPENDED, 1, 7)
    attempts = driver.payments.attempts
    keys = [a.idempotency_key for a in attempts]
    assert set(keys) == EXPECTED_KEYS
    assert all(1 <= keys.count(k) <= 2 for k in EXPECTED_KEYS), keys
    # Every attempt ran exactly at its due time (a re-run in the crash window at the same
    # instant: the node reopens at the virtual time of the crash).
    for a in attempts:
        customer, _, period, failed = a.idempotency_key.split("/")
        due = T0 + STARTED[customer] * DAY + int(period) * PERIOD + int(failed) * DAY
        assert a.at == due, a
    assert len(driver.payments.charges) == 3  # 2 periods of alice, 1 of bob: each once
    return len(keys) - len(set(keys))


async def test_virtual_time_does_not_leap_during_lmdb_commits(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A regression guard (fixed in 7e43a3f): on an LMDB node, a commit handed to the store's
    writer thread left trio's loop idle, and the autojump clock jumped to the next deadline
    meanwhile, repeatedly, until the thread reported. 8 concurrent starts let virtual time run
    ahead by minutes to hours; on this example it made a day-31 charge happen on day 60."""
    async with actors.open_node(tmp_path, app(), types=TYPES) as node, trio.open_nursery() as n:
        n.start_soon(trio.sleep, days(1))  # some later deadline for the clock to jump to
        start = trio.current_time()
        async with trio.open_nursery() as calls:
            for i in range(8):
                calls.start_soon(node.call, Subscription.start, f"c{i}", PRICE)
        leap = trio.current_time() - start
        n.cancel_scope.cancel()
    assert leap == 0, f"virtual time leapt {leap:.0f} s during 8 concurrent commits"


@pytest.mark.parametrize(
    "mode",
    [
        "crash_at_commit",
        "crash_after_commit",
    ],
)
async def test_crash_at_every_commit(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    def fresh() -> tuple[Driver, actors.TrioWallClock, actors.NodeOptions]:
        clock = actors.TrioWallClock(start=T0)
        driver = Driver(payments=PaymentGateway(clock.now), origin=trio.current_time())
        return driver, clock, actors.NodeOptions(clock=clock, lmdb=NO_FSYNC)

    driver, _, options = fresh()
    counting = await run_until_crash(
        tmp_path / "count", app(driver.payments), driver.run, types=TYPES, options=options
    )
    assert not counting.crashed
    total = counting.commits
    reruns = crashes = 0
    for k in range(1, total + 1):
        driver, clock, options = fresh()
        path = tmp_path / f"{mode}-{k}"
        report = await run_until_crash(
            path, app(driver.payments), driver.run, types=TYPES, options=options, **{mode: k}
        )
        crashes += report.crashed
        extra = await _check_after_reopen(path, driver, clock)
        # One invocation at a time is in flight: only the charge whose commit was lost reruns.
        assert extra <= (1 if mode == "crash_at_commit" else 0), (k, driver.payments.attempts)
        reruns += extra
    assert crashes == total
    print(f"subscription {mode} sweep: commits={total} crashed={crashes} charge_reruns={reruns}")
