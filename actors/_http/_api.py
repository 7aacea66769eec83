"""The ingress and admin API: call, send and start handlers; invocations; awakeables."""

from __future__ import annotations

from .._node import Node
from ._wire import Request, Response, Route, json_response


def routes(node: Node) -> list[Route]:
    """The API routes of `node`."""

    async def health(request: Request, params: dict[str, str]) -> Response:
        return json_response({"status": "ok"})

    return [Route(method="GET", pattern="/health", handler=health, public=True)]
