"""Malformed and hostile HTTP, on raw sockets: each gets a clear 4xx (or a closed connection),
the node stays up, and everything acknowledged before is intact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

import actors
from actors._http._server import ServerLimits
from actors._http._site import serve_node
from actors.testing import open_test_node

from .http_app import Gates, instances


@attrs.define
class Target:
    node: actors.Node
    port: int

    async def exchange(self, raw: bytes, *, read_all: bool = True) -> bytes:
        """Send `raw` on a fresh connection and read until the server closes it (or 5 s)."""
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        async with stream:
            await stream.send_all(raw)
            chunks: list[bytes] = []
            with trio.move_on_after(5):
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        break
                    chunks.append(data)
                    if not read_all and b"\r\n\r\n" in b"".join(chunks):
                        break
            return b"".join(chunks)


LIMITS = ServerLimits(max_body=64 * 1024, max_head=4096, head_timeout=0.5, idle_timeout=0.5)


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[Target]:
    async with (
        open_test_node(tmp_path / "node", instances(Gates())) as node,
        trio.open_nursery() as nursery,
    ):
        port = await nursery.start(partial(serve_node, node, port=0, limits=LIMITS))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.post("/call/Ledger/canary/add", json=[41])).json() == 41
        yield Target(node=node, port=port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            # still up, and nothing earlier lost
            assert (await client.post("/call/Ledger/canary/add", json=[1])).json() == 42
        nursery.cancel_scope.cancel()


def _status(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply[9:12])


async def test_garbage_request_line_is_400(target: Target) -> None:
    reply = await target.exchange(b"HELLO THERE\r\n\r\n")
    assert _status(reply) == 400
    assert b'"bad_request"' in reply


async def test_binary_noise_is_400(target: Target) -> None:
    reply = await target.exchange(bytes(range(256)) * 4)
    assert _status(reply) == 400


async def test_oversized_head_is_431(target: Target) -> None:
    raw = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * 8192 + b"\r\n\r\n"
    reply = await target.exchange(raw)
    assert _status(reply) == 431


async def test_declared_huge_body_is_refused_before_it_is_sent(target: Target) -> None:
    head = (
        b"POST /call/Ledger/k/add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000000000\r\n\r\n"
    )
    reply = await target.exchange(head, read_all=False)  # no body sent at all
    assert _status(reply) == 413
    assert b"payload_too_large" in reply


async def test_chunked_body_over_the_limit_is_413(target: Target) -> None:
    chunk = b"x" * 32768
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    raw = (
        b"POST /call/Ledger/k/add HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    )
    reply = await target.exchange(raw)
    assert _status(reply) == 413
    assert target.node.get_state("Ledger", "k") == {}


async def test_slow_request_times_out_with_408(target: Target) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", target.port)
    async with stream:
        await stream.send_all(
            b"POST /call/Ledger/k/add HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n[1"
        )
        with trio.fail_after(5):
            reply = await stream.receive_some(65536)
    assert _status(reply) == 408
    assert target.node.get_state("Ledger", "k") == {}


async def test_idle_keep_alive_connection_is_closed(target: Target) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", target.port)
    async with stream:
        with trio.fail_after(5):
            assert await stream.receive_some(100) == b""  # closed by the server, no reply


async def test_pipelined_requests_are_answered_in_order(target: Target) -> None:
    one = b"POST /call/Ledger/p/add HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n[%d]"
    raw = b"".join(one % n for n in (1, 2, 3))
    stream = await trio.open_tcp_stream("127.0.0.1", target.port)
    async with stream:
        await stream.send_all(raw)
        received = b""
        with trio.fail_after(5):
            while received.count(b"HTTP/1.1 200") < 3 or not received.endswith(b"6"):
                received += await stream.receive_some(65536)
    bodies = [part.rsplit(b"\r\n\r\n", 1)[-1] for part in received.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"1", b"3", b"6"]


async def test_dot_segments_and_encoded_slashes_never_escape_the_routes(target: Target) -> None:
    for path in (b"/../../etc/passwd", b"/call/../state/Ledger/canary", b"/%2e%2e/health"):
        reply = await target.exchange(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(reply) == 404, path


async def test_a_client_that_vanishes_mid_request_leaves_no_trace(target: Target) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", target.port)
    await stream.send_all(
        b"POST /call/Ledger/gone/add HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n["
    )
    await stream.aclose()
    reply = await target.exchange(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", read_all=False)
    assert _status(reply) == 200
    assert target.node.get_state("Ledger", "gone") == {}


async def test_chunked_and_expect_continue_requests_are_served(target: Target) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", target.port)
    async with stream:
        await stream.send_all(
            b"POST /call/Ledger/ch/add HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        with trio.fail_after(5):
            interim = await stream.receive_some(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        await stream.send_all(b"[5]")
        await stream.send_all(
            b"POST /call/Ledger/ch/add HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"1\r\n[\r\n2\r\n2]\r\n0\r\n\r\n"
            b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        received = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                received += chunk
    replies = received.split(b"HTTP/1.1 ")[1:]
    assert [r.rsplit(b"\r\n\r\n", 1)[-1] for r in replies] == [b"5", b"7", b""]
    assert replies[2].startswith(b"200 OK") and b"content-length: 15" in replies[2]


async def test_a_content_length_of_thousands_of_digits_is_413_not_a_crash(
    tmp_path: Path,
) -> None:
    async with _served(tmp_path / "node", max_head=16384) as target:
        raw = b"POST /call/Ledger/k/add HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"1" * 5000
        reply = await target.exchange(raw + b"\r\n\r\n", read_all=False)
        assert _status(reply) == 413
        health = await target.exchange(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", read_all=False)
        assert _status(health) == 200


async def test_json_the_parser_refuses_is_a_400_not_a_500(target: Target) -> None:
    for body in (b"[" + b"9" * 5000 + b"]",):
        raw = b"POST /call/Ledger/k/add HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(
            body
        )
        reply = await target.exchange(raw + body)
        assert _status(reply) == 400, reply[:300]
    reply = await target.exchange(b"GET /invocations?limit=%C2%B2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status(reply) == 400


async def test_http10_keep_alive_is_announced(target: Target) -> None:
    reply = await target.exchange(
        b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", read_all=False
    )
    assert b"connection: keep-alive" in reply.lower()


async def test_chunk_lines_with_bare_line_feeds_are_refused(target: Target) -> None:
    for body in (b"1;x\nz\r\n[\r\n0\r\n\r\n", b"0\r\nnot a trailer\r\n\r\n"):
        raw = b"POST /call/Ledger/k/add HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        assert _status(await target.exchange(raw + body)) == 400, body


@asynccontextmanager
async def _served(path: Path, **kwargs: Any) -> AsyncIterator[Target]:
    token = kwargs.pop("token", None)
    async with (
        open_test_node(path, instances(Gates())) as node,
        trio.open_nursery() as nursery,
    ):
        limits = attrs.evolve(LIMITS, **kwargs)
        port = await nursery.start(partial(serve_node, node, port=0, limits=limits, token=token))
        yield Target(node=node, port=port)
        nursery.cancel_scope.cancel()


async def test_a_client_that_never_reads_loses_its_connection(tmp_path: Path) -> None:
    async with _served(tmp_path / "node", max_connections=1) as target:
        hog = trio.socket.socket()
        hog.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
        await hog.connect(("127.0.0.1", target.port))
        request = b"GET /ui/app.js HTTP/1.1\r\nHost: x\r\n\r\n"
        with trio.move_on_after(2):
            for _ in range(2000):  # pipelined, never read: the server's writes block
                await hog.send(request)
        with trio.fail_after(5):  # freed after the write timeout (0.5 s), not never
            while True:
                reply = await target.exchange(
                    b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", read_all=False
                )
                if reply.startswith(b"HTTP/1.1 200"):
                    break
                assert b"too_many_connections" in reply  # refused at once, not queued
                await trio.sleep(0.1)
        hog.close()


async def test_connections_over_the_limit_are_refused_at_once(tmp_path: Path) -> None:
    async with _served(tmp_path / "node", max_connections=2) as target:
        idle = [await trio.open_tcp_stream("127.0.0.1", target.port) for _ in range(2)]
        await trio.sleep(0.05)
        with trio.fail_after(2):
            reply = await target.exchange(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(reply) == 503 and b"too_many_connections" in reply
        for stream in idle:
            await stream.aclose()


async def test_no_body_is_read_or_invited_without_the_token(tmp_path: Path) -> None:
    async with _served(tmp_path / "node", token="t") as target:
        head = (
            b"POST /call/Ledger/k/add HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        reply = await target.exchange(head, read_all=False)
        assert _status(reply) == 401  # not "100 Continue": the body is never invited
        assert target.node.get_state("Ledger", "k") == {}


async def test_cross_origin_writes_are_refused(tmp_path: Path) -> None:
    async with _served(tmp_path / "node", token="t") as target:
        base = f"http://127.0.0.1:{target.port}"
        async with httpx.AsyncClient(base_url=base, cookies={"actors_token": "t"}) as browser:
            forged = await browser.post(
                "/call/Ledger/victim/add",
                content=b"[100]",
                headers={"origin": "http://127.0.0.1:9999", "content-type": "text/plain"},
            )
            assert (forged.status_code, forged.json()["error"]) == (403, "cross_origin")
            same = await browser.post("/call/Ledger/victim/add", json=[1], headers={"origin": base})
            assert same.json() == 1
            read = await browser.get("/state/Ledger/victim", headers={"origin": "http://evil"})
            assert read.status_code == 200  # reads are not writes
        async with httpx.AsyncClient(base_url=base) as tool:
            bearer = await tool.post(
                "/call/Ledger/victim/add",
                json=[1],
                headers={"origin": "http://elsewhere", "authorization": "Bearer t"},
            )
            assert bearer.json() == 2  # the token itself was sent: not a forgery
        assert target.node.get_state("Ledger", "victim") == {"balance": 2}
