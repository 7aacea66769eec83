"""The bad-input catalogue (RELIABILITY §3): each bad input gets its specific error, and then a
canary runs: a known workload on other keys succeeds and every earlier acknowledged state is
read back intact.

Rows run on a real LMDB node (real time: the LMDB writer thread does not mix with autojump)
unless they need virtual time (retries, hangs), which run on the in-memory node.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import actors
import storage
from actors.testing import open_memory_node

from .app import TYPES, Account, Witness, instances

REPO = Path(__file__).resolve().parents[2]
MAX_VALUE = 16 * 1024
"""The value size limit of the nodes in this file (small, so oversize rows are cheap)."""
NEEDLE = "a distinctive motto: bit rot must not go unnoticed 7f3a9c"


@actors.virtual_object
class Misfit:
    """Handlers that produce bad values themselves (their arguments are fine)."""

    @actors.exclusive
    async def store_big(self, ctx: actors.ObjectContext, size: int) -> None:
        ctx.set("blob", "x" * size)

    @actors.exclusive
    async def store_then_unencodable(self, ctx: actors.ObjectContext) -> None:
        ctx.set("fine", 1)
        ctx.set("bad", {1, 2, object()})

    @actors.exclusive
    async def always_fails(self, ctx: actors.ObjectContext) -> None:
        raise RuntimeError("misfit failure")


@actors.virtual_object
class Stranger:
    """Never registered on any node in this file."""

    @actors.exclusive
    async def poke(self, ctx: actors.ObjectContext) -> None:
        ctx.set("poked", True)


async def not_a_handler(self: object, ctx: actors.ObjectContext) -> None:
    """A plain coroutine function, not marked as a handler."""


@attrs.define
class Ledger:
    """Acknowledged state: what every key's `Account` balance must read back as."""

    balances: dict[str, int] = attrs.field(factory=dict)
    canaries: int = 0

    async def deposit(self, node: actors.Node, key: str, amount: int) -> None:
        expected = self.balances.get(key, 0) + amount
        assert await node.call(Account.deposit, key, amount) == expected
        self.balances[key] = expected

    async def establish(self, node: actors.Node) -> None:
        """Acknowledged state before a bad input: a few deposits on a few keys."""
        for i, key in enumerate(("acked-a", "acked-b", "acked-c")):
            await self.deposit(node, key, 10 * (i + 1))
            await self.deposit(node, key, 1)

    def check(self, node: actors.Node) -> None:
        """Every acknowledged balance reads back exactly."""
        for key, balance in self.balances.items():
            assert node.get_state(Account, key) == {"balance": balance}, key

    async def canary(self, node: actors.Node, *, writes: bool = True) -> None:
        """After a bad input: earlier state intact, and (if `writes`) new work on other keys
        succeeds and reads back; shared reads of every acknowledged key succeed."""
        self.check(node)
        for key, balance in self.balances.items():
            assert await node.call(Account.balance, key) == balance
        if writes:
            self.canaries += 1
            for i in range(3):
                await self.deposit(node, f"canary-{self.canaries}-{i}", i + 1)
            inv = await node.send(Account.deposit, f"canary-{self.canaries}-sent", 5)
            assert await node.attach(inv) == 5
            self.balances[f"canary-{self.canaries}-sent"] = 5
            self.check(node)


def node_options(**changes: Any) -> actors.NodeOptions:
    return attrs.evolve(actors.NodeOptions(max_value_size=MAX_VALUE), **changes)


@asynccontextmanager
async def lmdb_node(
    path: Path, *, witness: Witness | None = None, **changes: Any
) -> AsyncIterator[actors.Node]:
    async with actors.open_node(
        path,
        [*instances(witness), Misfit()],
        types=TYPES,
        options=node_options(**changes),
    ) as node:
        yield node


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[actors.Node]:
    """A real LMDB node (overrides the in-memory `node` of conftest in this module)."""
    async with lmdb_node(tmp_path) as node:
        yield node


