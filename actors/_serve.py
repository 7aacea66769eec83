"""``actors serve``: run a node for an app on a data directory, over HTTP, until a signal.

Start-up: take the data directory (recovery queues every unfinished invocation again), listen,
then print one ready line to stdout. SIGINT or SIGTERM: answer new HTTP requests 503, give the
running invocations and the requests in flight a grace period to finish, then leave the node
(whatever still runs is cancelled and resumes from its journal at the next start) and close
LMDB cleanly. A second signal during the grace period stops at once.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import TextIO

import attrs
import trio

from ._app_spec import App
from ._http._server import serve_http
from ._http._site import build_app
from ._http._wire import HttpError, Request, Response, error_response
from ._open import open_node


@attrs.frozen(kw_only=True)
class ServeConfig:
    """What ``actors serve`` runs and where."""

    app: App
    app_name: str
    """The app reference as given (shown in the ready line)."""
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    """0 picks a free port (the ready line shows the real one)."""
    token: str | None = None
    grace: float = 10.0
    """Seconds running invocations get to finish after a stop signal."""


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:8080`` for IPv6).

    Raises:
        ValueError: not of that form, or the port is out of range.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port {port} is out of range")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def serve(
    config: ServeConfig,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM),
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve `config.app` until one of `signals` arrives (or the caller cancels).

    Args:
        config: the app, data directory, address, token and grace period.
        out: where the ready line goes (default: stdout).
        err: where shutdown progress goes (default: stderr).
        signals: the signals that stop the node gracefully (only usable in the main thread;
            pass ``()`` to stop by cancellation instead).
        on_ready: called with the bound port once the node is serving.

    Raises:
        DataDirLocked: another node has the data directory open.
        OSError: the address cannot be bound.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    app = config.app
    with _signal_receiver(signals) as received:
        async with open_node(
            config.data_dir, app.instances, types=app.types, options=app.options
        ) as node:
            site = build_app(node, token=config.token)
            door = _Door(site.handle)
            async with trio.open_nursery() as http:
                port: int = await http.start(
                    functools.partial(
                        serve_http,
                        door.handle,
                        host=config.host,
                        port=config.port,
                        precheck=site.precheck,
                    )
                )
                url = f"http://{_url_host(config.host)}:{port}"
                print(
                    f"actors: serving {config.app_name} on {url} (data {config.data_dir})",
                    file=out,
                    flush=True,
                )
                if on_ready is not None:
                    on_ready(port)
                first = await _next_signal(received)
                door.close()
                busy = node.statistics().invocations_in_memory
                print(
                    f"actors: {signal.Signals(first).name} received; waiting up to"
                    f" {config.grace:g}s for {busy} unfinished invocation(s) and"
                    f" {door.in_flight} request(s) in flight (signal again to stop now)",
                    file=err,
                    flush=True,
                )
                async with trio.open_nursery() as grace:

                    async def second_signal() -> None:
                        await _next_signal(received)
                        grace.cancel_scope.cancel()

                    async def drain() -> None:
                        with trio.move_on_after(config.grace):
                            # A timer beyond the grace period cannot finish in it: not waited for.
                            await node.wait_idle(horizon=timedelta(seconds=config.grace))
                            await door.wait_drained()
                        grace.cancel_scope.cancel()

                    grace.start_soon(second_signal)
                    grace.start_soon(drain)
                http.cancel_scope.cancel()
            left = node.statistics().invocations_in_memory
        # Leaving `open_node` cancelled what was still running and closed LMDB.
        tail = f"; {left} invocation(s) resume at the next start" if left else ""
        print(f"actors: node stopped{tail}", file=err, flush=True)


class _Door:
    """Counts the requests in flight; once closed, answers new ones 503 ``node_stopping``
    (load balancers watching ``/health`` take the node out) while those in flight finish."""

    def __init__(self, handle: Callable[[Request], Awaitable[Response]]) -> None:
        self._handle = handle
        self._closed = False
        self._drained = trio.Event()
        self.in_flight = 0

    async def handle(self, request: Request) -> Response:
        if self._closed:
            return error_response(
                HttpError(503, "node_stopping", "the node is shutting down; retry shortly")
            )
        self.in_flight += 1
        try:
            return await self._handle(request)
        finally:
            self.in_flight -= 1
            self._check_drained()

    def close(self) -> None:
        self._closed = True
        self._check_drained()

    def _check_drained(self) -> None:
        if self._closed and not self.in_flight:
            self._drained.set()

    async def wait_drained(self) -> None:
        await self._drained.wait()


class _NoSignals:
    """Stands in for a signal receiver when the caller stops `serve` by cancellation."""

    def __aiter__(self) -> _NoSignals:
        return self

    async def __anext__(self) -> int:
        await trio.sleep_forever()
        raise AssertionError("unreachable")


def _signal_receiver(signals: tuple[int, ...]) -> AbstractContextManager[AsyncIterator[int]]:
    if signals:
        return trio.open_signal_receiver(*signals)
    return contextlib.nullcontext(_NoSignals())


async def _next_signal(received: AsyncIterator[int]) -> int:
    return int(await received.__anext__())
