"""A lean HTTP/1.1 load client: keep-alive connections driven by one `selectors` loop.

Why not httpx: at 64 concurrent clients httpx itself tops out near 500 requests/s on this
machine, so it would measure the client instead of the node. This client sends prebuilt request
bytes and reads only what it needs of each response (the status line and ``Content-Length``),
so one Python thread can keep a node busy with thousands of requests per second.

Each connection is a closed loop: it sends its next request only after the previous response
arrived. Non-2xx responses are counted as errors (by status). A connection the server closes
is reopened; the request that was in flight on it is counted as lost (it may or may not have
taken effect), and a connection that cannot be reopened stops.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import Counter
from collections.abc import Sequence

import attrs

_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 64 * 1024
_MAX_REOPENS = 10
"""Reconnections allowed per connection before it gives up (the server keeps closing it)."""


class ProtocolError(Exception):
    """The server answered something this client cannot read (no Content-Length, a bad
    status line, an oversized head)."""


def build_request(
    method: str, path: str, body: bytes = b"", *, host: str = "127.0.0.1", token: str | None = None
) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[int, int]:
    """The status code and Content-Length of a response head (without the blank line).

    Raises:
        ProtocolError: no status code or no Content-Length.
    """
    status_line, _, rest = head.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {status_line[:80]!r}")
    length = None
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise ProtocolError("the response has no Content-Length (chunked bodies are not read)")
    return int(parts[1]), length


@attrs.define
class _Connection:
    index: int
    request: bytes
    remaining: int
    sock: socket.socket | None = None
    out: bytes = b""
    buffer: bytearray = attrs.field(factory=bytearray)
    sent_at: float = 0.0
    in_flight: bool = False
    reopens: int = 0
    last_body: bytes = b""
    ok: int = 0


@attrs.frozen(kw_only=True)
class LoadResult:
    """What a load run measured."""

    elapsed: float
    """Seconds from the first request sent to the last response read."""
    latencies: list[float]
    """Seconds from sending each successful request to reading its whole response."""
    ok: int
    """2xx responses."""
    errors: dict[int, int]
    """Other responses, by status."""
    lost: int
    """Requests in flight on a connection the server closed (outcome unknown)."""
    ok_per_connection: list[int]
    last_bodies: list[bytes]
    """Every connection's last successful response body."""


class _Loop:
    def __init__(self, address: tuple[str, int], connections: list[_Connection]) -> None:
        self.address = address
        self.connections = connections
        self.selector = selectors.DefaultSelector()
        self.latencies: list[float] = []
        self.errors: Counter[int] = Counter()
        self.lost = 0
        self.open = 0

    def connect(self, conn: _Connection) -> None:
        sock = socket.create_connection(self.address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        conn.sock = sock
        conn.buffer.clear()
        self.selector.register(sock, selectors.EVENT_READ, conn)
        self.open += 1

    def close(self, conn: _Connection) -> None:
        if conn.sock is not None:
            self.selector.unregister(conn.sock)
            conn.sock.close()
            conn.sock = None
            self.open -= 1

    def send_next(self, conn: _Connection) -> None:
        if conn.remaining <= 0 or conn.sock is None:
            self.close(conn)
            return
        conn.remaining -= 1
        conn.in_flight = True
        conn.sent_at = time.perf_counter()
        conn.out = conn.request
        self.flush(conn)

    def flush(self, conn: _Connection) -> None:
        assert conn.sock is not None
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.reopen(conn)
            return
        conn.out = conn.out[sent:]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0)
        self.selector.modify(conn.sock, events, conn)

    def reopen(self, conn: _Connection) -> None:
        """The server closed `conn`: count what was in flight as lost and start over."""
        self.close(conn)
        if conn.in_flight:
            conn.in_flight = False
            self.lost += 1
        if conn.remaining <= 0 or conn.reopens >= _MAX_REOPENS:
            return
        conn.reopens += 1
        try:
            self.connect(conn)
        except OSError:
            return
        self.send_next(conn)

    def readable(self, conn: _Connection) -> None:
        assert conn.sock is not None
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.reopen(conn)  # never read a closed socket again
            return
        conn.buffer += data
        while conn.sock is not None and self.response(conn):
            pass

    def response(self, conn: _Connection) -> bool:
        """Consume one whole response from the buffer, if there is one."""
        buffer = conn.buffer
        end = buffer.find(_HEAD_END)
        if end < 0:
            if len(buffer) > _MAX_HEAD:
                raise ProtocolError("response head larger than 64 KiB")
            return False
        status, length = parse_head(bytes(buffer[:end]))
        total = end + len(_HEAD_END) + length
        if len(buffer) < total:
            return False
        now = time.perf_counter()
        if not conn.in_flight:
            raise ProtocolError("a response arrived for no request")
        conn.in_flight = False
        if 200 <= status < 300:
            self.latencies.append(now - conn.sent_at)
            conn.ok += 1
            conn.last_body = bytes(buffer[end + len(_HEAD_END) : total])
        else:
            self.errors[status] += 1
        del buffer[:total]
        self.send_next(conn)
        return True

    def run(self) -> float:
        for conn in self.connections:
            self.connect(conn)
        started = time.perf_counter()
        for conn in self.connections:
            self.send_next(conn)
        select = self.selector.select
        while self.open:
            for key, events in select():
                conn = key.data
                if conn.sock is None:
                    continue  # closed by an earlier event of this round
                if events & selectors.EVENT_WRITE and conn.out:
                    self.flush(conn)
                if conn.sock is not None and events & selectors.EVENT_READ:
                    self.readable(conn)
        elapsed = time.perf_counter() - started
        self.selector.close()
        return elapsed


def run_load(
    host: str, port: int, requests: Sequence[bytes], per_connection: Sequence[int]
) -> LoadResult:
    """Send ``per_connection[i]`` copies of ``requests[i]`` back to back on connection i,
    all connections at once, and measure.

    Raises:
        ProtocolError: a response this client cannot read.
        OSError: a connection could not be opened.
    """
    connections = [
        _Connection(index=i, request=request, remaining=count)
        for i, (request, count) in enumerate(zip(requests, per_connection, strict=True))
    ]
    loop = _Loop((host, port), connections)
    try:
        elapsed = loop.run()
    finally:
        for conn in connections:
            if conn.sock is not None:
                conn.sock.close()
    return LoadResult(
        elapsed=elapsed,
        latencies=loop.latencies,
        ok=len(loop.latencies),
        errors=dict(loop.errors),
        lost=loop.lost,
        ok_per_connection=[conn.ok for conn in connections],
        last_bodies=[conn.last_body for conn in connections],
    )


def request_once(
    host: str, port: int, request: bytes, *, timeout: float = 10.0
) -> tuple[int, bytes]:
    """Send one request on a fresh connection; return the status and body (blocking)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        buffer = bytearray()
        while True:
            end = buffer.find(_HEAD_END)
            if end >= 0:
                status, length = parse_head(bytes(buffer[:end]))
                total = end + len(_HEAD_END) + length
                if len(buffer) >= total:
                    return status, bytes(buffer[end + len(_HEAD_END) : total])
            data = sock.recv(65536)
            if not data:
                raise ProtocolError("the server closed the connection before answering")
            buffer += data
