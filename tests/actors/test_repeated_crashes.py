"""Exactly-once delivery along chains of forwarded sends when the node crashes again and again
(real LMDB, each restart through the public recovery path), with the client retrying its sends
under the same idempotency keys after every crash, as a real client would."""

from __future__ import annotations

import os
import random
from pathlib import Path

import actors
from actors.testing import run_until_crash

from .durable_app import Saga, Sink, instances

CHAINS = 6
HOPS = 3
CRASHES = 20


async def _workload(node: actors.Node) -> None:
    for i in range(CHAINS):
        await node.send(Saga.forward, f"c{i}", f"m{i}", HOPS, idempotency_key=f"m{i}")
    await node.wait_idle()


async def test_chains_of_sends_survive_repeated_crashes(tmp_path: Path) -> None:
    seed = int(os.environ.get("ACTORS_SEED", random.randrange(2**32)))
    print(f"repeated crashes: seed={seed} (rerun with ACTORS_SEED={seed})")
    rng = random.Random(seed)
    path = tmp_path / "node"
    sink = Sink()
    crashed = 0
    for _ in range(CRASHES):
        mode = rng.choice(("crash_at_commit", "crash_after_commit"))
        report = await run_until_crash(
            path, instances(sink), _workload, **{mode: rng.randint(1, 10)}
        )
        crashed += report.crashed
    final = await run_until_crash(path, instances(sink), _workload)
    assert not final.crashed
    async with actors.open_node(path, instances(sink)) as node:
        await node.wait_idle()
        for i in range(CHAINS):
            key = f"c{i}"
            for _ in range(HOPS + 1):
                assert node.get_state(Saga, key) == {"log": [f"m{i}"]}, (seed, key)
                key += "+"
            assert node.get_state(Saga, key) == {}, (seed, key)
        assert node.statistics().invocations_in_memory == 0
    # A journaled effect repeats only when a crash lost its step's commit: each effect ran
    # at least once, and at most once more per crash (a crash can cut several invocations'
    # steps at once: they share group commits).
    assert len(sink.effects) == CHAINS * (HOPS + 1), (seed, sink.effects)
    assert all(1 <= n <= 1 + crashed for n in sink.effects.values()), (seed, sink.effects)
    repeats = sum(n - 1 for n in sink.effects.values())
    print(
        f"repeated crashes: crashes={crashed} chains={CHAINS} hops={HOPS}"
        f" lost=0 duplicated=0 effect_repeats={repeats}"
    )
