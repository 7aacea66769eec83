"""Guarantee 1: at most one exclusive invocation runs per key, in mailbox order; the final
state equals the acknowledged work. Run on real LMDB (group commit on the writer thread) with
many concurrent callers and senders, and watched by an overlap detector."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import trio

import actors

from .app import Account, Witness, instances


async def _hammer(path: Path, *, seed: int, keys: int, callers: int, per_caller: int) -> None:
    print(f"single-writer workload seed={seed} keys={keys} callers={callers} x {per_caller}")
    rng = random.Random(seed)
    witness = Witness()
    acked: Counter[str] = Counter()
    async with actors.open_node(path, instances(witness)) as node:

        async def caller(n: int) -> None:
            for i in range(per_caller):
                key = f"k{rng.randrange(keys)}"
                if rng.random() < 0.5:
                    await node.call(Account.deposit, key, 1)
                else:
                    await node.send(Account.deposit, key, 1)
                acked[key] += 1
                if i % 7 == 0:
                    await node.call(Account.balance, key)  # shared reads interleave

        async with trio.open_nursery() as nursery:
            for n in range(callers):
                nursery.start_soon(caller, n)
        await node.wait_idle()
        assert witness.overlaps == 0
        for key, count in acked.items():
            assert await node.call(Account.balance, key) == count
    async with actors.open_node(path, instances()) as node:
        for key, count in acked.items():
            assert node.get_state(Account, key) == {"balance": count}
    assert sum(acked.values()) == callers * per_caller


async def test_single_writer_under_concurrency(tmp_path: Path) -> None:
    await _hammer(tmp_path, seed=7, keys=5, callers=40, per_caller=25)


async def test_mailbox_order_of_sends(tmp_path: Path) -> None:
    async with actors.open_node(tmp_path, instances()) as node:
        ids = [await node.send(Account.record, "k", f"op-{i}") for i in range(50)]
        results = [await node.attach(inv) for inv in ids[-1:]]
        await node.wait_idle()
        assert results == [50]
        assert node.get_state(Account, "k")["log"] == [f"op-{i}" for i in range(50)]


@pytest.mark.slow
async def test_single_writer_soak(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    await _hammer(tmp_path, seed=seed, keys=20, callers=200, per_caller=100)
