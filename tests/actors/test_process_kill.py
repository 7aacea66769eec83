"""Tier B (RELIABILITY §2.3): a node in a real process, killed with SIGKILL under load.

`kill_child.py` runs a node that sends ``Account.record(f"k{i % 4}", f"op-{i}")`` with
idempotency key ``op-{i}`` from 8 concurrent tasks and prints ``ack i`` once each send
returned. The test lets it acknowledge a random number of sends (seeded; the seed is printed,
and ``KILL_SEED=<n>`` replays the same kill points), kills it with SIGKILL by pid, and starts it
again from the lowest unacknowledged op (acks are not contiguous with 8 senders; re-sending
acknowledged ops is harmless thanks to their idempotency keys). After the kill rounds a last
child sends everything that is left and exits cleanly, and the test process opens the node,
drains it and checks G1/G4: every acknowledged send applied exactly once, nothing that was never
sent, one completed invocation record per op. Every start after a kill also exercises the
OS-level cleanup of the data-directory lock and LMDB reader slots.
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
from tests.child_process import run_killable_child

from .app import Account, instances

CHILD = Path(__file__).with_name("kill_child.py")
TOTAL = 1000
"""Ops in the whole run: enough that no kill round can finish them all."""
KILLS = 5
KEYS = tuple(f"k{n}" for n in range(4))
LINE_TIMEOUT = 30.0
"""Seconds to wait for the next line of a child before declaring it hung."""


@attrs.define
class Round:
    """What one child process did."""

    start: int
    acks: list[int] = attrs.field(factory=list)
    recovered: int | None = None
    done: bool = False
    killed: bool = False
    returncode: int | None = None


def run_child(data_dir: Path, start: int, stop_after: int | None, stderr_path: Path) -> Round:
    """Run the child for ops start..TOTAL-1; SIGKILL it after `stop_after` acks (None: let it
    finish)."""
    result = Round(start=start)

    def on_line(line: str) -> bool:
        word, _, value = line.partition(" ")
        if word == "ack":
            result.acks.append(int(value))
            return stop_after is not None and len(result.acks) == stop_after
        if word == "recovered":
            result.recovered = int(value)
        elif line == "done":
            result.done = True
        else:
            pytest.fail(f"unexpected line from the child: {line!r}")
        return False

    result.returncode, result.killed = run_killable_child(
        CHILD,
        [str(data_dir), str(start), str(TOTAL - start)],
        on_line=on_line,
        stderr_path=stderr_path,
        line_timeout=LINE_TIMEOUT,
    )
    return result


@attrs.frozen
class FinalState:
    recovered: int
    logs: dict[str, list[str]]
    records: list[actors.InvocationRecord]


async def inspect(data_dir: Path) -> FinalState:
    async with actors.open_node(data_dir, instances()) as node:
        recovered = node.statistics().invocations_in_memory
        with trio.fail_after(LINE_TIMEOUT):
            await node.wait_idle()
        logs = {key: list(node.get_state(Account, key).get("log", [])) for key in KEYS}
        return FinalState(recovered=recovered, logs=logs, records=node.list_invocations())


def test_sigkill_under_load_loses_and_duplicates_no_acknowledged_send(tmp_path: Path) -> None:
    seed = int(os.environ.get("KILL_SEED", random.SystemRandom().randrange(2**32)))
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    print(f"process kill: seed={seed} (KILL_SEED={seed} replays the kill points) ops={TOTAL}")

    acked: set[int] = set()
    rounds: list[Round] = []
    while sum(r.killed for r in rounds) < KILLS:
        assert len(rounds) < 3 * KILLS, "the children keep finishing before the kill"
        start = min(set(range(TOTAL)) - acked)
        target = rng.randint(20, 80)
        result = run_child(data_dir, start, target, tmp_path / f"child-{len(rounds)}.err")
        rounds.append(result)
        acked.update(result.acks)
        print(
            f"round {len(rounds)}: start={start} kill_after={target} acks={len(result.acks)}"
            f" killed={result.killed} rc={result.returncode} recovered={result.recovered}"
        )
    start = min(set(range(TOTAL)) - acked)
    final = run_child(data_dir, start, None, tmp_path / "child-final.err")
    rounds.append(final)
    acked.update(final.acks)
    assert final.done and final.returncode == 0
    assert acked == set(range(TOTAL)), "the clean run acknowledges every op"
    assert all(r.recovered is not None for r in rounds), "every child reports its recovery"

    state = trio.run(inspect, data_dir)
    expected = {f"op-{i}": f"k{i % 4}" for i in range(TOTAL)}
    seen = Counter(op for log in state.logs.values() for op in log)
    records = Counter(r.idempotency_key for r in state.records)
    lost = sorted(op for op in expected if seen[op] == 0)
    duplicated = sorted(op for op, n in seen.items() if n > 1)
    duplicated += sorted(str(op) for op, n in records.items() if n > 1)
    phantom = sorted(
        op for key, log in state.logs.items() for op in set(log) if expected.get(op) != key
    )
    phantom += sorted(str(op) for op in records if op not in expected)
    unfinished = [r for r in state.records if r.status is not actors.InvocationStatus.COMPLETED]
    missing_records = sorted(op for op in expected if records[op] == 0)
    recovered = [r.recovered for r in rounds]
    print(
        f"process kill: seed={seed} kills={sum(r.killed for r in rounds)} starts={len(rounds)}"
        f" acked={len(acked)} recovered_per_start={recovered} final_recovered={state.recovered}"
        f" recovered_total={sum(filter(None, recovered)) + state.recovered}"
        f" lost={len(lost)} duplicated={len(duplicated)} phantom={len(phantom)}"
        f" unfinished={len(unfinished)} missing_records={len(missing_records)}"
    )
    assert lost == []
    assert duplicated == []
    assert phantom == []
    assert unfinished == []
    assert missing_records == []
