"""Serving a node over HTTP: the route table of a node's site, and `serve_node`."""

from __future__ import annotations

import trio

from .._node import Node
from . import _api, _console, _metrics
from ._app import WebApp
from ._server import ServerLimits, serve_http


def build_app(node: Node, *, token: str | None = None) -> WebApp:
    """The node's whole site: ingress and admin API, ``/ui``, ``/metrics``, ``/health``."""
    return WebApp(
        [*_api.routes(node), *_console.routes(node, token=token), *_metrics.routes(node)],
        token=token,
    )


async def serve_node(
    node: Node,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str | None = None,
    limits: ServerLimits | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `node` over HTTP/1.1 until cancelled: the ingress and admin API, the web console
    at ``/ui``, ``/metrics`` and ``/health`` (exported as ``actors.serve_http``).

    Start it in a nursery to learn the port: ``port = await
    nursery.start(functools.partial(actors.serve_http, node, port=0))``.

    Args:
        node: the running node to serve.
        host: the address to listen on (keep it on loopback unless a proxy fronts it).
        port: the port; 0 picks a free one.
        token: when set, every route but ``/health`` needs ``Authorization: Bearer <token>``.
        limits: the server's limits (`ServerLimits`).
    """
    app = build_app(node, token=token)
    await serve_http(
        app.handle,
        host=host,
        port=port,
        limits=limits,
        precheck=app.precheck,
        task_status=task_status,
    )