@pytest.fixture
async def ledger(node: actors.Node) -> Ledger:
    ledger = Ledger()
    await ledger.establish(node)
    return ledger


# ----------------------------------------------------------------------------- admission


@pytest.mark.parametrize(
    ("handler", "fragment"),
    [
        (not_a_handler, "is not a handler"),
        (Stranger.poke, "not registered on this node"),
        (print, "is not a handler"),
    ],
    ids=["plain-function", "unregistered-actor", "builtin"],
)
async def test_unknown_handler_enqueues_nothing(
    node: actors.Node, ledger: Ledger, handler: Callable[..., Any], fragment: str
) -> None:
    batches = node.statistics().batches
    with pytest.raises(actors.UnknownHandler, match=fragment):
        await node.call(handler, "acked-a")
    with pytest.raises(actors.UnknownHandler, match=fragment):
        await node.send(handler, "acked-a")
    assert node.list_invocations() == []
    assert node.statistics().batches == batches
    assert node.statistics().invocations_in_memory == 0
    await ledger.canary(node)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("acked-a",), r"takes \(amount\).*missing a required argument: 'amount'"),
        (("acked-a", 1, 2), r"takes \(amount\).*too many positional arguments"),
        (("acked-a", "ten"), r"argument 'amount' should be int, got str 'ten'"),
        (("acked-a", 1.5), r"argument 'amount' should be int, got float"),
        (("acked-a", None), r"argument 'amount' should be int, got NoneType"),
    ],
    ids=["too-few", "too-many", "str-for-int", "float-for-int", "none-for-int"],
)
async def test_wrong_arguments(
    node: actors.Node, ledger: Ledger, args: tuple[Any, ...], fragment: str
) -> None:
    batches = node.statistics().batches
    with pytest.raises(actors.InvalidArguments, match=fragment):
        await node.call(Account.deposit, *args)
    with pytest.raises(actors.InvalidArguments, match=fragment):
        await node.send(Account.deposit, *args)
    assert node.list_invocations() == []
    assert node.statistics().batches == batches
    await ledger.canary(node)


async def test_missing_key_for_a_virtual_object(node: actors.Node, ledger: Ledger) -> None:
    with pytest.raises(actors.InvalidArguments, match="pass the key first"):
        await node.call(Account.balance)  # type: ignore[call-overload]
    with pytest.raises(actors.InvalidArguments, match="pass the key first"):
        await node.send(Account.balance)  # type: ignore[call-overload]
    assert node.list_invocations() == []
    await ledger.canary(node)


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "cannot be empty"),
        (42, "actor keys are str, got int 42"),
        (None, "actor keys are str, got NoneType None"),
        (b"alice", "actor keys are str, got bytes"),
        ("k" * 257, "257 UTF-8 bytes is longer than the 256-byte limit"),
        ("é" * 129, "258 UTF-8 bytes is longer than the 256-byte limit"),
        ("bad\ud800", "not valid Unicode"),
    ],
    ids=["empty", "int", "none", "bytes", "257-bytes", "258-utf8-bytes", "lone-surrogate"],
)
async def test_invalid_key(node: actors.Node, ledger: Ledger, key: object, fragment: str) -> None:
    batches = node.statistics().batches
    with pytest.raises(actors.InvalidKey, match=fragment):
        await node.call(Account.deposit, key, 1)  # type: ignore[call-overload]
    with pytest.raises(actors.InvalidKey, match=fragment):
        await node.send(Account.deposit, key, 1)  # type: ignore[call-overload]
    with pytest.raises(actors.InvalidKey, match=fragment):
        node.get_state(Account, key)  # type: ignore[arg-type]
    assert node.list_invocations() == []
    assert node.statistics().batches == batches
    await ledger.canary(node)


async def test_a_key_of_exactly_256_bytes_is_accepted(node: actors.Node, ledger: Ledger) -> None:
    await ledger.deposit(node, "é" * 128, 3)
    await ledger.deposit(node, "k" * 256, 4)
    await ledger.canary(node)


