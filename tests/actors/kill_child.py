"""A node under load, run as a subprocess by `test_process_kill.py` and killed with SIGKILL.

Usage: ``python tests/actors/kill_child.py DATA_DIR START COUNT`` with the repository root as
the working directory and on PYTHONPATH.

Opens `actors.open_node(DATA_DIR, ...)` with the test app and, from 8 concurrent tasks, sends
``Account.record(key=f"k{i % 4}", op=f"op-{i}")`` with ``idempotency_key=f"op-{i}"`` for every
i in START..START+COUNT-1. Prints (flushed, one per line on stdout):

- ``recovered N`` once at start: invocations re-admitted by recovery;
- ``ack I`` after the send of op I returned (it is durably enqueued);
- ``done`` after every send returned. The node then closes without waiting for the handlers:
  whatever is still queued is recovered by the next open.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import trio

import actors
from tests.actors.app import Account, instances

SENDERS = 8


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def sender(node: actors.Node, todo: Iterator[int]) -> None:
    for i in todo:
        op = f"op-{i}"
        await node.send(Account.record, f"k{i % 4}", op, idempotency_key=op)
        say(f"ack {i}")


async def main(data_dir: Path, start: int, count: int) -> None:
    async with actors.open_node(data_dir, instances()) as node:
        # No checkpoint since start-up: what is in memory was re-admitted by recovery.
        say(f"recovered {node.statistics().invocations_in_memory}")
        todo = iter(range(start, start + count))  # shared: each i is taken by one sender
        async with trio.open_nursery() as nursery:
            for _ in range(SENDERS):
                nursery.start_soon(sender, node, todo)
        say("done")


if __name__ == "__main__":
    _, data_dir, start, count = sys.argv
    trio.run(main, Path(data_dir), int(start), int(count))
