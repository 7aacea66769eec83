"""Reading a stopped node's data directory (``--data DIR``): nothing runs, nothing is written,
values of the app's types decode with ``--app`` and show as placeholders without it."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import pytest
import trio

import actors
from actors._http._api import record_json
from actors._inspect import open_inspector

from .app import Desk, make_app
from .conftest import invoke

APP = "tests.cli.app:app"


async def populate(data: Path) -> tuple[str, str]:
    """A finished note and a booking left waiting on its awakeable when the node stops."""
    app = make_app()
    async with actors.open_node(data, app.instances, types=app.types, options=app.options) as node:
        await node.call(Desk.note, "r1", "hello")
        note = node.list_invocations(handler="note")[0]
        booking = await node.send(Desk.book, "r1", "ann")
        await node.wait_idle()
    return str(note.id), booking


@pytest.fixture
def stopped(tmp_path: Path) -> tuple[Path, str, str]:
    data = tmp_path / "data"
    note, booking = trio.run(populate, data)
    return data, note, booking


def digest(data: Path) -> dict[str, tuple[str, int]]:
    """Every file of the directory (data.mdb, LMDB's lock.mdb, node.lock): content and mtime.
    Read-only mode must change none of them."""
    return {
        f.name: (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns)
        for f in sorted(data.iterdir())
    }


def test_list_show_and_state_of_a_stopped_node(stopped: tuple[Path, str, str]) -> None:
    data, note, booking = stopped
    before = digest(data)

    listed = invoke(["invocations", "list", "--json", "--data", str(data)])
    assert listed.exit_code == 0, listed.output
    records = {r["id"]: r for r in json.loads(listed.stdout)}
    assert set(records) == {note, booking}
    assert records[note]["status"] == "completed"
    assert records[note]["result"] == 1
    assert records[booking]["status"] not in ("completed", "killed")
    assert records[booking]["args"] == ["ann"]

    table = invoke(["invocations", "list", "--actor", "Desk/r1", "--data", str(data)])
    assert table.exit_code == 0, table.output
    assert {line.split()[0] for line in table.stdout.splitlines()[1:]} == {note, booking}

    # Without the app the Ticket a step returned cannot be decoded: a placeholder, no crash.
    shown = invoke(["invocations", "show", booking, "--json", "--data", str(data)])
    assert shown.exit_code == 0, shown.output
    journal = json.loads(shown.stdout)["journal"]
    assert [(e["kind"], e["name"]) for e in journal] == [("run", "issue"), ("awakeable", "")]
    assert journal[0]["value"].startswith("<undecodable: ")
    assert "pass --app" in journal[0]["value"]
    timeline = invoke(["invocations", "show", booking, "--data", str(data)])
    assert timeline.exit_code == 0, timeline.output
    assert "<undecodable: " in timeline.stdout
    header = next(line for line in timeline.stdout.splitlines() if line.startswith("#"))
    assert header.split()[:6] == ["#", "kind", "name", "at", "took", "attempts"]
    assert journal[0]["recorded_at"] is not None
    assert journal[0]["attempts"] == 1

    finished = invoke(["invocations", "show", note, "--data", str(data)])
    assert finished.exit_code == 0, finished.output
    assert "  status           completed\n" in finished.stdout
    assert "  result           1\n" in finished.stdout
    assert finished.stdout.endswith("  (no journal entries)\n")  # `note` takes no steps

    decoded = invoke(["journal", "show", booking, "--json", "--data", str(data), "--app", APP])
    assert decoded.exit_code == 0, decoded.output
    assert json.loads(decoded.stdout)[0]["value"] == {"number": 3, "holder": "ann"}

    state = invoke(["state", "get", "Desk", "r1", "--data", str(data)])
    values = json.loads(state.stdout)
    assert values["notes"] == ["hello"]
    assert values["ticket"].startswith("<undecodable: ")
    with_app = invoke(["state", "get", "Desk", "r1", "ticket", "--data", str(data), "--app", APP])
    assert json.loads(with_app.stdout) == {"number": 3, "holder": "ann"}
    names = invoke(["state", "list", "Desk", "r1", "--data", str(data)])
    assert names.stdout.split() == ["notes", "ticket"]
    # The timeline with --app decodes the app's values (it crashed on them once).
    rich = invoke(["invocations", "show", booking, "--data", str(data), "--app", APP])
    assert rich.exit_code == 0, rich.output
    assert '"holder": "ann"' in rich.stdout

    assert digest(data) == before, "a read-only command changed a file of the data directory"

    # Nothing ran: the booking is still unfinished, and a node that opens the directory
    # recovers it.
    async def reopen() -> actors.InvocationStatus:
        app = make_app()
        async with actors.open_node(data, app.instances, types=app.types) as node:
            return node.get_invocation(booking).status

    assert not trio.run(reopen).finished


def test_unknown_ids_and_directories(stopped: tuple[Path, str, str], tmp_path: Path) -> None:
    data, _, _ = stopped
    unknown = invoke(
        ["invocations", "show", "inv_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "--data", str(data)]
    )
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: unknown_invocation: no invocation inv_")
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = invoke(["invocations", "list", "--data", str(empty)])
    assert missing.exit_code == 2
    assert "is not a data directory" in missing.stderr
    assert sorted(p.name for p in empty.iterdir()) == []
    bad_app = invoke(["state", "get", "Desk", "r1", "--data", str(data), "--app", "nope:app"])
    assert bad_app.exit_code == 2
    assert "cannot import app module 'nope'" in bad_app.stderr


async def test_a_running_node_is_reported_with_a_hint(tmp_path: Path) -> None:
    data = tmp_path / "data"
    app = make_app()
    async with actors.open_node(data, app.instances, types=app.types) as node:
        await node.call(Desk.note, "r2", "x")
        result = await trio.to_thread.run_sync(
            functools.partial(invoke, ["state", "get", "Desk", "r2", "--data", str(data)])
        )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: a node is running on {data}")
    assert "ask it instead with --url" in result.stderr


async def test_records_read_offline_have_the_api_shape(tmp_path: Path) -> None:
    # The inspector builds its JSON records itself (no node to hand to the API's function);
    # this keeps the two shapes from drifting apart.
    data = tmp_path / "data"
    app = make_app()
    async with actors.open_node(data, app.instances, types=app.types, options=app.options) as node:
        await node.call(Desk.note, "r3", "x")
        await node.send(Desk.book, "r3", "bo")
        await node.wait_idle()
        online = [record_json(node, r) for r in node.list_invocations()]
    async with open_inspector(data, types=app.types) as inspector:
        offline = [inspector.record_json(r) for r in inspector.list_invocations()]
    assert len(online) == len(offline) == 2
    # Same fields; the same values for the finished one (the node's in-memory record of the
    # waiting one is newer than its stored record).
    assert [list(r) for r in offline] == [list(r) for r in online]
    assert [r for r in offline if r["handler"] == "note"] == [
        r for r in online if r["handler"] == "note"
    ]