@pytest.mark.parametrize(
    ("idempotency_key", "fragment"),
    [
        ("", "idempotency keys are non-empty str, got ''"),
        (7, "idempotency keys are non-empty str, got 7"),
        (b"req-1", "idempotency keys are non-empty str, got b'req-1'"),
        ("r" * 101, "idempotency key is longer than 100 bytes"),
    ],
    ids=["empty", "int", "bytes", "too-long"],
)
async def test_bad_idempotency_key(
    node: actors.Node, ledger: Ledger, idempotency_key: Any, fragment: str
) -> None:
    batches = node.statistics().batches
    with pytest.raises(actors.InvalidArguments, match=fragment):
        await node.call(Account.deposit, "acked-a", 1, idempotency_key=idempotency_key)
    with pytest.raises(actors.InvalidArguments, match=fragment):
        await node.send(Account.deposit, "acked-a", 1, idempotency_key=idempotency_key)
    assert node.list_invocations() == []
    assert node.statistics().batches == batches
    await ledger.canary(node)


async def test_unserializable_argument(node: actors.Node, ledger: Ledger) -> None:
    with pytest.raises(actors.UnsupportedType, match=r"cannot encode a builtins\.object at"):
        await node.call(Account.return_value, "acked-a", object())
    with pytest.raises(actors.UnsupportedType, match=r"cannot encode a builtins\.object at"):
        await node.send(Account.store_value, "acked-a", "x", [1, object()])
    assert actors.UnsupportedType is storage.UnsupportedType
    assert node.list_invocations() == []
    await ledger.canary(node)


async def test_oversized_argument(node: actors.Node, ledger: Ledger) -> None:
    batches = node.statistics().batches
    with pytest.raises(actors.PayloadTooLarge, match=f"more than max_size={MAX_VALUE}"):
        await node.call(Account.return_value, "acked-a", "x" * (MAX_VALUE + 1))
    with pytest.raises(actors.PayloadTooLarge, match=f"more than max_size={MAX_VALUE}"):
        await node.send(Account.store_value, "acked-a", "v", b"\x00" * MAX_VALUE)
    assert actors.PayloadTooLarge is storage.PayloadTooLarge
    assert node.list_invocations() == []
    assert node.statistics().batches == batches
    # Just under the limit is fine.
    value = "y" * (MAX_VALUE - 100)
    assert await node.call(Account.return_value, "other", value) == value
    await ledger.canary(node)


async def test_stored_invocation_of_an_unregistered_handler_stays_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = Ledger()
    once = actors.RetryPolicy(max_attempts=1)
    async with lmdb_node(tmp_path, retry_policy=once) as node:
        await ledger.establish(node)
        with pytest.raises(actors.InvocationPaused, match="misfit failure") as info:
            await node.call(Misfit.always_fails, "m")
        queued = await node.send(Misfit.store_big, "m", 10)
        await node.wait_idle()
        assert node.get_invocation(queued).status is actors.InvocationStatus.INBOX
    # A node that does not register Misfit keeps both stored invocations and runs the rest.
    async with actors.open_node(tmp_path, instances(), types=TYPES, options=node_options()) as node:
        with caplog.at_level(logging.ERROR, logger="actors"):
            await ledger.canary(node)
        assert "cannot run on this node and stays stored" in caplog.text
        with pytest.raises(actors.UnknownHandler, match="not registered on this node"):
            await node.call(Misfit.store_big, "m", 1)
    # A node that registers it again runs them (after the operator drops the paused one).
    async with lmdb_node(tmp_path) as node:
        assert node.get_invocation(info.value.invocation_id).status is (
            actors.InvocationStatus.PAUSED
        )
        await node.kill(info.value.invocation_id)
        await node.wait_idle()
        assert node.list_invocations() == []
        assert node.get_state(Misfit, "m") == {"blob": "x" * 10}
        await ledger.canary(node)


# ----------------------------------------------------------------------------- inside handlers


