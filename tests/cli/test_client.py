"""The client commands against a real node served over HTTP on 127.0.0.1."""

from __future__ import annotations

import functools
import json
import re

import pytest
import trio

import actors

from .app import Ticket
from .conftest import TOKEN, Served, invoke

WAITING = ("running", "suspended")


async def suspended_booking(served: Served, holder: str) -> str:
    """Book a desk: the handler journals its `issue` step, then waits on an awakeable."""
    result = await served.cli("send", f"Desk/{holder}/book", json.dumps([holder]))
    assert result.exit_code == 0, result.output
    invocation_id: str = json.loads(result.stdout)["invocation_id"]
    await served.node.wait_idle()
    # Waiting in memory or already suspended (it suspends right after it starts to wait).
    assert served.node.get_invocation(invocation_id).status.value in WAITING
    return invocation_id


async def test_call_a_keyed_handler_and_a_service(served: Served) -> None:
    first = await served.cli("call", "Desk/d1/note", '["a"]')
    second = await served.cli("call", "Desk/d1/note", '{"text": "b"}')
    greeting = await served.cli("call", "Greeter/greet", '["ann"]')
    assert (first.exit_code, json.loads(first.stdout)) == (0, 1)
    assert (second.exit_code, json.loads(second.stdout)) == (0, 2)
    assert (greeting.exit_code, json.loads(greeting.stdout)) == (0, "hello ann")
    assert served.node.get_state("Desk", "d1") == {"notes": ["a", "b"]}


async def test_keys_with_slashes_and_spaces_travel_intact(served: Served) -> None:
    result = await served.cli("call", "Desk/a b/c%d/note", '["x"]')
    assert result.exit_code == 0, result.output
    assert served.node.get_state("Desk", "a b/c%d") == {"notes": ["x"]}


async def test_send_is_idempotent_by_key_and_can_be_delayed(served: Served) -> None:
    args = ("send", "Desk/d2/note", '["once"]', "--idempotency-key", "k1")
    first = json.loads((await served.cli(*args)).stdout)["invocation_id"]
    again = json.loads((await served.cli(*args)).stdout)["invocation_id"]
    assert first == again
    await served.node.wait_idle()
    assert served.node.get_state("Desk", "d2") == {"notes": ["once"]}

    later = await served.cli("send", "Desk/d2/note", '["later"]', "--delay", "1h")
    assert later.exit_code == 0, later.output
    listed = await served.cli("invocations", "list", "--status", "scheduled", "--json")
    records = json.loads(listed.stdout)
    assert [r["id"] for r in records] == [json.loads(later.stdout)["invocation_id"]]
    assert records[0]["not_before"] is not None


async def test_state_get_and_list(served: Served) -> None:
    await served.cli("call", "Desk/d3/note", '["x"]')
    await suspended_booking(served, "d3")
    everything = await served.cli("state", "get", "Desk", "d3")
    assert json.loads(everything.stdout) == {
        "notes": ["x"],
        "ticket": {"number": 2, "holder": "d3"},
    }
    one = await served.cli("state", "get", "Desk", "d3", "notes")
    assert json.loads(one.stdout) == ["x"]
    names = await served.cli("state", "list", "Desk", "d3")
    assert names.stdout.split() == ["notes", "ticket"]
    missing = await served.cli("state", "get", "Desk", "d3", "nope")
    assert missing.exit_code == 1
    assert "has no state 'nope' (it has: notes, ticket)" in missing.stderr


async def test_invocations_list_as_a_table_and_as_json(served: Served) -> None:
    booking = await suspended_booking(served, "d4")
    await served.cli("call", "Greeter/greet", '["bob"]')
    table = await served.cli("invocations", "list", "--actor", "Desk/d4")
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.strip().splitlines()
    assert header.split() == ["id", "actor", "handler", "status", "attempts", "created", "error"]
    assert len(rows) == 1
    assert rows[0].split()[:3] == [booking, "Desk/d4", "book"]
    assert rows[0].split()[3] in WAITING

    listed = json.loads((await served.cli("invocations", "list", "--json")).stdout)
    assert {(r["actor_type"], r["handler"], r["status"] in WAITING) for r in listed} == {
        ("Desk", "book", True),
        ("Greeter", "greet", False),
    }
    greeter = await served.cli("invocations", "list", "--handler", "greet", "--json")
    assert [r["result"] for r in json.loads(greeter.stdout)] == ["hello bob"]
    none = await served.cli("invocations", "list", "--status", "paused")
    assert (none.exit_code, none.stdout, none.stderr.strip()) == (0, "", "no invocations")


