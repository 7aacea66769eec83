"""The bare step loops: workload (e)'s durable writes on this machine, with no runtime around them.

(e) asks how many journaled steps per second 64 concurrent 10-step workflows reach. The bare
loops answer a narrower question in the same run: how many does a trio program reach here that
makes the same durable writes and nothing else, in each of two shapes?

- **writer thread** (`bare_step_loop`): the shape of DESIGN.md §4 and of `LmdbStore`. One
  long-lived writer thread drains a `queue.SimpleQueue`, merges every waiting batch into one
  LMDB write transaction, commits, and wakes the group with one `TrioToken.run_sync_soon`.
- **writer process** (`bare_step_loop_process`): the workflows are split into `groups` fixed
  groups. After each scheduler batch a flusher task sends every group's new writes, one message
  per group, down a pipe to a child process (``python -m bench._bare PATH``), which commits
  each message as one transaction and answers with its id; a reader task wakes the group. With
  two groups the event loop runs one group's steps while the other's commit is in flight; a
  thread cannot give that overlap: after each fsync it needs the GIL back from the busy event
  loop, and waits up to the interpreter's switch interval (5 ms) for it.

`handoff_floor` is the writer-thread shape with no writes at all: trio's own cost of parking
and waking a step.

In both loops, `keys` trio tasks run their share of `invocations` workflows back to back in
their own task (no mailbox, no invocation task, no caller waiting on a result), and a workflow's
writes are the runtime's: a step awaits a trivial async function, packs a journal entry with
msgpack (about the runtime's size: a 24-byte key under the actor's 8-byte placement hash, a
56-byte value against the runtime's 60) and commits one put; the first step also writes an inbox
entry and a 197-byte invocation record; a completion commit deletes the ten entries, the inbox
entry and the record. That is the write set of each of the runtime's 11 commits per workflow, in
the same three tables, with the environment opened as the store opens it (sync, metasync, no
writemap). A committer parks with `wait_task_rescheduled` until its commit has returned.

No journal matching, no validation, no checksums, no cancellation, no codec, no recovery: their
steps/s are ceilings for (e) in each shape, not something the runtime can be expected to reach.
"""

from __future__ import annotations

import contextlib
import os
import queue
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import lmdb
import msgpack  # type: ignore[import-untyped]
import trio

from storage import hash_prefix, stable_hash

from ._child import child_env
from ._floor import open_durable_env

_TABLES = (b"journal", b"inbox", b"invocations")
_JOURNAL, _INBOX, _INVOCATIONS = range(len(_TABLES))
_Write = tuple[int, bytes, bytes | None]
"""(table index, key, value); a value of None deletes."""
_Commit = Callable[[list[_Write], int], Awaitable[None]]
"""Commit these writes for a task of this group; returns once they are durable."""
_Item = tuple[list[_Write], trio.lowlevel.Task]
_T = TypeVar("_T")

_MAP_SIZE = 1 << 30
_RECORD = b"r" * 197
"""As big as the runtime's invocation record in (e)."""
_INBOX_VALUE = b"i" * 20
_ACK = struct.Struct("<I")
_READY = 0xFFFFFFFF
"""The writer process's first answer: its environment is open."""


def _placement(key: str) -> bytes:
    """The 8-byte placement prefix of a `TenSteps` key, as the runtime computes it."""
    return hash_prefix(stable_hash(b"TenSteps", key.encode()))


async def _step_value(i: int) -> int:
    return i


def _abort(_: object) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


def _open_env(path: Path) -> tuple[lmdb.Environment, tuple[lmdb._Database, ...]]:
    env = open_durable_env(path, _MAP_SIZE, max_dbs=len(_TABLES))
    return env, tuple(env.open_db(name) for name in _TABLES)


def _apply(txn: lmdb.Transaction, dbs: tuple[lmdb._Database, ...], writes: list[_Write]) -> None:
    put = txn.put
    delete = txn.delete
    for table, key, value in writes:
        if value is None:
            delete(key, db=dbs[table])
        else:
            put(key, value, db=dbs[table])


