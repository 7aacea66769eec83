"""`actors._serve.serve` in this process: a stop signal lets running invocations finish
within the grace period; past it they are left to resume at the next start."""

from __future__ import annotations

import functools
import io
import json
import os
import signal
from pathlib import Path

import pytest
import trio

import actors
from actors._serve import ServeConfig, parse_listen, serve

from .app import Gate, make_app
from .conftest import invoke


class Watched(io.StringIO):
    """A text stream that sets `event` once `marker` has been written to it."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.event = trio.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.marker in self.getvalue():
            self.event.set()
        return written


async def run_until_stopped(tmp_path: Path, grace: float, open_gate: bool) -> str:
    """Serve, start `Desk.slow` (held by the gate), send SIGUSR1, optionally open the gate
    during the grace period; return what serve wrote to stderr."""
    gate = Gate()
    config = ServeConfig(
        app=make_app(gate), app_name="tests.cli.app:app", data_dir=tmp_path, port=0, grace=grace
    )
    out = io.StringIO()
    err = Watched("waiting up to")
    ports: list[int] = []
    ready = trio.Event()

    def on_ready(port: int) -> None:
        ports.append(port)
        ready.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            functools.partial(
                serve, config, out=out, err=err, signals=(signal.SIGUSR1,), on_ready=on_ready
            )
        )
        await ready.wait()
        url = f"http://127.0.0.1:{ports[0]}"
        assert out.getvalue() == f"actors: serving tests.cli.app:app on {url} (data {tmp_path})\n"
        sent = await trio.to_thread.run_sync(invoke, ["send", "Desk/g/slow", "--url", url])
        assert sent.exit_code == 0, sent.output
        await gate.entered.wait()
        os.kill(os.getpid(), signal.SIGUSR1)
        with trio.fail_after(10):
            await err.event.wait()
        # The HTTP server stopped at the signal.
        refused = await trio.to_thread.run_sync(invoke, ["call", "Greeter/greet", "--url", url])
        assert refused.exit_code == 3
        if open_gate:
            gate.opened.set()
    return err.getvalue()


async def state_after(tmp_path: Path) -> dict[str, object]:
    app = make_app(Gate())
    async with actors.open_node(tmp_path, app.instances, types=app.types) as node:
        return node.get_state("Desk", "g")


async def test_running_invocations_finish_within_the_grace_period(tmp_path: Path) -> None:
    err = await run_until_stopped(tmp_path, grace=30, open_gate=True)
    assert "SIGUSR1 received; waiting up to 30s for 1 unfinished invocation(s)" in err
    assert err.rstrip().endswith("actors: node stopped")
    assert await state_after(tmp_path) == {"slow": "through"}


async def test_past_the_grace_period_invocations_resume_at_the_next_start(
    tmp_path: Path,
) -> None:
    err = await run_until_stopped(tmp_path, grace=0.05, open_gate=False)
    assert "waiting up to 0.05s for 1 unfinished invocation(s)" in err
    assert err.rstrip().endswith("actors: node stopped; 1 invocation(s) resume at the next start")
    # Reopening recovers it; its step runs again (the gate is a fresh one, opened here).
    gate = Gate()
    gate.opened.set()
    app = make_app(gate)
    async with actors.open_node(tmp_path, app.instances, types=app.types) as node:
        await node.wait_idle()
        assert node.get_state("Desk", "g") == {"slow": "through"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:0", ("::1", 0)), ("h:1", ("h", 1))],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8080", ":80", "host:", "host:http", "h:70000"])
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"HOST:PORT|out of range"):
        parse_listen(text)


def test_json_output_of_a_call_is_plain_json() -> None:
    # A guard on the output helper the commands share: attrs values become objects.
    from actors._cli import _plain

    from .app import Ticket

    assert json.dumps(_plain({"t": Ticket(number=1, holder="x")})) == (
        '{"t": {"number": 1, "holder": "x"}}'
    )