async def test_unserializable_result(node: actors.Node, ledger: Ledger) -> None:
    with pytest.raises(actors.TerminalError, match=r"cannot encode a builtins\.object") as info:
        await node.call(Account.return_unencodable, "acked-a")
    assert info.value.error_type == "UnsupportedType"
    await ledger.canary(node)


async def test_unserializable_state_value(node: actors.Node, ledger: Ledger) -> None:
    with pytest.raises(actors.TerminalError, match=r"cannot encode a builtins\.object") as info:
        await node.call(Account.store_unencodable, "acked-b")
    assert info.value.error_type == "UnsupportedType"
    # The key's earlier state is intact and nothing of the failed write is stored.
    await ledger.canary(node)
    # A handler that set a good value before the bad one keeps the good one (state set before a
    # terminal failure is kept, DESIGN §2.5) and never stores the bad one.
    with pytest.raises(actors.TerminalError) as info:
        await node.call(Misfit.store_then_unencodable, "m")
    assert info.value.error_type == "UnsupportedType"
    assert node.get_state(Misfit, "m") == {"fine": 1}


async def test_oversized_state_value(node: actors.Node, ledger: Ledger) -> None:
    with pytest.raises(actors.TerminalError, match=f"more than max_size={MAX_VALUE}") as info:
        await node.call(Misfit.store_big, "acked-a", MAX_VALUE + 1)
    assert info.value.error_type == "PayloadTooLarge"
    assert node.get_state(Misfit, "acked-a") == {}
    await node.call(Misfit.store_big, "acked-a", 100)
    assert node.get_state(Misfit, "acked-a") == {"blob": "x" * 100}
    await ledger.canary(node)


async def test_shared_handler_calling_set(node: actors.Node, ledger: Ledger) -> None:
    with pytest.raises(actors.TerminalError, match="shared handlers are read-only") as info:
        await node.call(Account.try_to_write, "acked-a")
    assert info.value.error_type == "ReadOnlyState"
    inv = await node.send(Account.try_to_write, "acked-b")
    with pytest.raises(actors.TerminalError, match=re.escape("ctx.set() is not available")):
        await node.attach(inv)
    await ledger.canary(node)


# ----------------------------------------------------------------------------- storage