async def test_invocations_show_prints_the_journal_as_a_timeline(served: Served) -> None:
    booking = await suspended_booking(served, "d5")
    shown = await served.cli("invocations", "show", booking)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].split() == [booking, "Desk/d5.book"]
    assert re.search(r"^  status +(running|suspended)$", shown.stdout, re.MULTILINE)
    assert 'args             ["d5"]' in shown.stdout
    header = next(line for line in lines if line.startswith("#"))
    assert header.split()[:3] == ["#", "kind", "name"]
    assert header.split()[-3:] == ["result", "/", "error"]
    rows = [line.split() for line in lines[lines.index(header) + 1 :] if line.strip()]
    assert [row[:2] for row in rows] == [["0", "run"], ["1", "awakeable"]]
    assert rows[0][2] == "issue"
    assert " ".join(rows[0]).endswith('{"number": 2, "holder": "d5"}')
    as_json = json.loads((await served.cli("invocations", "show", booking, "--json")).stdout)
    assert as_json["invocation"]["id"] == booking
    assert [e["kind"] for e in as_json["journal"]] == ["run", "awakeable"]
    assert as_json["journal"][0]["value"] == {"number": 2, "holder": "d5"}
    journal = json.loads((await served.cli("journal", "show", booking, "--json")).stdout)
    assert journal == as_json["journal"]


async def test_the_timeline_shows_awakeable_ids_to_resolve_or_reject(served: Served) -> None:
    booking = await suspended_booking(served, "d8")
    shown = await served.cli("invocations", "show", booking)
    row = next(line for line in shown.stdout.splitlines() if line.split()[:2] == ["1", "awakeable"])
    awakeable_id = row.split()[-1]
    assert awakeable_id.startswith("awk_")
    resolved = await served.cli("awakeable", "resolve", awakeable_id)
    assert resolved.exit_code == 0, resolved.output
    assert await served.node.attach(booking) == Ticket(number=2, holder="d8")

    other = await suspended_booking(served, "d9")
    shown = await served.cli("invocations", "show", other, "--json")
    assert json.loads(shown.stdout)["journal"][1]["kind"] == "awakeable"
    timeline = (await served.cli("invocations", "show", other)).stdout
    awakeable_id = next(w for w in timeline.split() if w.startswith("awk_"))
    rejected = await served.cli("awakeable", "reject", awakeable_id, "no desk", "--code", "409")
    assert rejected.exit_code == 0, rejected.output
    with pytest.raises(actors.TerminalError, match="no desk"):
        await served.node.attach(other)
    unknown = await served.cli("awakeable", "resolve", "awk_nothing", "1")
    assert unknown.exit_code == 1
    bad_value = await served.cli("awakeable", "resolve", awakeable_id, "not json")
    assert bad_value.exit_code == 2


