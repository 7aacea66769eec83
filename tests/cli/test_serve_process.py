"""``actors serve`` as a real subprocess: start, call through the CLI, stop with SIGTERM,
restart with the state still there; a second node on the same directory is refused."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from .conftest import invoke

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0
EXIT_TIMEOUT = 30.0


def _copy_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


class Server:
    """A running ``python -m actors._cli serve ...`` and the lines it printed."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.stdout: queue.Queue[str | None] = queue.Queue()
        self.stderr: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        assert proc.stderr is not None
        for stream, lines in ((proc.stdout, self.stdout), (proc.stderr, self.stderr)):
            threading.Thread(target=_copy_lines, args=(stream, lines), daemon=True).start()

    def ready_url(self) -> str:
        """Wait for the ready line; return the URL it names."""
        line = self.stdout.get(timeout=READY_TIMEOUT)
        assert line is not None, f"serve exited before it was ready: {self.drain_stderr()}"
        assert line.startswith("actors: serving "), line
        return line.split(" on ", 1)[1].split(" ", 1)[0]

    def stop(self, signum: int = signal.SIGTERM) -> int:
        os.kill(self.proc.pid, signum)
        return self.proc.wait(timeout=EXIT_TIMEOUT)

    def drain_stderr(self) -> str:
        """Everything written to stderr (call once the process has exited)."""
        self.proc.wait(timeout=EXIT_TIMEOUT)
        lines = []
        while (line := self.stderr.get(timeout=EXIT_TIMEOUT)) is not None:
            lines.append(line)
        return "\n".join(lines)


@contextmanager
def serve(*args: str) -> Iterator[Server]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ACTORS_TOKEN", None)
    command = [sys.executable, "-m", "actors._cli", "serve", *args]
    with subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            yield Server(proc)
        finally:
            if proc.poll() is None:
                proc.kill()  # the test failed midway: stop our child by its pid
                proc.wait()


def test_serve_call_stop_restart_and_a_second_node_is_refused(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    with serve("examples.shop:app", "--data", data, "--http", "127.0.0.1:0") as server:
        url = server.ready_url()
        assert url.startswith("http://127.0.0.1:")
        added = invoke(["call", "Cart/alice/add_item", '["apple"]', "--url", url])
        assert (added.exit_code, json.loads(added.stdout)) == (0, 1)
        counted = invoke(["call", "Counter/visits/add", '{"amount": 5}', "--url", url])
        assert (counted.exit_code, json.loads(counted.stdout)) == (0, 5)

        with serve("examples.shop:app", "--data", data, "--http", "127.0.0.1:0") as second:
            assert second.proc.wait(timeout=EXIT_TIMEOUT) == 2
            message = second.drain_stderr()
        assert f"the data directory {data} is already in use" in message
        assert f"(pid {server.proc.pid})" in message
        assert "Traceback" not in message
        assert len(message.splitlines()) == 1

        assert server.stop(signal.SIGTERM) == 0
        stopped = server.drain_stderr()
        assert "SIGTERM received" in stopped
        assert "actors: node stopped" in stopped

    with serve("examples.shop:app", "--data", data, "--http", "127.0.0.1:0") as server:
        url = server.ready_url()
        cart = invoke(["state", "get", "Cart", "alice", "items", "--url", url])
        assert (cart.exit_code, json.loads(cart.stdout)) == (0, ["apple"])
        items = invoke(["call", "Cart/alice/items", "--url", url])
        assert json.loads(items.stdout) == ["apple"]
        listed = invoke(["invocations", "list", "--json", "--url", url])
        handlers = sorted(r["handler"] for r in json.loads(listed.stdout))
        # The shop keeps finished invocations for an hour: those from before the restart too.
        assert handlers == ["add", "add_item", "items"]
        assert server.stop(signal.SIGINT) == 0

    # Stopped: the data directory can be read without a node.
    offline = invoke(["state", "get", "Counter", "visits", "--data", data])
    assert (offline.exit_code, json.loads(offline.stdout)) == (0, {"value": 5})


def test_a_token_protects_the_served_node(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    args = ("examples.shop:app", "--data", data, "--http", "127.0.0.1:0", "--token", "t0k")
    with serve(*args, "--log-format", "json") as server:
        url = server.ready_url()
        refused = invoke(["call", "Counter/c/get", "--url", url, "--token", "wrong"])
        assert refused.exit_code == 1
        assert refused.stderr.startswith("error: unauthorized: ")
        allowed = invoke(["call", "Counter/c/get", "--url", url], env={"ACTORS_TOKEN": "t0k"})
        assert (allowed.exit_code, json.loads(allowed.stdout)) == (0, 0)
        assert server.stop() == 0
        logged = [
            json.loads(line) for line in server.drain_stderr().splitlines() if line[:1] == "{"
        ]
    assert {"logger": "actors.http", "message": f"serving HTTP on {url}"}.items() <= logged[
        0
    ].items()


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("examples.nope:app", "cannot import app module 'examples.nope'"),
        ("examples.shop:nope", "module 'examples.shop' has no attribute 'nope'"),
        ("examples.shop", "is not of the form module:attribute"),
        ("examples.cart:TYPES", "is not a valid app: pass an instance of Receipt"),
        (
            "tests.cli.broken_app:app",
            "importing app module 'tests.cli.broken_app' failed: RuntimeError: this module",
        ),
    ],
)
def test_a_bad_app_is_exit_status_2_with_a_clear_message(
    tmp_path: Path, app: str, message: str
) -> None:
    result = invoke(["serve", app, "--data", str(tmp_path / "data")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert not (tmp_path / "data").exists()


def test_an_address_in_use_is_exit_status_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = invoke(["serve", "examples.shop:app", "--data", str(tmp_path), "--http", address])
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot listen on {address}: Address already in use\n"


def test_a_bad_listen_address_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(["serve", "examples.shop:app", "--data", str(tmp_path), "--http", "8080"])
    assert result.exit_code == 2
    assert "is not HOST:PORT" in result.stderr
