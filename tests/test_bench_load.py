"""The benchmark's lean HTTP load client (`bench._load`) against a scripted raw-socket server on
127.0.0.1: responses split across reads, non-2xx statuses, and a server that closes
connections (with a request in flight, or at once) — the client must count each case and end,
never spin on a closed socket."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from bench._load import LoadResult, ProtocolError, build_request, parse_head, run_load

Behaviour = Callable[[socket.socket, int, int], bool]
"""Given the connection, the request's number on it and overall, answer it; False closes."""


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(4096)
    return head


@contextmanager
def _server(behaviour: Behaviour) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    counter = iter(range(1_000_000))
    lock = threading.Lock()
    threads: list[threading.Thread] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for on_connection in range(1_000_000):
                try:
                    if _read_request(conn) is None:
                        return
                except OSError:
                    return
                with lock:
                    overall = next(counter)
                try:
                    if not behaviour(conn, on_connection, overall):
                        return
                except OSError:
                    return

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=serve, args=(conn,), daemon=True)
            thread.start()
            threads.append(thread)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield port
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept (Linux)
        listener.close()
        acceptor.join(timeout=5)
        assert not acceptor.is_alive()
        for thread in threads:
            thread.join(timeout=5)


def _respond(conn: socket.socket, status: int, body: bytes, *, pieces: int = 1) -> None:
    data = (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    step = max(1, len(data) // pieces)
    for start in range(0, len(data), step):
        conn.sendall(data[start : start + step])
        if pieces > 1:
            time.sleep(0.001)  # a real gap, so the client reads the response in parts


def _run(port: int, connections: int, each: int) -> LoadResult:
    """run_load in a thread, so that a client that spins fails the test instead of hanging."""
    results: list[LoadResult] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(
                run_load(
                    "127.0.0.1",
                    port,
                    [
                        build_request("POST", f"/call/C/k{i}/add", b"[1]")
                        for i in range(connections)
                    ],
                    [each] * connections,
                )
            )
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the load client did not finish"
    if errors:
        raise errors[0]
    return results[0]


def test_split_responses_and_error_statuses_are_counted() -> None:
    def behaviour(conn: socket.socket, on_connection: int, overall: int) -> bool:
        if on_connection % 4 == 3:
            _respond(conn, 503, b'{"error":"busy"}', pieces=3)
        else:
            _respond(conn, 200, str(on_connection).encode(), pieces=3)
        return True

    with _server(behaviour) as port:
        result = _run(port, connections=4, each=8)
    assert result.ok == 4 * 6
    assert result.errors == {503: 4 * 2}
    assert result.lost == 0
    assert result.ok_per_connection == [6, 6, 6, 6]
    assert result.last_bodies == [b"6"] * 4  # the 8th response was the 503
    assert len(result.latencies) == result.ok and min(result.latencies) > 0


def test_a_connection_closed_with_a_request_in_flight_is_reopened() -> None:
    def behaviour(conn: socket.socket, on_connection: int, overall: int) -> bool:
        if on_connection == 2:
            return False  # read the third request, then close without answering
        _respond(conn, 200, b"1")
        return True

    with _server(behaviour) as port:
        result = _run(port, connections=2, each=5)
    # Per connection: 2 answered, 1 lost, reopened; 2 answered on the new one.
    assert result.lost == 2
    assert result.ok == 8
    assert result.ok_per_connection == [4, 4]
    assert result.errors == {}


def test_a_server_that_always_closes_ends_the_run() -> None:
    def behaviour(conn: socket.socket, on_connection: int, overall: int) -> bool:
        return False

    with _server(behaviour) as port:
        result = _run(port, connections=3, each=100)
    assert result.ok == 0
    # Each connection: its first try plus 10 reopens, every request lost; then it gives up.
    assert result.lost == 3 * 11


def test_a_response_without_content_length_is_refused() -> None:
    def behaviour(conn: socket.socket, on_connection: int, overall: int) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
        return True

    with _server(behaviour) as port, pytest.raises(ProtocolError, match="Content-Length"):
        _run(port, connections=1, each=1)


def test_parse_head_and_build_request() -> None:
    assert parse_head(b"HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\nx: y") == (404, 12)
    with pytest.raises(ProtocolError, match="status line"):
        parse_head(b"garbage\r\nContent-Length: 1")
    request = build_request("POST", "/call/C/k/add", b"[1]", token="t")
    assert request.startswith(b"POST /call/C/k/add HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    assert b"Authorization: Bearer t\r\n" in request
    assert request.endswith(b"Content-Length: 3\r\n\r\n[1]")