async def test_lifecycle_commands(served: Served) -> None:
    booking = await suspended_booking(served, "d6")
    paused = await served.cli("invocations", "pause", booking)
    # A suspended invocation pauses at once, one waiting in memory just after the answer.
    assert paused.exit_code == 0, paused.output
    assert re.fullmatch(
        rf"{booking}: pause accepted \(status now (running|paused)\)", paused.stdout.strip()
    )
    await served.node.wait_idle()
    shown = await served.cli("invocations", "show", booking)
    assert "status           paused" in shown.stdout
    assert "last error       paused by an operator" in shown.stdout
    again = await served.cli("invocations", "pause", booking)
    assert again.exit_code == 1
    assert "already paused" in again.stderr
    resumed = await served.cli("invocations", "resume", booking)
    assert resumed.exit_code == 0, resumed.output
    await served.node.wait_idle()
    killed = await served.cli("invocations", "kill", booking)
    assert killed.exit_code == 0, killed.output
    assert killed.stdout.startswith(f"{booking}: kill accepted (status now ")
    await served.node.wait_idle()
    assert served.node.get_invocation(booking).status is actors.InvocationStatus.KILLED

    # cancel: the handler gets the cancellation at its wait and fails with it.
    slow = await suspended_booking(served, "d7")
    cancelled = await served.cli("invocations", "cancel", slow)
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout.startswith(f"{slow}: cancel accepted (status now ")
    await served.node.wait_idle()
    record = served.node.get_invocation(slow)
    assert record.status is actors.InvocationStatus.COMPLETED
    assert record.failure is not None


async def test_start_a_workflow_run(served: Served) -> None:
    started = await served.cli("start", "Signup/ann", '["ann@example.com"]')
    assert started.exit_code == 0, started.output
    run_id = json.loads(started.stdout)["invocation_id"]
    resolved = await served.cli("promise", "resolve", "Signup/ann/confirmed", '"yes"')
    assert resolved.exit_code == 0, resolved.output
    assert await served.node.attach(run_id) == "welcome ann@example.com (yes)"
    again = await served.cli("promise", "resolve", "Signup/ann/confirmed", '"no"')
    assert again.exit_code == 1
    assert again.stderr.startswith("error: ")
    bob = json.loads((await served.cli("start", "Signup/bob", '["bob@x"]')).stdout)
    rejected = await served.cli(
        "promise", "reject", "Signup/bob/confirmed", "bounced", "--code", "422"
    )
    assert rejected.exit_code == 0, rejected.output
    with pytest.raises(actors.TerminalError, match="bounced"):
        await served.node.attach(bob["invocation_id"])
    not_a_workflow = await served.cli("start", "Desk/k")
    assert not_a_workflow.exit_code == 1
    assert "Desk is not a workflow" in not_a_workflow.stderr
    no_key = await served.cli("start", "Signup")
    assert no_key.exit_code == 2


async def test_errors_are_one_red_line_with_an_exit_status(served: Served) -> None:
    unknown = await served.cli("call", "Nope/k/h")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: unknown_handler: unknown actor type 'Nope'")
    assert len(unknown.stderr.strip().splitlines()) == 1
    bad_id = await served.cli("invocations", "show", "inv_nothing")
    assert bad_id.exit_code == 1
    assert bad_id.stderr.startswith("error: ")
    bad_args = await served.cli("call", "Desk/k/note", "not json")
    assert bad_args.exit_code == 2
    assert "ARGS" in bad_args.stderr
    bad_target = await served.cli("call", "Desk")
    assert bad_target.exit_code == 2
    assert "Type/key/handler" in bad_target.stderr


async def test_a_wrong_or_missing_token_is_refused_clearly(served: Served) -> None:
    wrong = await trio.to_thread.run_sync(
        invoke, ["call", "Greeter/greet", '["x"]', "--url", served.url, "--token", "nope"]
    )
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("error: unauthorized: missing or wrong bearer token")
    assert "pass --token or set ACTORS_TOKEN" in wrong.stderr
    missing = await trio.to_thread.run_sync(
        invoke, ["state", "list", "Desk", "k", "--url", served.url]
    )
    assert missing.exit_code == 1
    assert "unauthorized" in missing.stderr


async def test_url_and_token_come_from_the_environment(served: Served) -> None:
    env = {"ACTORS_URL": served.url, "ACTORS_TOKEN": TOKEN}
    result = await trio.to_thread.run_sync(
        functools.partial(invoke, ["call", "Greeter/greet", '["env"]'], env)
    )
    assert (result.exit_code, json.loads(result.stdout)) == (0, "hello env")


def test_an_unreachable_node_is_exit_status_3_naming_the_url() -> None:
    # A port nothing listens on: bind one, note it, close it.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = invoke(["invocations", "list", "--url", url])
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: cannot connect to {url}")
