"""``python -m bench._http_node DIR``: a node hosting the counter example, served over HTTP on
127.0.0.1 (a free port), for the HTTP workloads (h) and (i).

It runs in a process of its own so the load client and the node do not share an event loop or
the GIL. It prints ``{"port": N}`` on one line of stdout once it is listening, and
stops cleanly on SIGTERM or SIGINT (the parent kills it if it does not).
"""

from __future__ import annotations

import functools
import json
import signal
import sys
from pathlib import Path

import trio

import actors
from actors._http._site import serve_node
from examples.counter import Counter


async def serve(path: Path) -> None:
    """Open the node at `path` and serve it until SIGTERM or SIGINT."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with actors.open_node(path, [Counter()]) as node, trio.open_nursery() as nursery:
            port = await nursery.start(functools.partial(serve_node, node, port=0))
            print(json.dumps({"port": port}), flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str]) -> int:
    """Serve the data directory named by the one argument."""
    if len(argv) != 1:
        print("usage: python -m bench._http_node DATA_DIR", file=sys.stderr)
        return 2
    trio.run(serve, Path(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