def _flip_needle(data_file: Path, needle: bytes) -> int:
    """Flip one byte inside every stored copy of `needle` (LMDB's copy-on-write may have left
    stale copies on free pages); returns how many copies were found."""
    data = bytearray(data_file.read_bytes())
    found = 0
    at = data.find(needle)
    while at != -1:
        data[at + len(needle) // 2] ^= 0x01
        found += 1
        at = data.find(needle, at + len(needle))
    data_file.write_bytes(bytes(data))
    return found


async def test_corrupted_value_pauses_the_reading_invocation(tmp_path: Path) -> None:
    ledger = Ledger()
    async with lmdb_node(tmp_path) as node:
        await ledger.establish(node)
        await node.call(Account.store_value, "victim", "motto", NEEDLE)
        await ledger.deposit(node, "after-victim", 1)
    encoded = storage.Codec().encode(NEEDLE)
    assert encoded.endswith(NEEDLE.encode())
    assert _flip_needle(tmp_path / "data.mdb", NEEDLE.encode()) >= 1

    retry = actors.RetryPolicy(max_attempts=2, initial_interval=timedelta(0))
    async with lmdb_node(tmp_path, retry_policy=retry) as node:
        # Corrupted data is not retried into oblivion nor dropped: the invocation pauses for
        # an operator, and says why.
        with pytest.raises(actors.InvocationPaused, match="StorageCorrupted") as info:
            await node.call(Account.snapshot, "victim")
        assert "fails its checksum" in info.value.last_error
        record = node.get_invocation(info.value.invocation_id)
        assert record.status is actors.InvocationStatus.PAUSED
        assert record.attempts == 2
        with pytest.raises(actors.StorageCorrupted, match="fails its checksum"):
            node.get_state(Account, "victim")
        await ledger.canary(node)


async def test_corrupted_stored_invocation_at_start_up(tmp_path: Path) -> None:
    # A paused invocation's stored record (it carries its arguments) rots on disk. Recovery
    # reads it at start-up. Acceptable: the node starts and serves every other key, or it
    # refuses with the documented `StorageCorrupted` (open_node: "Raises: StorageCorrupted").
    ledger = Ledger()
    witness = Witness()
    once = actors.RetryPolicy(max_attempts=1)
    async with lmdb_node(tmp_path, witness=witness, retry_policy=once) as node:
        await ledger.establish(node)
        account = node._registry.actors["Account"].instance
        assert isinstance(account, Account)
        account.broken = True
        with pytest.raises(actors.InvocationPaused, match="the dependency is down"):
            await node.call(Account.flaky, "rotten", NEEDLE)
    assert _flip_needle(tmp_path / "data.mdb", NEEDLE.encode()) >= 1
    try:
        async with lmdb_node(tmp_path) as node:
            await ledger.canary(node)
    except actors.StorageCorrupted as exc:
        assert "fails its checksum" in str(exc)


async def test_map_full_grows_the_map(tmp_path: Path) -> None:
    small = storage.LmdbOptions(map_size=64 * 1024)
    ledger = Ledger()
    values = {f"fill-{i}": bytes([i % 251]) * 4096 for i in range(300)}
    async with lmdb_node(tmp_path, lmdb=small) as node:
        await ledger.establish(node)
        async with trio.open_nursery() as nursery:
            for key, value in values.items():
                nursery.start_soon(node.call, Account.store_value, key, "v", value)
        assert node.statistics().map_grows > 0
        await ledger.canary(node)
    async with lmdb_node(tmp_path, lmdb=small) as node:
        for key, value in values.items():
            assert node.get_state(Account, key) == {"v": value}
        await ledger.canary(node)


async def test_map_full_at_its_cap(tmp_path: Path) -> None:
    capped = storage.LmdbOptions(map_size=64 * 1024, max_map_size=256 * 1024)
    ledger = Ledger()
    stored: dict[str, bytes] = {}
    async with lmdb_node(tmp_path, lmdb=capped) as node:
        await ledger.establish(node)
        with pytest.raises(actors.StorageFull, match="full at its maximum of 262144 bytes"):
            for i in range(1000):
                key, value = f"fill-{i}", bytes([i % 251]) * 4096
                await node.call(Account.store_value, key, "v", value)
                stored[key] = value
        assert 10 < len(stored) < 1000
        full_key = f"fill-{len(stored)}"
        # Nothing of the failed call was written; every acknowledged value reads back.
        assert node.get_state(Account, full_key) == {}
        for key, value in stored.items():
            assert node.get_state(Account, key) == {"v": value}
        # The node still serves reads.
        await ledger.canary(node, writes=False)
        assert await node.call(Account.snapshot, "fill-0") == {"v": stored["fill-0"]}
    # After raising the cap, progress resumes with everything intact.
    raised = storage.LmdbOptions(map_size=64 * 1024, max_map_size=8 * 1024 * 1024)
    async with lmdb_node(tmp_path, lmdb=raised) as node:
        for key, value in stored.items():
            assert node.get_state(Account, key) == {"v": value}
        await node.call(Account.store_value, full_key, "v", b"z" * 4096)
        await ledger.canary(node)


async def test_second_node_on_the_same_directory(tmp_path: Path) -> None:
    ledger = Ledger()
    async with lmdb_node(tmp_path) as node:
        await ledger.establish(node)
        with pytest.raises(
            actors.DataDirLocked, match=re.escape(f"data directory {tmp_path} is already")
        ):
            async with lmdb_node(tmp_path):
                pytest.fail("a second node opened a locked data directory")
        await ledger.canary(node)
    # Closing the first node releases the lock.
    async with lmdb_node(tmp_path) as node:
        await ledger.canary(node)


_KILLED_NODE = """
import sys
import trio
import actors
from tests.actors.app import TYPES, Account, instances

async def main() -> None:
    async with actors.open_node(sys.argv[1], instances(), types=TYPES) as node:
        assert await node.call(Account.deposit, "killed", 41) == 41
        assert await node.call(Account.deposit, "killed", 1) == 42
        print("ready", flush=True)
        await trio.sleep_forever()

trio.run(main)
"""


async def test_stale_lock_of_a_sigkilled_node_does_not_block(tmp_path: Path) -> None:
    ledger = Ledger()
    async with lmdb_node(tmp_path) as node:
        await ledger.establish(node)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", textwrap.dedent(_KILLED_NODE), str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env=env,
    )
    try:
        assert proc.stdout is not None
        out = b""
        with trio.fail_after(30):
            while b"\n" not in out:
                chunk = await proc.stdout.receive_some()
                assert chunk, f"the node subprocess exited early: {out!r}"
                out += chunk
        assert out.startswith(b"ready"), out
        os.kill(proc.pid, signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.aclose()
    # The lock file still names the dead process, but its flock died with it.
    assert (tmp_path / "node.lock").read_text().strip() == str(proc.pid)
    async with lmdb_node(tmp_path) as node:
        assert node.get_state(Account, "killed") == {"balance": 42}
        ledger.balances["killed"] = 42
        await ledger.canary(node)


async def test_reopening_with_a_fixed_seed_keeps_stored_invocations(tmp_path: Path) -> None:
    # `NodeOptions.seed` makes invocation ids reproducible; a reopened node must still never
    # hand out the id of an invocation that is already stored.
    ledger = Ledger()
    witness = Witness()
    once = actors.RetryPolicy(max_attempts=1)
    async with lmdb_node(tmp_path, witness=witness, retry_policy=once, seed=7) as node:
        account = node._registry.actors["Account"].instance
        assert isinstance(account, Account)
        account.broken = True
        with pytest.raises(actors.InvocationPaused) as info:
            await node.call(Account.flaky, "k", "first")
        await ledger.establish(node)
    paused = info.value.invocation_id
    async with lmdb_node(tmp_path, seed=7) as node:
        queued = await node.send(Account.deposit, "k", 1)
        assert queued != paused
        record = node.get_invocation(paused)
        assert (record.handler, record.status) == ("flaky", actors.InvocationStatus.PAUSED)
        await node.resume(paused)
        assert await node.attach(paused) == "done first"
        await node.wait_idle()
        assert node.get_state(Account, "k") == {"flaky": "first", "balance": 1}
        await ledger.canary(node)


@pytest.mark.parametrize("error", ["user", "runtime"])
async def test_errors_leave_the_node_block_as_themselves(tmp_path: Path, error: str) -> None:
    # The specific errors of this catalogue must reach `except` clauses around the node's
    # `async with` block too, not only ones inside it.
    ledger = Ledger()
    expected = KeyError if error == "user" else actors.InvalidArguments
    with pytest.raises(expected):
        async with lmdb_node(tmp_path) as node:
            await ledger.establish(node)
            if error == "user":
                raise KeyError("raised by the application inside the block")
            await node.call(Account.deposit, "acked-a", "ten")
    async with lmdb_node(tmp_path) as node:
        await ledger.canary(node)


# ----------------------------------------------------------------------------- misbehaving
# handlers and callers


async def test_cancelled_caller_before_the_durable_point(tmp_path: Path) -> None:
    witness = Witness()
    ledger = Ledger()
    async with lmdb_node(tmp_path, witness=witness) as node:
        await ledger.establish(node)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.call, Account.set_then_wait, "acked-a", 999, "g")
            await witness.entered_event("g").wait()
            nursery.cancel_scope.cancel()
        witness.gate("g").set()
        await node.wait_idle()
        # Not durable when its caller left: it took no effect and holds nothing.
        assert node.statistics().invocations_in_memory == 0
        assert node.list_invocations() == []
        await ledger.canary(node)
        await ledger.deposit(node, "acked-a", 1)


