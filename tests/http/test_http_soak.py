"""A seeded soak of the HTTP server: many connections mixing valid, idempotent calls with
hostile traffic (noise, truncated and stalled requests, oversized and malformed ones, abrupt
closes). The node must stay up, and every call must take effect exactly once: clients retry
a call whose outcome they did not see with the same idempotency key until it is definite,
and the ledger's balance must equal the sum of all calls. Marked slow (CI runs it bounded);
`ACTORS_SOAK_SECONDS` sets its length, `ACTORS_SEED` replays a run."""

from __future__ import annotations

import os
import random
from functools import partial
from pathlib import Path

import pytest
import trio

from actors._http._server import ServerLimits
from actors._http._site import serve_node
from actors.testing import open_test_node
from bench._load import parse_head

from .http_app import Gates, instances

pytestmark = pytest.mark.slow

LIMITS = ServerLimits(max_body=16 * 1024, max_head=2048, head_timeout=0.3, idle_timeout=1.0)


async def _request(port: int, raw: bytes) -> tuple[int, bytes] | None:
    """Send `raw` on a new connection; the status and body, or None if no whole answer."""
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return None
    async with stream:
        try:
            await stream.send_all(raw)
            data = b""
            with trio.move_on_after(5):
                while b"\r\n\r\n" not in data:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return None
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                status, length = parse_head(head)  # the server always sends a length
                while len(body) < length:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return None
                    body += chunk
                return status, body[:length]
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
    return None


async def _abandon(port: int, raw: bytes) -> None:
    """Send `raw` and close at once, without reading the answer."""
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return
    async with stream:
        try:
            await stream.send_all(raw)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def _call(key: str, amount: int, idempotency_key: str) -> bytes:
    body = b"[%d]" % amount
    return (
        b"POST /call/Ledger/%s/add HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
        b"Idempotency-Key: %s\r\n\r\n%s"
    ) % (key.encode(), len(body), idempotency_key.encode(), body)


def _hostile(rng: random.Random) -> bytes:
    choice = rng.randrange(8)
    if choice == 0:
        return rng.randbytes(rng.randrange(1, 300))
    if choice == 1:
        return b"POST /call/Ledger/h/add HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n"
    if choice == 2:
        return b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n"
    if choice == 3:
        return b"POST /call/Ledger/h/add HTTP/1.1\r\nContent-Length: 5\r\n\r\n[1,"  # stalls
    if choice == 4:
        return b"POST /call/Ledger/h/add HTTP/1.1\r\nContent-Length: 4\r\n\r\n[[[["
    if choice == 5:
        return b"POST /call/Nope/h/add HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    if choice == 6:
        return b"GET /health HTTP/1.1\r\n\r\n" * rng.randrange(1, 20)  # pipelined
    return b"POST /call/Ledger/h/add HTTP/1.1\r\nContent-Length: 3\r\n\r\n"  # cut short


async def test_hostile_traffic_beside_exactly_once_calls(tmp_path: Path) -> None:
    seed = int(os.environ.get("ACTORS_SEED", random.randrange(2**32)))
    seconds = float(os.environ.get("ACTORS_SOAK_SECONDS", "20"))
    print(f"http soak: seed={seed} seconds={seconds} (rerun with ACTORS_SEED={seed})")
    expected = dict.fromkeys(("k0", "k1", "k2", "k3"), 0)
    stats = {"calls": 0, "retries": 0, "hostile": 0, "abandoned": 0}
    async with (
        open_test_node(tmp_path / "node", instances(Gates())) as node,
        trio.open_nursery() as server,
    ):
        port = await server.start(partial(serve_node, node, port=0, limits=LIMITS))

        async def client(number: int) -> None:
            rng = random.Random(seed * 100 + number)
            sequence = 0
            with trio.move_on_after(seconds):
                while True:
                    if rng.random() < 0.4:
                        stats["hostile"] += 1
                        await _request(port, _hostile(rng))
                        continue
                    key = rng.choice(sorted(expected))
                    amount = rng.randrange(1, 100)
                    sequence += 1
                    idempotency_key = f"c{number}-{sequence}"
                    request = _call(key, amount, idempotency_key)
                    with trio.CancelScope(shield=True):  # a started call is seen through
                        if rng.random() < 0.2:
                            # Send it and hang up without the answer: the outcome is unknown,
                            # so the retry below must not apply it twice.
                            await _abandon(port, request)
                            stats["abandoned"] += 1
                        for _ in range(50):
                            reply = await _request(port, request)
                            if reply is not None and reply[0] == 200:
                                break
                            assert reply is None or reply[0] >= 500, (seed, reply)
                            stats["retries"] += 1
                        else:
                            raise AssertionError(f"seed {seed}: the node stopped answering")
                    expected[key] += amount
                    stats["calls"] += 1

        async with trio.open_nursery() as clients:
            for number in range(12):
                clients.start_soon(client, number)
        assert await _request(port, b"GET /health HTTP/1.1\r\n\r\n") == (200, b'{"status":"ok"}')
        await node.wait_idle()
        for key, total in expected.items():
            assert node.get_state("Ledger", key).get("balance", 0) == total, (seed, key)
        assert node.statistics().invocations_in_memory == 0
        server.cancel_scope.cancel()
    assert stats["calls"] > 0 and stats["hostile"] > 0
    print(
        f"http soak: calls={stats['calls']} hostile={stats['hostile']}"
        f" abandoned={stats['abandoned']} retries={stats['retries']} lost=0 duplicated=0"
    )
