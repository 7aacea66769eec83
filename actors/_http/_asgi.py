"""The node's site as an ASGI application, for hosting it in any ASGI server that runs trio
(hypercorn's trio worker, for one) or mounting it inside another ASGI app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote

from .._node import Node
from ._server import ServerLimits
from ._site import build_app
from ._wire import HttpError, Request, error_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def asgi_app(node: Node, *, token: str | None = None, max_body: int | None = None) -> ASGIApp:
    """The node's HTTP API, console and metrics as an ASGI 3 application.

    The ASGI server must run on trio in the same process (and trio run) as the node, e.g.
    ``hypercorn --worker-class trio``-style serving from inside `open_node`'s block with
    ``hypercorn.trio.serve(actors.asgi_app(node), config)``.

    Args:
        node: the running node to serve.
        token: when set, requests need ``Authorization: Bearer <token>`` (``/health`` aside).
        max_body: the largest request body accepted, in bytes (default 4 MiB); larger ones
            get 413.
    """
    app = build_app(node, token=token)
    limit = max_body if max_body is not None else ServerLimits().max_body

    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def read_body(receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HttpError(400, "bad_request", "the client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HttpError(
                    413,
                    "payload_too_large",
                    f"the request body exceeds the limit of {limit} bytes",
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        try:
            body = await read_body(receive)
        except HttpError as exc:
            response = error_response(exc)
        else:
            request = Request(
                method=scope["method"].upper(),
                path=path.partition("?")[0],
                query=query,
                headers=headers,
                body=body,
            )
            response = await app.handle(request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type.encode("latin-1")),
                    (b"content-length", str(len(response.body)).encode()),
                    *((k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers),
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    return asgi
