"""Fixtures for the command-line tests: a real node served over HTTP on 127.0.0.1, and the
CLI run in a worker thread (it uses synchronous httpx) with click's test runner."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import attrs
import pytest
import trio
from click.testing import CliRunner, Result

import actors
from actors._cli import cli
from actors._http._site import serve_node

from .app import Gate, make_app

TOKEN = "s3cret-token"


def invoke(args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    """Run ``actors ARGS`` in this thread; ACTORS_URL/ACTORS_TOKEN from the test environment
    are cleared so only `args` and `env` count."""
    base = {"ACTORS_URL": None, "ACTORS_TOKEN": None}
    return CliRunner().invoke(cli, list(args), env={**base, **(env or {})}, catch_exceptions=False)


@attrs.frozen(kw_only=True)
class Served:
    """A node served over HTTP for one test."""

    node: actors.Node
    url: str
    gate: Gate
    data: Path

    async def cli(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run ``actors ARGS --url <this node> --token <its token>`` in a worker thread."""
        full = [*args, "--url", self.url, "--token", TOKEN]
        return await trio.to_thread.run_sync(functools.partial(invoke, full, env))


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    gate = Gate()
    app = make_app(gate)
    data = tmp_path / "data"
    async with (
        actors.open_node(data, app.instances, types=app.types, options=app.options) as node,
        trio.open_nursery() as nursery,
    ):
        port = await nursery.start(functools.partial(serve_node, node, port=0, token=TOKEN))
        yield Served(node=node, url=f"http://127.0.0.1:{port}", gate=gate, data=data)
        nursery.cancel_scope.cancel()
