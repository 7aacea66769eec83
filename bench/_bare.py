"""The bare step loop: workload (e)'s writes on this machine, with no runtime around them.

(e) asks how many journaled steps per second 64 concurrent 10-step workflows reach. This module
answers a narrower question, in the same run: how many could *any* trio program reach here
that makes the same durable writes in the same way, doing nothing else? It is the shape of the
throwaway prototype in DESIGN.md §4, written out once so that every benchmark run measures it
beside the runtime:

- `keys` trio tasks each run their share of `invocations` workflows back to back, in their own
  task (no mailbox, no invocation task, no caller waiting on a result);
- a step awaits a trivial async function, packs a journal entry with msgpack and commits one
  put, exactly as big as the runtime's (24-byte key under the actor's placement hash, 60-byte
  value);
- the first step also writes an inbox entry and an invocation record, and a completion commit
  deletes the ten entries, the inbox entry and the record: the write set of each of the
  runtime's 11 commits per workflow, in the same three tables;
- one long-lived writer thread drains a `queue.SimpleQueue`, merges every waiting batch into
  one LMDB write transaction (environment opened as the store opens it: sync, metasync, no
  writemap), commits, and wakes the group with one `TrioToken.run_sync_soon`;
- a committer parks with `wait_task_rescheduled` and is woken by `reschedule`.

No journal matching, no validation, no checksums, no cancellation, no codec, no recovery: its
steps/s is a ceiling for (e) here, not something the runtime can be expected to reach.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from pathlib import Path

import lmdb
import msgpack  # type: ignore[import-untyped]
import trio

_Write = tuple[bytes, bytes, bytes | None]
"""(table, key, value); a value of None deletes."""
_Item = tuple[list[_Write], trio.lowlevel.Task] | None

_TABLES = (b"journal", b"inbox", b"invocations")
_MAP_SIZE = 1 << 30
_RECORD = b"r" * 197
"""As big as the runtime's invocation record in (e)."""


def _placement(key: str) -> bytes:
    return hashlib.blake2b(b"TenSteps\0" + key.encode(), digest_size=8).digest()


async def _step_value(i: int) -> int:
    return i


def _abort(_: object) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


def _writer(
    env: lmdb.Environment,
    dbs: dict[bytes, lmdb._Database],
    items: queue.SimpleQueue[_Item],
    token: trio.lowlevel.TrioToken,
    commits: list[int],
) -> None:
    """Group commit: everything queued while the last commit ran is one transaction."""

    def wake(tasks: list[trio.lowlevel.Task]) -> None:
        for task in tasks:
            trio.lowlevel.reschedule(task)

    done = False
    while not done:
        group = [items.get()]
        while True:
            try:
                group.append(items.get_nowait())
            except queue.Empty:
                break
        tasks = []
        with env.begin(write=True) as txn:
            for item in group:
                if item is None:
                    done = True
                    continue
                writes, task = item
                for table, key, value in writes:
                    if value is None:
                        txn.delete(key, db=dbs[table])
                    else:
                        txn.put(key, value, db=dbs[table])
                tasks.append(task)
        commits[0] += 1
        if tasks:
            token.run_sync_soon(wake, tasks)


async def bare_step_loop(path: Path, invocations: int, keys: int, steps: int) -> dict[str, float]:
    """Run (e)'s writes with no runtime: `keys` tasks, `invocations` workflows of `steps` steps.

    Returns the bare loop's steps/s, its event-loop CPU per step (µs) and its commits/s.
    """
    env = lmdb.open(
        str(path),
        map_size=_MAP_SIZE,
        subdir=True,
        sync=True,
        metasync=True,
        writemap=False,
        map_async=False,
        max_dbs=len(_TABLES),
    )
    try:
        dbs = {name: env.open_db(name) for name in _TABLES}
        items: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        commits = [0]
        writer = threading.Thread(
            target=_writer,
            args=(env, dbs, items, trio.lowlevel.current_trio_token(), commits),
            name="bench-bare-writer",
            daemon=True,
        )
        writer.start()
        try:
            metrics = await _run(items, invocations, keys, steps, commits)
        finally:
            items.put(None)
            await trio.to_thread.run_sync(writer.join)
    finally:
        env.close()
    return metrics


async def _run(
    items: queue.SimpleQueue[_Item], invocations: int, keys: int, steps: int, commits: list[int]
) -> dict[str, float]:
    shares = [invocations // keys + (1 if i < invocations % keys else 0) for i in range(keys)]
    pack = msgpack.packb
    names = [f"step-{i}" for i in range(steps)]
    now = time.time_ns
    wrong: list[int] = []

    async def commit(writes: list[_Write]) -> None:
        items.put((writes, trio.lowlevel.current_task()))
        await trio.lowlevel.wait_task_rescheduled(_abort)

    async def workflow(prefix: bytes, n: int) -> int:
        invocation = prefix + n.to_bytes(12, "big")
        inbox = invocation + b"inbox"
        total = 0
        entry_keys = []
        for i in range(steps):
            value = await _step_value(i)
            key = invocation + i.to_bytes(4, "big")
            entry = pack(
                {
                    "v": 1,
                    "kind": "run",
                    "name": names[i],
                    "value": value,
                    "failure": None,
                    "at": now(),
                    "n": 1,
                }
            )
            writes: list[_Write] = [(b"journal", key, entry)]
            if i == 0:
                writes.append((b"inbox", inbox, b"i" * 20))
                writes.append((b"invocations", invocation, _RECORD))
            await commit(writes)
            entry_keys.append(key)
            total += value
        finish: list[_Write] = [(b"journal", key, None) for key in entry_keys]
        finish.append((b"inbox", inbox, None))
        finish.append((b"invocations", invocation, None))
        await commit(finish)
        return total

    async def caller(index: int, count: int) -> None:
        prefix = _placement(f"wf{index}")
        for n in range(count):
            total = await workflow(prefix, n)
            if total != sum(range(steps)):
                wrong.append(total)

    commits0 = commits[0]
    cpu0 = time.thread_time()
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index, count in enumerate(shares):
            nursery.start_soon(caller, index, count)
    elapsed = time.perf_counter() - started
    cpu = time.thread_time() - cpu0
    if wrong:
        raise RuntimeError(f"bare step loop: {len(wrong)} workflows returned a wrong sum")
    taken = invocations * steps
    return {
        "bare_steps_per_s": taken / elapsed,
        "bare_loop_cpu_per_step_us": cpu / taken * 1e6,
        "bare_commits_per_s": (commits[0] - commits0) / elapsed,
    }
