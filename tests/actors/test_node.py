"""Functional behaviour of a node: calls, sends, state, services, idempotency, retries,
pause/resume/kill, timeouts and cancellation. On the in-memory store and virtual time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio

import actors
from actors.testing import open_memory_node

from .app import TYPES, Account, Greeter, Point, Witness, instances
from .conftest import FAST_RETRY


async def test_call_returns_and_state_persists(autojump_clock: object, node: actors.Node) -> None:
    assert await node.call(Account.deposit, "alice", 5) == 5
    assert await node.call(Account.deposit, "alice", 7) == 12
    assert await node.call(Account.balance, "alice") == 12
    assert await node.call(Account.balance, "bob") == 0
    assert node.get_state(Account, "alice") == {"balance": 12}
    assert node.get_state("Account", "bob") == {}


async def test_send_is_durable_and_attachable(autojump_clock: object, node: actors.Node) -> None:
    inv = await node.send(Account.deposit, "alice", 3)
    assert inv.startswith("inv_")
    record = node.get_invocation(inv)
    assert record.status is actors.InvocationStatus.INBOX
    assert record.inbox_seq is not None
    assert await node.attach(inv) == 3
    with pytest.raises(actors.UnknownInvocation, match="not retained"):
        node.get_invocation(inv)


async def test_registered_types_round_trip(autojump_clock: object, node: actors.Node) -> None:
    assert await node.call(Account.move, "p", Point(x=1, y=2)) == Point(x=2, y=3)
    assert node.get_state(Account, "p") == {"point": Point(x=2, y=3)}
    value = {"t": (1, "a"), "s": {1, 2}, "b": b"\x00"}
    assert await node.call(Account.return_value, "p", value) == value


async def test_service_handlers(autojump_clock: object, node: actors.Node) -> None:
    assert await node.call(Greeter.greet, "bob") == "hello bob"
    inv = await node.send(Greeter.greet, "eve")
    assert await node.attach(inv) == "hello eve"


async def test_deterministic_helpers_follow_the_invocation(
    autojump_clock: object, node: actors.Node
) -> None:
    first = await node.call(Greeter.draws)
    second = await node.call(Greeter.draws)
    assert first != second
    assert 0.0 <= first[0] < 1.0


async def test_clear_all_and_keys(autojump_clock: object, node: actors.Node) -> None:
    await node.call(Account.store_value, "k", "a", 1)
    await node.call(Account.store_value, "k", "b", 2)
    assert await node.call(Account.wipe, "k") == []
    assert node.get_state(Account, "k") == {}


async def test_terminal_error_reaches_caller_and_keeps_earlier_writes(
    autojump_clock: object, node: actors.Node
) -> None:
    with pytest.raises(actors.TerminalError, match="insufficient funds") as info:
        await node.call(Account.fail_terminally, "alice")
    assert info.value.code == 409
    assert info.value.error_type == "TerminalError"
    assert node.get_state(Account, "alice") == {"before_failure": True}


async def test_idempotent_call_runs_once(
    autojump_clock: object, node: actors.Node, witness: Witness
) -> None:
    options = actors.NodeOptions(retry_policy=FAST_RETRY)
    assert options.idempotency_retention == timedelta(hours=24)
    one = await node.call(Account.flaky, "k", "op1", idempotency_key="req-1")
    two = await node.call(Account.flaky, "k", "op1", idempotency_key="req-1")
    assert one == two == "done op1"
    assert witness.effects["op1"] == 1
    # A different handler or key with the same idempotency key is a different request.
    await node.call(Account.flaky, "other", "op1", idempotency_key="req-1")
    assert witness.effects["op1"] == 2


async def test_idempotent_sends_share_one_invocation(
    autojump_clock: object, node: actors.Node, witness: Witness
) -> None:
    ids: list[str] = []

    async def submit() -> None:
        ids.append(await node.send(Account.flaky, "k", "op", idempotency_key="once"))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(submit)
    assert len(set(ids)) == 1
    assert await node.attach(ids[0]) == "done op"
    await node.wait_idle()
    assert witness.effects["op"] == 1
    # Retained: a later send with the same key still returns the same invocation.
    assert await node.send(Account.flaky, "k", "op", idempotency_key="once") == ids[0]
    assert await node.call(Account.flaky, "k", "op", idempotency_key="once") == "done op"


async def test_idempotency_records_expire(
    autojump_clock: object, node: actors.Node, witness: Witness
) -> None:
    await node.call(Account.flaky, "k", "op", idempotency_key="x")
    await trio.sleep(timedelta(hours=24, seconds=1).total_seconds())
    await node.call(Account.flaky, "k", "op", idempotency_key="x")
    assert witness.effects["op"] == 2


async def test_retryable_errors_back_off_on_virtual_time(
    autojump_clock: object, node: actors.Node, witness: Witness
) -> None:
    account = _account(node)
    account.failures_left["op"] = 2
    start = trio.current_time()
    assert await node.call(Account.flaky, "k", "op") == "done op"
    # Two waits: 0.1 s then 0.2 s (FAST_RETRY), exactly, on the virtual clock.
    assert trio.current_time() - start == pytest.approx(0.3)
    assert witness.effects["op"] == 3


async def test_paused_invocation_blocks_its_key_until_resumed(
    autojump_clock: object, node: actors.Node, witness: Witness
) -> None:
    account = _account(node)
    account.broken = True
    with pytest.raises(actors.InvocationPaused, match="the dependency is down") as info:
        await node.call(Account.flaky, "k", "op")
    assert witness.effects["op"] == FAST_RETRY.max_attempts
    paused_id = info.value.invocation_id
    record = node.get_invocation(paused_id)
    assert record.status is actors.InvocationStatus.PAUSED
    assert record.attempts == FAST_RETRY.max_attempts
    assert "the dependency is down" in (record.last_error or "")
    assert [r.id for r in node.list_invocations(status=actors.InvocationStatus.PAUSED)] == [
        record.id
    ]

    # Later work on the same key waits behind the paused invocation; other keys do not.
    queued = await node.send(Account.deposit, "k", 1)
    assert await node.call(Account.deposit, "other", 1) == 1
    await node.wait_idle()
    assert node.get_invocation(queued).status is actors.InvocationStatus.INBOX

    account.broken = False
    await node.resume(paused_id)
    assert await node.attach(paused_id) == "done op"
    assert await node.attach(queued) == 1


async def test_kill_releases_the_key(autojump_clock: object, node: actors.Node) -> None:
    _account(node).broken = True
    with pytest.raises(actors.InvocationPaused) as info:
        await node.call(Account.flaky, "k", "op")
    queued = await node.send(Account.deposit, "k", 1)
    await node.kill(info.value.invocation_id)
    assert await node.attach(queued) == 1
    with pytest.raises(actors.UnknownInvocation):
        await node.kill(info.value.invocation_id)


async def test_kill_a_running_handler(
    autojump_clock: object, node: actors.Node, witness: Witness
) -> None:
    inv = await node.send(Account.hang, "k")
    await trio.testing.wait_all_tasks_blocked()
    assert witness.effects["hang"] == 1
    queued = await node.send(Account.deposit, "k", 2)
    await node.kill(inv)
    with pytest.raises(actors.InvocationKilled):
        await node.attach(inv)
    assert await node.attach(queued) == 2
    # The killed attempt's write was discarded.
    assert node.get_state(Account, "k") == {"balance": 2}


async def test_attempt_timeout_retries_then_pauses(
    witness: Witness, autojump_clock: object
) -> None:
    options = actors.NodeOptions(
        retry_policy=actors.RetryPolicy(max_attempts=2), attempt_timeout=timedelta(seconds=30)
    )
    async with open_memory_node(instances(witness), options=options) as node:
        start = trio.current_time()
        with pytest.raises(actors.InvocationPaused, match="InvocationTimeout"):
            await node.call(Account.hang, "k")
        assert trio.current_time() - start == pytest.approx(60.1)
        assert witness.effects["hang"] == 2
        assert await node.call(Account.deposit, "other", 1) == 1


async def test_hanging_handler_and_caller_cancel_scope(
    autojump_clock: object, node: actors.Node, witness: Witness
) -> None:
    with trio.move_on_after(5) as scope:
        await node.call(Account.hang, "k")
    assert scope.cancelled_caught
    assert witness.effects["hang"] == 1
    # The call was not durable yet: it took no effect and holds nothing.
    assert node.list_invocations() == []
    assert node.get_state(Account, "k") == {}
    assert await node.call(Account.deposit, "k", 1) == 1


async def test_a_sent_hanging_handler_is_stopped_by_kill(
    autojump_clock: object, node: actors.Node, witness: Witness
) -> None:
    inv = await node.send(Account.hang, "k")
    queued = await node.send(Account.deposit, "k", 1)
    with trio.move_on_after(5):
        await node.attach(inv)
    assert await node.call(Account.deposit, "other", 4) == 4
    [running] = node.list_invocations(status=actors.InvocationStatus.RUNNING)
    assert str(running.id) == inv
    await node.kill(inv)
    assert await node.attach(queued) == 1


async def test_caller_cancelled_before_the_first_durable_point(
    autojump_clock: object, node: actors.Node, witness: Witness
) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node.call, Account.set_then_wait, "k", 9, "g")
        await witness.entered_event("g").wait()
        nursery.cancel_scope.cancel()
    witness.gate("g").set()
    await node.wait_idle()
    assert node.get_state(Account, "k") == {}
    assert node.statistics().invocations_in_memory == 0
    assert await node.call(Account.deposit, "k", 1) == 1


async def test_caller_cancelled_after_the_first_durable_point(
    autojump_clock: object, node: actors.Node, witness: Witness
) -> None:
    _account(node).failures_left["op"] = 1
    # The first attempt fails at t=0 and is recorded (a durable point); the retry is due at
    # t=0.1. The caller gives up at t=0.05: the invocation goes on without it.
    with trio.move_on_after(0.05):
        await node.call(Account.flaky, "k", "op")
    [record] = node.list_invocations()
    assert record.status is actors.InvocationStatus.BACKING_OFF
    await node.wait_idle()
    assert witness.effects["op"] == 2
    assert node.get_state(Account, "k") == {"flaky": "op"}


async def test_shared_handlers_run_beside_an_exclusive_one(
    autojump_clock: object, node: actors.Node, witness: Witness
) -> None:
    await node.call(Account.deposit, "k", 1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node.call, Account.set_then_wait, "k", 100, "g")
        await witness.entered_event("g").wait()
        # The exclusive handler has set 100 but not committed: shared reads see 1.
        assert await node.call(Account.balance, "k") == 1
        assert await node.call(Account.snapshot, "k") == {"balance": 1}
        witness.gate("g").set()
    assert await node.call(Account.balance, "k") == 100


async def test_list_invocations_with_retention(witness: Witness, autojump_clock: object) -> None:
    options = actors.NodeOptions(completed_retention=timedelta(minutes=5))
    async with open_memory_node(instances(witness), options=options) as node:
        inv = await node.send(Account.deposit, "k", 1)
        assert await node.attach(inv) == 1
        [record] = node.list_invocations(actor_type="Account")
        assert record.status is actors.InvocationStatus.COMPLETED
        assert node.list_invocations(actor_type="Greeter") == []
        assert await node.attach(inv) == 1
        await trio.sleep(301)
        assert node.list_invocations() == []


async def test_node_statistics_and_deactivation(autojump_clock: object, node: actors.Node) -> None:
    before = node.statistics().batches
    for i in range(50):
        await node.call(Account.deposit, f"k{i}", 1)
    stats = node.statistics()
    assert stats.active_actors == 0
    assert stats.invocations_in_memory == 0
    assert stats.batches - before == 50  # one commit per call


async def test_closed_node_refuses_work(witness: Witness, autojump_clock: object) -> None:
    async with open_memory_node(instances(witness)) as node:
        pass
    with pytest.raises(actors.NodeClosed):
        await node.call(Account.deposit, "k", 1)


def _account(node: actors.Node) -> Account:
    instance = node._registry.actors["Account"].instance
    assert isinstance(instance, Account)
    return instance


_ = TYPES
