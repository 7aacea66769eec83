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


async def run_until_stopped(
    tmp_path: Path, grace: float, open_gate: bool, signal_twice: bool = False
) -> tuple[str, str]:
    """Serve; run `Desk.slow` (held by the gate) from a client thread; send SIGUSR1. With
    `open_gate` it is a call, new requests are checked to be refused, and the gate opens
    during the grace period; without, it is a durable send and the gate stays closed.
    `signal_twice` sends a second SIGUSR1 during the grace period.

    Returns:
        What serve wrote to stderr, and how the in-flight call ended (its stdout, or the
        error line for a failure).
    """
    gate = Gate()
    config = ServeConfig(
        app=make_app(gate), app_name="tests.cli.app:app", data_dir=tmp_path, port=0, grace=grace
    )
    out = io.StringIO()
    err = Watched("waiting up to")
    ports: list[int] = []
    ready = trio.Event()
    ended: list[str] = []

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

        async def in_flight_call() -> None:
            # A call waits for its result (a request in flight); a send is durable at once.
            verb = "call" if open_gate else "send"
            result = await trio.to_thread.run_sync(invoke, [verb, "Desk/g/slow", "--url", url])
            ended.append(result.stdout.strip() if result.exit_code == 0 else result.stderr)

        nursery.start_soon(in_flight_call)
        await gate.entered.wait()
        os.kill(os.getpid(), signal.SIGUSR1)
        with trio.fail_after(10):
            await err.event.wait()
        if open_gate:
            # During the grace period new requests are refused, the one in flight goes on.
            refused = await trio.to_thread.run_sync(invoke, ["call", "Greeter/greet", "--url", url])
            assert refused.exit_code == 1
            assert refused.stderr.startswith("error: node_stopping: the node is shutting down")
            gate.opened.set()
        if signal_twice:
            os.kill(os.getpid(), signal.SIGUSR1)
    return err.getvalue(), ended[0]


async def test_a_second_signal_skips_the_rest_of_the_grace_period(tmp_path: Path) -> None:
    with trio.fail_after(20):  # far less than the grace period
        err, _ = await run_until_stopped(tmp_path, grace=600, open_gate=False, signal_twice=True)
    assert "waiting up to 600s for 1 unfinished invocation(s)" in err
    assert err.rstrip().endswith("actors: node stopped; 1 invocation(s) resume at the next start")


async def state_after(tmp_path: Path) -> dict[str, object]:
    app = make_app(Gate())
    async with actors.open_node(tmp_path, app.instances, types=app.types) as node:
        return node.get_state("Desk", "g")


async def test_running_invocations_and_requests_finish_within_the_grace_period(
    tmp_path: Path,
) -> None:
    err, call = await run_until_stopped(tmp_path, grace=30, open_gate=True)
    assert (
        "SIGUSR1 received; waiting up to 30s for 1 unfinished invocation(s) and 1 request(s)"
        " in flight (signal again to stop now)" in err
    )
    assert err.rstrip().endswith("actors: node stopped")
    assert call == '"through"'
    assert await state_after(tmp_path) == {"slow": "through"}


async def test_past_the_grace_period_invocations_resume_at_the_next_start(
    tmp_path: Path,
) -> None:
    err, call = await run_until_stopped(tmp_path, grace=0.05, open_gate=False)
    assert "waiting up to 0.05s for 1 unfinished invocation(s) and 0 request(s) in flight" in err
    assert err.rstrip().endswith("actors: node stopped; 1 invocation(s) resume at the next start")
    assert call.startswith('{\n  "invocation_id": "inv_')
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
