"""A lean HTTP/1.1 server on trio (keep-alive, pipelined requests answered in order), with
the framing in the sans-IO `_http1`.

Why not hypercorn: on this machine hypercorn's trio worker spends ~0.8 ms of CPU per request
even for an empty ASGI app, which caps a node near 1,200 requests/s; h11 driven directly costs
~0.13-0.16 ms; this server's own framing a few tens of µs (see docs/architecture.md).
`asgi_app` still lets any ASGI server host the node.

Limits protect the node from hostile clients: the request head and body sizes are capped
(413/431 before the body is read), idle keep-alive connections and slow request heads time
out, and the number of open connections is bounded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import attrs
import trio

from ._http1 import CONTINUE, ChunkedDecoder, Head, parse_head, plausible_start, render
from ._wire import HttpError, Request, Response, error_response

_log = logging.getLogger("actors.http")

App = Callable[[Request], Awaitable[Response]]


@attrs.frozen(kw_only=True)
class ServerLimits:
    """Resource limits of the HTTP server."""

    max_body: int = 4 * 1024 * 1024
    """Largest request body in bytes; larger ones get 413 before the body is read."""
    max_head: int = 16 * 1024
    """Largest request line plus headers; larger ones get 431."""
    max_connections: int = 1024
    """Open connections at once; a connection beyond them gets 503 and is closed."""
    head_timeout: float = 30.0
    """Seconds to receive a request's head and body once it has started arriving."""
    idle_timeout: float = 75.0
    """Seconds an idle keep-alive connection is kept open."""


class _Closed(Exception):
    """The client closed the connection (or stalled) before a request was complete."""


Precheck = Callable[[Request], HttpError | None]


