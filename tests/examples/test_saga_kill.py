"""The checkout saga in a real node process, killed with SIGKILL while sagas run.

`saga_child.py` runs a node that sends ``Checkout.place`` for 40 orders (idempotency key: the
order id) and waits until every saga has finished; its fake clients append each raw call to an
effects file (fsynced) and print ``effect E O`` lines. The test kills it by pid after a seeded
random number of output lines (the seed is printed; ``SAGA_KILL_SEED=<n>`` replays the same
kill points), restarts it (it resends every order with the same idempotency key), three kills
in all, then lets a last child run to completion. Then it opens the data directory itself and
checks that every saga completed exactly once: one completed ``place`` invocation record per
order, the right final state, each completed order's fulfillment request delivered exactly
once (the `Fulfillment` log of its warehouse), and each step's effect recorded at least once
and at most once more per kill (the at-least-once window of ``ctx.run``: a step whose result
commit was lost runs again).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import attrs
import pytest
import trio

import actors
from examples.checkout_saga import TYPES, Checkout, CheckoutResult, Fulfillment, Stage, app
from tests.child_process import run_killable_child

from .saga_child import FileEffectLog, expected_stage, orders, world

CHILD = Path(__file__).with_name("saga_child.py")
COUNT = 40
KILLS = 3
LINE_TIMEOUT = 30.0
"""Seconds to wait for the next line of a child before declaring it hung."""


@attrs.define
class Round:
    """What one child process did."""

    lines: int = 0
    acks: int = 0
    effects: int = 0
    recovered: int | None = None
    done: bool = False
    killed: bool = False
    returncode: int | None = None


def run_child(data_dir: Path, effects: Path, kill_after: int | None, stderr_path: Path) -> Round:
    """Run the child; SIGKILL it (by pid) after its `kill_after`-th ``effect`` line (None: let
    it finish), so that sagas are in flight."""
    result = Round()

    def on_line(line: str) -> bool:
        result.lines += 1
        word, _, value = line.partition(" ")
        if word == "ack":
            result.acks += 1
        elif word == "effect":
            result.effects += 1
            return kill_after is not None and result.effects == kill_after
        elif word == "recovered":
            result.recovered = int(value)
        elif line == "done":
            result.done = True
        else:
            pytest.fail(f"unexpected line from the child: {line!r}")
        return False

    result.returncode, result.killed = run_killable_child(
        CHILD,
        [str(data_dir), str(effects), str(COUNT)],
        on_line=on_line,
        stderr_path=stderr_path,
        line_timeout=LINE_TIMEOUT,
    )
    return result


@attrs.frozen
class FinalState:
    recovered: int
    results: dict[str, CheckoutResult | None]
    requested: dict[str, list[str]]
    records: list[actors.InvocationRecord]


async def inspect(data_dir: Path, effects: Path) -> FinalState:
    log = FileEffectLog(effects, echo=False)  # in case recovery still had work to do
    try:
        async with actors.open_node(data_dir, app(world(log, COUNT)), types=TYPES) as node:
            recovered = node.statistics().invocations_in_memory
            with trio.fail_after(LINE_TIMEOUT):
                await node.wait_idle()
            results = {o: node.get_state(Checkout, o).get("result") for o in orders(COUNT)}
            requested = {
                w: list(node.get_state(Fulfillment, w).get("requested", []))
                for w in ("w0", "w1", "w2")
            }
            records = node.list_invocations(actor_type="Checkout")
            return FinalState(recovered, results, requested, records)
    finally:
        log.close()


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_sigkill_while_sagas_run_completes_each_saga_once(tmp_path: Path) -> None:
    seed = int(os.environ.get("SAGA_KILL_SEED", random.SystemRandom().randrange(2**32)))
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    effects = tmp_path / "effects.log"
    print(f"saga kill: seed={seed} (SAGA_KILL_SEED={seed} replays the kill points) orders={COUNT}")

    wanted = {(e, o) for o in orders(COUNT) for e in expected_stage(o)[1]}
    rounds: list[Round] = []
    while sum(r.killed for r in rounds) < KILLS:
        assert len(rounds) < 4 * KILLS, "the children keep finishing before the kill"
        seen = {tuple(line.split()) for line in read_lines(effects)}
        remaining = len(wanted - seen)
        if remaining == 0:
            break  # everything ran already (unlikely: kill points are in the first half)
        # Kill right after an effect, somewhere in the first half of what is left to do.
        kill_after = rng.randint(1, max(1, remaining // 2))
        result = run_child(data_dir, effects, kill_after, tmp_path / f"child-{len(rounds)}.err")
        rounds.append(result)
        print(
            f"round {len(rounds)}: effects_left={remaining} kill_after_effect={kill_after}"
            f" lines={result.lines} acks={result.acks} effects={result.effects}"
            f" recovered={result.recovered} killed={result.killed} rc={result.returncode}"
        )
    final = run_child(data_dir, effects, None, tmp_path / "child-final.err")
    rounds.append(final)
    assert final.done and final.returncode == 0
    assert final.acks == COUNT
    assert all(r.recovered is not None for r in rounds), "every child reports its recovery"

    state = trio.run(inspect, data_dir, effects)
    assert state.recovered == 0, "the last child finished everything"

    # Every saga finished once, with the outcome an uninterrupted run has.
    placed = Counter(r.idempotency_key for r in state.records if r.handler == "place")
    assert placed == Counter({o: 1 for o in orders(COUNT)}), placed
    unfinished = [r for r in state.records if r.status is not actors.InvocationStatus.COMPLETED]
    assert unfinished == []
    expected_requests: dict[str, list[str]] = {"w0": [], "w1": [], "w2": []}
    for order_id, order in orders(COUNT).items():
        stage, _ = expected_stage(order_id)
        result = state.results[order_id]
        assert result is not None, order_id
        assert result.stage is stage, (order_id, result)
        if stage is Stage.COMPLETED:
            expected_requests[order.warehouse].append(order_id)
    # Each completed order's fulfillment message was delivered exactly once (in any order).
    for warehouse, requested in state.requested.items():
        assert sorted(requested) == sorted(expected_requests[warehouse]), warehouse

    # Each step's effect ran at least once; again only after a kill (at most once per kill).
    counts = Counter(tuple(line.split()) for line in read_lines(effects))
    assert set(counts) == wanted, set(counts) ^ wanted
    kills = sum(r.killed for r in rounds)
    assert all(1 <= n <= 1 + kills for n in counts.values()), counts
    reruns = Counter(n for n in counts.values())
    print(
        f"saga kill: seed={seed} kills={kills} starts={len(rounds)}"
        f" recovered_per_start={[r.recovered for r in rounds]} effects={sum(counts.values())}"
        f" steps={len(counts)} runs_per_step={dict(sorted(reruns.items()))}"
        f" lost=0 duplicated_deliveries=0"
    )