async def _drive(
    commit: _Commit, invocations: int, keys: int, steps: int, groups: int
) -> tuple[float, float]:
    """Run the workflows; returns (wall seconds, event-loop CPU seconds)."""
    shares = [invocations // keys + (1 if i < invocations % keys else 0) for i in range(keys)]
    pack = msgpack.Packer().pack
    names = [f"step-{i}" for i in range(steps)]
    indexes = [i.to_bytes(4, "big") for i in range(steps)]
    now = time.time_ns
    expected = sum(range(steps))
    wrong: list[int] = []

    async def workflow(prefix: bytes, n: int, group: int) -> int:
        invocation = prefix + n.to_bytes(12, "big")
        inbox = invocation + b"inbox-key"
        total = 0
        for i in range(steps):
            value = await _step_value(i)
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
            writes: list[_Write] = [(_JOURNAL, invocation + indexes[i], entry)]
            if i == 0:
                writes.append((_INBOX, inbox, _INBOX_VALUE))
                writes.append((_INVOCATIONS, invocation, _RECORD))
            await commit(writes, group)
            total += value
        finish: list[_Write] = [(_JOURNAL, invocation + index, None) for index in indexes]
        finish.append((_INBOX, inbox, None))
        finish.append((_INVOCATIONS, invocation, None))
        await commit(finish, group)
        return total

    async def caller(index: int, count: int) -> None:
        prefix = _placement(f"wf{index}")
        for n in range(count):
            total = await workflow(prefix, n, index % groups)
            if total != expected:
                wrong.append(total)

    cpu0 = time.thread_time()
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index, count in enumerate(shares):
            nursery.start_soon(caller, index, count)
    elapsed = time.perf_counter() - started
    cpu = time.thread_time() - cpu0
    if wrong:
        raise RuntimeError(f"bare step loop: {len(wrong)} workflows returned a wrong sum")
    return elapsed, cpu


def _metrics(
    prefix: str, invocations: int, steps: int, elapsed: float, cpu: float, commits: int
) -> dict[str, float]:
    taken = invocations * steps
    return {
        f"{prefix}steps_per_s": taken / elapsed,
        f"{prefix}loop_cpu_per_step_us": cpu / taken * 1e6,
        f"{prefix}commits_per_s": commits / elapsed,
    }


# ---------------------------------------------------------------------------- writer thread


def _take_group(items: queue.SimpleQueue[_T | None]) -> tuple[list[_T], bool]:
    """Wait for one item, then take every item already queued: one group. Returns the group
    and whether the stop signal (None) was among them."""
    group = [items.get()]
    while True:
        try:
            group.append(items.get_nowait())
        except queue.Empty:
            break
    taken = [item for item in group if item is not None]
    return taken, len(taken) < len(group)


def _wake(tasks: list[trio.lowlevel.Task]) -> None:
    for task in tasks:
        trio.lowlevel.reschedule(task)


def _thread_writer(
    env: lmdb.Environment,
    dbs: tuple[lmdb._Database, ...],
    items: queue.SimpleQueue[_Item | None],
    token: trio.lowlevel.TrioToken,
    commits: list[int],
    failures: list[Exception],
) -> None:
    """Group commit: everything queued while the last commit ran is one transaction."""
    done = False
    while not done:
        group, done = _take_group(items)
        try:
            with env.begin(write=True) as txn:
                for writes, _ in group:
                    _apply(txn, dbs, writes)
        except Exception as exc:  # the committers raise it instead of waiting for ever
            failures.append(exc)
        else:
            commits[0] += 1
        if group:
            token.run_sync_soon(_wake, [task for _, task in group])


async def handoff_floor(tasks: int, rounds: int) -> dict[str, float]:
    """The event loop's share of a step that does nothing else: the writer-thread loop's park
    and wake with no writes. `tasks` trio tasks each park `rounds` times, woken in groups from
    a thread through `TrioToken.run_sync_soon`, with no work, no journal and no I/O.

    Returns the event-loop CPU per park and wake (µs) and the steps/s a step costing only that
    would reach: a ceiling for (e) on this machine that no runtime on trio can pass.
    """
    token = trio.lowlevel.current_trio_token()
    parked: queue.SimpleQueue[trio.lowlevel.Task | None] = queue.SimpleQueue()

    def waker() -> None:
        done = False
        while not done:
            group, done = _take_group(parked)
            if group:
                token.run_sync_soon(_wake, group)

    async def worker() -> None:
        me = trio.lowlevel.current_task()
        for _ in range(rounds):
            parked.put(me)
            await trio.lowlevel.wait_task_rescheduled(_abort)

    thread = threading.Thread(target=waker, name="bench-waker", daemon=True)
    thread.start()
    cpu0 = time.thread_time()
    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(worker)
    cpu = time.thread_time() - cpu0
    parked.put(None)
    thread.join()
    per_step_us = cpu / (tasks * rounds) * 1e6
    return {
        "loop_floor_us": per_step_us,
        "loop_floor_steps_per_s": 1e6 / per_step_us if per_step_us else 0.0,
    }


async def bare_step_loop(path: Path, invocations: int, keys: int, steps: int) -> dict[str, float]:
    """(e)'s writes with no runtime, committed by a writer thread: `keys` tasks, `invocations`
    workflows of `steps` steps.

    Returns its steps/s, event-loop CPU per step (µs) and commits/s.
    """
    env, dbs = _open_env(path)
    try:
        items: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        commits = [0]
        failures: list[Exception] = []
        writer = threading.Thread(
            target=_thread_writer,
            args=(env, dbs, items, trio.lowlevel.current_trio_token(), commits, failures),
            name="bench-bare-writer",
            daemon=True,
        )
        writer.start()

        async def commit(writes: list[_Write], group: int) -> None:
            items.put((writes, trio.lowlevel.current_task()))
            await trio.lowlevel.wait_task_rescheduled(_abort)
            if failures:
                raise RuntimeError("bare step loop: a commit failed") from failures[0]

        try:
            elapsed, cpu = await _drive(commit, invocations, keys, steps, groups=1)
        finally:
            items.put(None)
            await trio.to_thread.run_sync(writer.join)
    finally:
        env.close()
    return _metrics("bare_", invocations, steps, elapsed, cpu, commits[0])


# --------------------------------------------------------------------------- writer process


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _start_writer(path: Path) -> subprocess.Popen[bytes]:
    # Raw pipes, not trio's streams: the trio side reads and writes their descriptors itself.
    return subprocess.Popen(
        [sys.executable, "-m", "bench._bare", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
    )


async def bare_step_loop_process(
    path: Path, invocations: int, keys: int, steps: int, groups: int = 2
) -> dict[str, float]:
    """(e)'s writes with no runtime, committed by a writer process, the workflows split into
    `groups` groups committed separately (so that the event loop and the commits overlap).

    Returns its steps/s, event-loop CPU per step (µs) and commits/s.
    """
    writer = await trio.to_thread.run_sync(_start_writer, path)
    try:
        assert writer.stdin is not None and writer.stdout is not None
        to_writer = writer.stdin.fileno()
        from_writer = writer.stdout.fileno()
        os.set_blocking(from_writer, False)
        metrics = await _process_run(to_writer, from_writer, invocations, keys, steps, groups)
        writer.stdin.close()
        status = await trio.to_thread.run_sync(writer.wait, abandon_on_cancel=True)
        if status != 0:
            raise RuntimeError(f"bare step loop: the writer process exited with status {status}")
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        for stream in (writer.stdin, writer.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # a pipe the dead writer left unread
                    stream.close()
    return metrics


async def _process_run(
    to_writer: int, from_writer: int, invocations: int, keys: int, steps: int, groups: int
) -> dict[str, float]:
    pack = msgpack.Packer().pack
    writes: list[list[_Write]] = [[] for _ in range(groups)]
    waiting: list[list[trio.lowlevel.Task]] = [[] for _ in range(groups)]
    in_flight: dict[int, list[trio.lowlevel.Task]] = {}
    flusher: list[trio.lowlevel.Task | None] = [None]
    flush_due = [False]
    message_ids = iter(range(_READY))
    commits = [0]

    def cancel(_: object) -> trio.lowlevel.Abort:
        return trio.lowlevel.Abort.SUCCEEDED

    async def commit(batch: list[_Write], group: int) -> None:
        writes[group].extend(batch)
        waiting[group].append(trio.lowlevel.current_task())
        if not flush_due[0]:
            flush_due[0] = True
            task = flusher[0]
            assert task is not None
            trio.lowlevel.reschedule(task)
        # Cancellable: if the writer process fails, the run is abandoned as a whole.
        await trio.lowlevel.wait_task_rescheduled(cancel)

    async def flush() -> None:
        # Woken by the first commit of a scheduler batch, it runs in the next one: by then
        # every task of that batch has added its writes.
        flusher[0] = trio.lowlevel.current_task()
        while True:
            await trio.lowlevel.wait_task_rescheduled(cancel)
            flush_due[0] = False
            for group in range(groups):
                if waiting[group]:
                    message = next(message_ids)
                    in_flight[message] = waiting[group]
                    waiting[group] = []
                    _write_all(to_writer, pack((message, writes[group])))
                    writes[group] = []

    async def read_acks(ready: trio.Event) -> None:
        pending = b""
        while True:
            await trio.lowlevel.wait_readable(from_writer)
            try:
                data = os.read(from_writer, 65536)
            except BlockingIOError:
                continue
            if not data:  # the writer process died: abandon the run (raised below)
                writer_gone.set()
                helpers.cancel_scope.cancel()
                return
            pending += data
            whole = len(pending) - len(pending) % _ACK.size
            for (message,) in _ACK.iter_unpack(pending[:whole]):
                if message == _READY:
                    ready.set()
                    continue
                commits[0] += 1
                _wake(in_flight.pop(message))
            pending = pending[whole:]

    writer_gone = trio.Event()
    async with trio.open_nursery() as helpers:
        ready = trio.Event()
        helpers.start_soon(read_acks, ready)
        helpers.start_soon(flush)
        await ready.wait()
        elapsed, cpu = await _drive(commit, invocations, keys, steps, groups)
        helpers.cancel_scope.cancel()
    if writer_gone.is_set():
        raise RuntimeError("bare step loop: the writer process closed its output")
    return _metrics("bare_process_", invocations, steps, elapsed, cpu, commits[0])


def _writer_process(path: Path) -> None:
    """The child of `bare_step_loop_process`: one transaction per message, then its id."""
    env, dbs = _open_env(path)
    try:
        unpacker = msgpack.Unpacker()
        _write_all(1, _ACK.pack(_READY))
        while data := os.read(0, 1 << 20):
            unpacker.feed(data)
            for message, batch in unpacker:
                with env.begin(write=True) as txn:
                    _apply(txn, dbs, batch)
                _write_all(1, _ACK.pack(message))
    finally:
        env.close()


if __name__ == "__main__":
    _writer_process(Path(sys.argv[1]))
