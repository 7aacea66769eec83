"""The HTTP ingress and admin API, through a real server on 127.0.0.1 and a real client.

Real sockets mean real time: these tests run on trio's real clock with short timeouts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from urllib.parse import quote

import attrs
import httpx
import pytest
import trio

import actors
from actors._http._site import serve_node
from actors.testing import open_test_node

from .http_app import TYPES, Gates, Transfer, instances

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

TOKEN = "s3cret-token"


@attrs.define
class Site:
    node: actors.Node
    client: httpx.AsyncClient
    gates: Gates
    port: int


async def _open_site(path: Path, token: str | None = None) -> AsyncIterator[Site]:
    gates = Gates()
    options = actors.NodeOptions(
        retry_policy=actors.RetryPolicy(initial_interval=timedelta(milliseconds=5), max_attempts=2),
        seed=7,
        completed_retention=timedelta(hours=1),
        suspend_after=timedelta(0),  # waits leave memory at once: wait_idle sees them
    )
    async with (
        open_test_node(path, instances(gates), types=TYPES, options=options) as node,
        trio.open_nursery() as nursery,
    ):
        port = await nursery.start(partial(serve_node, node, port=0, token=token))
        headers = {"authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=10, headers=headers
        ) as client:
            yield Site(node=node, client=client, gates=gates, port=port)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async for s in _open_site(tmp_path / "node"):
        yield s


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Site]:
    async for s in _open_site(tmp_path / "node", token=TOKEN):
        yield s


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    message: str = body["message"]
    assert message
    return message


# ------------------------------------------------------------------------------ call and send


async def test_call_with_positional_named_and_no_arguments(site: Site) -> None:
    c = site.client
    r = await c.post("/call/Ledger/alice/add", json=[5])
    assert (r.status_code, r.json()) == (200, 5)
    r = await c.post("/call/Ledger/alice/add", json={"amount": 3, "note": "gift"})
    assert (r.status_code, r.json()) == (200, 8)
    r = await c.post("/call/Ledger/alice/balance")
    assert (r.status_code, r.json()) == (200, 8)
    r = await c.get("/state/Ledger/alice")
    assert r.json() == {"state": {"balance": 8, "note": "gift"}}
    assert site.node.get_state("Ledger", "alice") == {"balance": 8, "note": "gift"}


async def test_json_objects_become_the_declared_attrs_values(site: Site) -> None:
    body = {"to": "bob", "amount": 5, "when": "2026-11-21T10:00:00+00:00", "kind": "card"}
    r = await site.client.post("/call/Ledger/amy/transfer", json=[{**body, "tags": ["x"]}])
    assert r.status_code == 200, r.text
    assert r.json() == {**body, "tags": ["x"]}
    stored = site.node.get_state("Ledger", "amy")["last_transfer"]
    assert isinstance(stored, Transfer)
    assert (stored.kind.value, stored.tags, stored.when.hour) == ("card", ("x",), 10)
    for bad, fragment in (
        ({**body, "kind": "cash"}, "expected Kind"),
        ({**body, "when": "tomorrow"}, "expected datetime"),
        ({**body, "extra": 1}, "has no field 'extra'"),
        ({"to": "bob"}, "needs the field 'amount'"),
        ("bob", "a JSON object for Transfer"),
    ):
        r = await site.client.post("/call/Ledger/amy/transfer", json={"transfer": bad})
        assert fragment in _error(r, 400, "invalid_arguments"), bad


async def test_call_a_service_without_a_key(site: Site) -> None:
    r = await site.client.post("/call/Echo/echo", json=[{"nested": [1, 2, None]}])
    assert r.json() == {"nested": [1, 2, None]}
    r = await site.client.post("/call/Echo/pair", json={"a": 4})
    assert r.json() == [4, 0]


async def test_send_returns_202_and_output_attaches(site: Site) -> None:
    r = await site.client.post("/send/Ledger/bob/add", json=[7])
    assert r.status_code == 202
    invocation_id = r.json()["invocation_id"]
    out = await site.client.get(f"/invocations/{invocation_id}/output")
    assert (out.status_code, out.json()) == (200, 7)
    record = (await site.client.get(f"/invocations/{invocation_id}")).json()
    assert record["status"] == "completed"
    assert (record["actor_type"], record["key"], record["handler"]) == ("Ledger", "bob", "add")
    assert record["args"] == ["bob", 7] or record["args"] == [7]


async def test_delayed_send_fires_after_its_delay(site: Site) -> None:
    started = time.monotonic()
    r = await site.client.post("/send/Ledger/carol/add?delay=300ms", json=[2])
    assert r.status_code == 202
    invocation_id = r.json()["invocation_id"]
    record = (await site.client.get(f"/invocations/{invocation_id}")).json()
    assert record["status"] != "completed"
    assert record["not_before"] is not None
    out = await site.client.get(f"/invocations/{invocation_id}/output")
    assert out.json() == 2
    assert time.monotonic() - started >= 0.3
    assert site.node.get_state("Ledger", "carol") == {"balance": 2}


async def test_idempotent_retry_over_http_runs_once(site: Site) -> None:
    headers = {"idempotency-key": "order-17"}
    first = await site.client.post("/call/Ledger/dave/add", json=[10], headers=headers)
    again = await site.client.post("/call/Ledger/dave/add", json=[10], headers=headers)
    assert first.json() == again.json() == 10
    sent = await site.client.post(
        "/send/Ledger/dave/add", json=[1], headers={"idempotency-key": "s"}
    )
    resent = await site.client.post(
        "/send/Ledger/dave/add", json=[1], headers={"idempotency-key": "s"}
    )
    assert sent.json()["invocation_id"] == resent.json()["invocation_id"]
    await site.client.get(f"/invocations/{sent.json()['invocation_id']}/output")
    assert site.node.get_state("Ledger", "dave") == {"balance": 11}


# ------------------------------------------------------------------ workflows and awakeables


async def test_workflow_start_attach_awakeable_and_promise_over_http(site: Site) -> None:
    c = site.client
    r = await c.post("/start/Approval/loan-1", json=[250])
    assert r.status_code == 202
    run_id = r.json()["invocation_id"]
    again = await c.post("/start/Approval/loan-1", json=[999])
    assert again.json()["invocation_id"] == run_id  # runs once per key
    await site.node.wait_idle()
    status = (await c.post("/call/Approval/loan-1/status")).json()
    assert status["stage"] == "waiting for the bank"
    outputs: list[httpx.Response] = []

    async with trio.open_nursery() as nursery:

        async def attach() -> None:
            outputs.append(await c.get(f"/invocations/{run_id}/output"))

        nursery.start_soon(attach)  # attach to the running workflow before it can finish
        await trio.sleep(0.05)
        assert outputs == []
        r = await c.post(f"/awakeables/{status['awakeable']}/resolve", json={"approved": True})
        assert r.status_code == 200, r.text
        r = await c.post(f"/awakeables/{status['awakeable']}/resolve", json=1)
        _error(r, 409, "conflict")  # completed once
        await site.node.wait_idle()
        stage = (await c.post("/call/Approval/loan-1/status")).json()["stage"]
        assert stage == "waiting for a manager"
        r = await c.post("/promises/Approval/loan-1/manager/resolve", json="yes")
        assert r.status_code == 200, r.text
    assert outputs[0].status_code == 200
    assert outputs[0].json() == {"amount": 250, "bank": {"approved": True}, "manager": "yes"}
    r = await c.post("/promises/Approval/loan-1/manager/reject", json={"message": "late"})
    _error(r, 409, "conflict")


async def test_rejected_awakeable_fails_the_workflow_with_its_code(site: Site) -> None:
    c = site.client
    run_id = (await c.post("/start/Approval/loan-2", json=[1])).json()["invocation_id"]
    await site.node.wait_idle()
    awakeable = (await c.post("/call/Approval/loan-2/status")).json()["awakeable"]
    r = await c.post(f"/awakeables/{awakeable}/reject", json={"message": "no", "code": 403})
    assert r.status_code == 200, r.text
    out = await c.get(f"/invocations/{run_id}/output")
    assert _error(out, 403, "terminal_error") == "no"


# --------------------------------------------------------------------------------- lifecycle


async def test_list_get_and_journal_of_invocations(site: Site) -> None:
    c = site.client
    for amount in (1, 2, 3):
        await c.post("/call/Ledger/erin/add", json=[amount])
    await c.post("/call/Echo/echo", json=["x"])
    held = (await c.post("/send/Ledger/frank/hold")).json()["invocation_id"]
    await site.gates.entered.wait()
    await site.node.wait_idle()
    listing = (await c.get("/invocations", params={"actor": "Ledger", "key": "erin"})).json()
    assert [r["handler"] for r in listing["invocations"]] == ["add", "add", "add"]
    assert [r["args"][-1] for r in listing["invocations"]] == [3, 2, 1]  # newest first
    limited = (await c.get("/invocations", params={"handler": "add", "limit": "2"})).json()
    assert len(limited["invocations"]) == 2
    running = (await c.get("/invocations", params={"status": "suspended"})).json()
    assert [r["id"] for r in running["invocations"]] == [held]
    journal = (await c.get(f"/invocations/{held}/journal")).json()["entries"]
    assert [e["kind"] for e in journal] == ["awakeable"]
    actors_listing = (await c.get("/actors")).json()["actors"]
    assert actors_listing["Ledger"]["handlers"]["balance"] == "shared"
    assert actors_listing["Echo"]["kind"] == "service"


async def test_cancel_kill_pause_resume_over_http(site: Site) -> None:
    c = site.client
    held = (await c.post("/send/Ledger/gina/hold")).json()["invocation_id"]
    await site.gates.entered.wait()
    r = await c.post(f"/invocations/{held}/cancel")
    assert r.status_code == 202, r.text
    out = await c.get(f"/invocations/{held}/output")
    _error(out, 409, "terminal_error")  # InvocationCancelled is terminal, code 409
    record = (await c.get(f"/invocations/{held}")).json()
    assert record["status"] == "completed"  # with a terminal failure
    assert record["failure"]["error_type"] == "InvocationCancelled"

    site.gates.entered = trio.Event()
    doomed = (await c.post("/send/Ledger/hank/hold")).json()["invocation_id"]
    await site.gates.entered.wait()
    r = await c.post(f"/invocations/{doomed}/kill")
    assert r.status_code == 202, r.text
    _error(await c.get(f"/invocations/{doomed}/output"), 409, "invocation_killed")
    assert (await c.get(f"/invocations/{doomed}")).json()["status"] == "killed"

    site.gates.failures_left = 5
    flaky = await c.post("/call/Ledger/ivan/flaky")
    message = _error(flaky, 409, "invocation_paused")
    paused_id = next(word for word in message.split() if word.startswith("inv_"))
    assert (await c.get(f"/invocations/{paused_id}")).json()["status"] == "paused"
    site.gates.failures_left = 0
    r = await c.post(f"/invocations/{paused_id}/resume")
    assert r.status_code == 202, r.text
    assert (await c.get(f"/invocations/{paused_id}/output")).json() == "ok"
    # finished: nothing to resume (the node reports it as not active)
    _error(await c.post(f"/invocations/{paused_id}/resume"), 404, "unknown_invocation")


# ------------------------------------------------------------------------------------ errors


async def test_error_codes(site: Site) -> None:
    c = site.client
    await c.post("/call/Ledger/canary/add", json=[42])
    cases: list[tuple[httpx.Response, int, str]] = [
        (await c.post("/call/Nope/k/add", json=[]), 404, "unknown_handler"),
        (await c.post("/call/Ledger/k/nope", json=[]), 404, "unknown_handler"),
        (await c.post("/call/Ledger/add", json=[1]), 404, "unknown_route"),
        (await c.post("/call/Echo/k/echo", json=[1]), 404, "unknown_route"),
        (await c.get("/invocations/inv_" + "a" * 32), 404, "unknown_invocation"),
        (await c.get("/invocations/not-an-id"), 404, "unknown_invocation"),
        (await c.get("/no/such/route"), 404, "unknown_route"),
        (await c.get("/call/Ledger/k/add"), 405, "method_not_allowed"),
        (await c.post("/call/Ledger/k/add", content=b"[1,"), 400, "invalid_json"),
        (await c.post("/call/Ledger/k/add", content=b"\xff\xfe"), 400, "invalid_json"),
        (await c.post("/call/Ledger/k/add", json=["five"]), 400, "invalid_arguments"),
        (await c.post("/call/Ledger/k/add", json=[1, "a", 3]), 400, "invalid_arguments"),
        (await c.post("/call/Ledger/k/add", json={"amount": 1, "x": 2}), 400, "invalid_arguments"),
        (await c.post("/call/Ledger/k/add", json={"note": "n"}), 400, "invalid_arguments"),
        (await c.post("/call/Ledger/k/add", json="5"), 400, "invalid_arguments"),
        (await c.post("/call/Ledger/k/refuse"), 422, "terminal_error"),
        (await c.post("/send/Ledger/k/add?delay=soon", json=[1]), 400, "invalid_delay"),
        (await c.get("/invocations?status=bogus"), 400, "invalid_status"),
        (await c.get("/invocations?limit=0"), 400, "invalid_limit"),
        (await c.post("/start/Ledger/k", json=[]), 404, "unknown_handler"),
        (await c.post("/awakeables/awk_nope/resolve", json=1), 404, "unknown_invocation"),
        (await c.post("/awakeables/awk_x/resolve"), 400, "invalid_arguments"),
        (await c.post("/awakeables/awk_x/reject", json=[1]), 400, "invalid_arguments"),
        (await c.post("/promises/Ledger/k/p/resolve", json=1), 404, "unknown_handler"),
        (await c.post("/call/Ledger/k/add", json=[1], headers={"idempotency-key": "x" * 300}),
         400, "invalid_idempotency_key"),
        (await c.post("/call/Ledger/k/add", content=b"[" + b"1," * 9 + b"1]"),
         400, "invalid_arguments"),
    ]  # fmt: skip
    for response, status, code in cases:
        _error(response, status, code)
    r = await c.post("/call/Ledger/k/add", content=b"[" * 100_000 + b"]" * 100_000)
    assert "deeper than" in _error(r, 400, "invalid_json")
    r = await c.post("/call/Ledger/k/add", content=b"x" * (4 * 1024 * 1024 + 1))
    _error(r, 413, "payload_too_large")
    assert site.node.get_state("Ledger", "canary") == {"balance": 42}
    assert site.node.get_state("Ledger", "k") == {}


async def test_keys_are_opaque_text_never_paths(site: Site) -> None:
    c = site.client
    for key in ("../../etc/passwd", "a/b", "<script>alert(1)</script>", "ключ 🔑", "%2e%2e"):
        path = f"/call/Ledger/{quote(key, safe='')}/add"
        r = await c.post(path, json=[1])
        assert (r.status_code, r.json()) == (200, 1), (key, r.text)
        state = await c.get(f"/state/Ledger/{quote(key, safe='')}")
        assert state.json() == {"state": {"balance": 1}}
        assert site.node.get_state("Ledger", key) == {"balance": 1}
    r = await c.post("/call/Ledger/%FF%FE/add", json=[1])
    _error(r, 400, "invalid_path")
    r = await c.post("/call/Ledger/" + "k" * 600 + "/add", json=[1])
    _error(r, 400, "invalid_key")


async def test_bearer_token_guards_everything_but_health(guarded: Site) -> None:
    base = f"http://127.0.0.1:{guarded.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as anonymous:
        assert (await anonymous.get("/health")).status_code == 200
        for method, path in (
            ("POST", "/call/Ledger/a/add"),
            ("GET", "/invocations"),
            ("GET", "/state/Ledger/a"),
            ("POST", "/invocations/inv_x/kill"),
            ("GET", "/no/such/route/at/all/x"),
        ):
            r = await anonymous.request(method, path, json=[1])
            if path.startswith("/no/"):
                _error(r, 404, "unknown_route")  # routing first: unknown is unknown
                continue
            _error(r, 401, "unauthorized")
            assert r.headers["www-authenticate"].startswith("Bearer")
            wrong = await anonymous.request(
                method, path, json=[1], headers={"authorization": "Bearer nope"}
            )
            _error(wrong, 401, "unauthorized")
    assert guarded.node.get_state("Ledger", "a") == {}
    r = await guarded.client.post("/call/Ledger/a/add", json=[1])
    assert r.json() == 1
