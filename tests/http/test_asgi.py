"""The ASGI form of the node's site, hosted by hypercorn's trio worker."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

import actors
from actors.testing import open_test_node

from .http_app import Gates, instances


async def test_hypercorn_serves_the_asgi_app(tmp_path: Path) -> None:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    async with open_test_node(tmp_path / "node", instances(Gates())) as node:
        app = actors.asgi_app(node, token="t", max_body=1024)
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(
                partial(serve, app, config, mode="asgi")  # type: ignore[arg-type]
            )
            base = binds[0]
            auth = {"authorization": "Bearer t"}
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                r = await client.post("/call/Ledger/a%2Fb/add", json=[3], headers=auth)
                assert (r.status_code, r.json()) == (200, 3)
                r = await client.get("/state/Ledger/a%2Fb", headers=auth)
                assert r.json() == {"state": {"balance": 3}}
                r = await client.post("/call/Ledger/a/add", json=[3])
                assert (r.status_code, r.json()["error"]) == (401, "unauthorized")
                r = await client.post(
                    "/call/Ledger/a/add", content=b"[" + b" " * 2000 + b"1]", headers=auth
                )
                assert (r.status_code, r.json()["error"]) == (413, "payload_too_large")
                r = await client.get("/health")
                assert r.json() == {"status": "ok"}
            assert node.get_state("Ledger", "a") == {}  # nothing refused took effect
            nursery.cancel_scope.cancel()