async def test_cancelled_caller_queued_behind_another(tmp_path: Path) -> None:
    witness = Witness()
    ledger = Ledger()
    async with lmdb_node(tmp_path, witness=witness) as node:
        await ledger.establish(node)
        async with trio.open_nursery() as outer:
            outer.start_soon(node.call, Account.set_then_wait, "busy", 100, "g")
            await witness.entered_event("g").wait()
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as inner:
                    inner.start_soon(node.call, Account.deposit, "busy", 1)
                    await trio.testing.wait_all_tasks_blocked()
                    scope.cancel()
            witness.gate("g").set()
        await node.wait_idle()
        # `Node.call`: "If this caller is cancelled, the invocation still runs to completion."
        assert node.get_state(Account, "busy") == {"balance": 101}
        ledger.balances["busy"] = 101
        assert witness.overlaps == 0
        await ledger.canary(node)


async def test_cancelled_attach_leaves_a_sent_invocation_running(tmp_path: Path) -> None:
    witness = Witness()
    ledger = Ledger()
    async with lmdb_node(tmp_path, witness=witness) as node:
        await ledger.establish(node)
        inv = await node.send(Account.set_then_wait, "acked-c", 7, "g")
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(node.attach, inv)
                await witness.entered_event("g").wait()
                scope.cancel()
        witness.gate("g").set()
        await node.wait_idle()
        assert node.get_state(Account, "acked-c") == {"balance": 7}
        ledger.balances["acked-c"] = 7
        await ledger.canary(node)