class _Connection:
    """One client connection: requests are read, answered and written in turn.

    One cancel scope covers the connection; a plain `deadline` number says when the current
    phase must end, and the server's reaper task cancels the scope once it is past (a cancel
    scope per phase, or moving a trio deadline per request, costs more than the parsing).
    `idle_timeout` applies while waiting for a request and while writing a response,
    `head_timeout` from a request's first byte until it is read, none while the node works on
    a request, so a timeout never cancels a request the node has accepted: a cancellation that
    arrives just as a request was read is noticed before the node sees the request, which is
    then answered 408 without being executed.
    """

    def __init__(
        self, stream: trio.SocketStream, app: App, precheck: Precheck | None, limits: ServerLimits
    ) -> None:
        self._stream = stream
        self._app = app
        self._precheck = precheck
        self._limits = limits
        self._buffer = bytearray()
        self._reading = False
        """True from a request's first byte until it is read (a timeout then gets a 408)."""
        self.scope = trio.CancelScope()
        self.deadline = math.inf
        self._refusal: HttpError | None = None

    async def _fill(self) -> None:
        data = await self._stream.receive_some(65536)
        if not data:
            raise _Closed
        if not self._reading:
            self._reading = True
            self.deadline = trio.current_time() + self._limits.head_timeout
        self._buffer += data

    async def _read_request(self) -> tuple[Request, Head]:
        limits = self._limits
        buffer = self._buffer
        while True:
            while buffer[:2] == b"\r\n":  # blank lines before a request are ignored
                del buffer[:2]
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buffer) > limits.max_head:
                raise _head_too_large(len(buffer), limits.max_head)
            if buffer and not plausible_start(buffer):
                raise HttpError(400, "bad_request", "malformed request: not an HTTP request")
            await self._fill()
        if end > limits.max_head:
            raise _head_too_large(end, limits.max_head)
        if not self._reading:  # the whole request was already buffered (pipelining)
            self._reading = True
            self.deadline = trio.current_time() + limits.head_timeout
        head = parse_head(bytes(buffer[:end]), max_body=limits.max_body)
        del buffer[: end + 4]
        path, _, query = head.target.partition("?")
        method = head.method.upper()
        request = Request(
            method="GET" if method == "HEAD" else method,  # HEAD: a GET without the body
            path=path,
            query=dict(parse_qsl(query, keep_blank_values=True)) if query else {},
            headers=head.headers,
        )
        if head.chunked or head.content_length:
            # Route, token and origin are judged before a body is read or invited: a client
            # without the token cannot make the node hold megabytes.
            refusal = self._precheck(request) if self._precheck is not None else None
            if refusal is not None:
                raise refusal
            if head.expect_continue and not buffer:
                await self._stream.send_all(CONTINUE)
            if head.chunked:
                decoder = ChunkedDecoder(limits.max_body)
                chunks = decoder.feed(buffer)
                while not decoder.done:
                    await self._fill()
                    chunks += decoder.feed(buffer)
                body = b"".join(chunks)
            else:
                length = head.content_length or 0
                while len(buffer) < length:
                    await self._fill()
                body = bytes(buffer[:length])
                del buffer[:length]
            request = Request(
                method=request.method,
                path=request.path,
                query=request.query,
                headers=request.headers,
                body=body,
            )
        self._reading = False
        return request, head

    async def _refuse(self, error: HttpError) -> None:
        """Answer with `error` and close. The rest of the request is read and dropped for a
        moment first (a lingering close), so that the client, still sending, sees the
        answer instead of a connection reset. Bounded in time: a client that reads nothing
        does not keep the connection."""
        with trio.move_on_after(min(self._limits.head_timeout, 5.0)):
            try:
                await self._stream.send_all(render(error_response(error), keep_alive=False))
                await self._stream.send_eof()
                drained = 0
                with trio.move_on_after(1.0):
                    while drained < 4 * self._limits.max_body:
                        data = await self._stream.receive_some(65536)
                        if not data:
                            break
                        drained += len(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def _exchange(self) -> bool:
        """Read one request and answer it; False when the connection should close."""
        limits = self._limits
        self._reading = bool(self._buffer)
        self.deadline = trio.current_time() + (
            limits.head_timeout if self._reading else limits.idle_timeout
        )
        try:
            request, head = await self._read_request()
        except HttpError as exc:
            self._refusal = exc
            return False
        if self.scope.cancel_called:  # timed out just as the request arrived: not executed
            self._refusal = HttpError(408, "request_timeout", "the request arrived too slowly")
            return False
        self.deadline = math.inf
        response = await self._app(request)
        self.deadline = trio.current_time() + limits.idle_timeout
        head_only = head.method == "HEAD"
        data = render(response, keep_alive=head.keep_alive, head_only=head_only, http10=head.http10)
        await self._stream.send_all(data)
        return head.keep_alive

    async def serve(self) -> None:
        try:
            with self.scope:
                while await self._exchange():
                    pass
            if self.scope.cancelled_caught and self._reading:
                self._refusal = HttpError(408, "request_timeout", "the request arrived too slowly")
            if self._refusal is not None:
                await self._refuse(self._refusal)
        except (_Closed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:  # noqa: BLE001 - a bug costs this connection, never the node
            _log.exception("bug in the HTTP server; the connection is closed")
        finally:
            with trio.move_on_after(1) as closing:
                closing.shield = True
                await self._stream.aclose()


def _head_too_large(size: int, limit: int) -> HttpError:
    return HttpError(
        431,
        "header_too_large",
        f"the request line and headers exceed {limit} bytes (got at least {size})",
    )


_TOO_MANY = render(
    error_response(
        HttpError(503, "too_many_connections", "the node serves no more connections; retry")
    ),
    keep_alive=False,
)


async def serve_http(
    app: App,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    limits: ServerLimits | None = None,
    precheck: Precheck | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `host:port` until cancelled, reporting the bound port.

    `precheck`, given a request without its body, may refuse it before the body is read.
    """
    limits = limits or ServerLimits()
    listeners = await trio.open_tcp_listeners(port, host=host)
    open_connections: set[_Connection] = set()

    async def handle(stream: trio.SocketStream) -> None:
        if len(open_connections) >= limits.max_connections:
            # Over the limit: answer at once and close (after a short lingering read, so the
            # client sees the answer, not a reset): file descriptors stay bounded.
            with trio.move_on_after(1):
                try:
                    await stream.send_all(_TOO_MANY)
                    await stream.send_eof()
                    while await stream.receive_some(65536):
                        pass
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            await trio.aclose_forcefully(stream)
            return
        connection = _Connection(stream, app, precheck, limits)
        open_connections.add(connection)
        try:
            await connection.serve()
        finally:
            open_connections.discard(connection)

    async def reap() -> None:
        period = min(limits.head_timeout, limits.idle_timeout) / 4
        while True:
            await trio.sleep(period)
            now = trio.current_time()
            for connection in open_connections:
                if connection.deadline < now:
                    connection.scope.cancel()

    bound = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reap)
        task_status.started(bound)
        _log.info("serving HTTP on http://%s:%d", host, bound)
        await trio.serve_listeners(handle, listeners, handler_nursery=nursery)