@pytest.fixture
async def memory_node(witness: Witness, autojump_clock: object) -> AsyncIterator[actors.Node]:
    """The in-memory node, for rows that need virtual time (the test must request
    `autojump_clock` itself)."""
    retry = actors.RetryPolicy(initial_interval=timedelta(seconds=1), factor=2.0, max_attempts=3)
    async with open_memory_node(
        [*instances(witness), Misfit()], types=TYPES, options=node_options(retry_policy=retry)
    ) as node:
        yield node


async def test_retryable_error_is_retried_then_paused(
    autojump_clock: object, memory_node: actors.Node, witness: Witness
) -> None:
    node = memory_node
    ledger = Ledger()
    await ledger.establish(node)
    account = node._registry.actors["Account"].instance
    assert isinstance(account, Account)
    account.broken = True
    start = trio.current_time()
    with pytest.raises(actors.InvocationPaused, match="RuntimeError: the dependency is down"):
        await node.call(Account.flaky, "acked-a", "op")
    # Three attempts, with backoffs of 1 s and 2 s between them, on the virtual clock.
    assert trio.current_time() - start == pytest.approx(3.0)
    assert witness.effects["op"] == 3
    await ledger.canary(node)
    account.broken = False
    [paused] = node.list_invocations(status=actors.InvocationStatus.PAUSED)
    await node.resume(str(paused.id))
    assert await node.attach(str(paused.id)) == "done op"
    assert node.get_state(Account, "acked-a") == {
        "balance": ledger.balances["acked-a"],
        "flaky": "op",
    }


async def test_hanging_handler_and_the_callers_cancel_scope(
    autojump_clock: object, memory_node: actors.Node, witness: Witness
) -> None:
    node = memory_node
    ledger = Ledger()
    await ledger.establish(node)
    start = trio.current_time()
    with trio.move_on_after(5) as scope:
        await node.call(Account.hang, "acked-b")
    assert scope.cancelled_caught
    assert trio.current_time() - start == pytest.approx(5.0)
    assert witness.effects["hang"] == 1
    # Other keys are unaffected, and the same key is usable again (the hung attempt's write
    # was never committed).
    await ledger.canary(node)
    await ledger.deposit(node, "acked-b", 1)
    assert node.get_state(Account, "acked-b") == {"balance": ledger.balances["acked-b"]}
    assert node.statistics().invocations_in_memory == 0
