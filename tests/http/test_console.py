"""The web console's pages over a real server and client (no browser): what each page shows,
the filters, the mailbox order, the token flow, the security headers, and hostile keys, state
and journal entries rendered as text. The browser test is `test_console_browser.py`."""

from __future__ import annotations

import re
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
from actors._http._console import CONTENT_SECURITY_POLICY
from actors._journal import Entry, EntryKind
from actors.testing import open_memory_node, open_test_node
from examples.checkout_saga import TYPES, Checkout, Clients, Order, app

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

TOKEN = "console-token_1"
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
HOSTILE = SCRIPT + ATTRIBUTE
RAW_MARKUP = ("<script>alert", "<img src=x", "onerror=alert(1)>")
"""What must never appear unescaped in a page."""


@actors.virtual_object
class Notes:
    """Stores whatever it is given: hostile state names and values, step names, errors."""

    @actors.exclusive
    async def write(self, ctx: actors.ObjectContext, name: str, value: object) -> object:
        ctx.set(name, value)
        return value

    @actors.exclusive
    async def refuse(self, ctx: actors.ObjectContext, message: str) -> None:
        raise actors.TerminalError(message, code=422)

    @actors.exclusive
    async def step_then_wait(self, ctx: actors.ObjectContext, name: str, value: object) -> None:
        await ctx.run(name, lambda: value)
        await ctx.awakeable().wait()  # needs outside help: `wait_idle` returns


def order(customer: str, *items: str) -> Order:
    return Order(
        customer=customer,
        email=f"{customer}@example.com",
        items=items or ("apple",),
        amount_cents=500,
        warehouse="north",
    )


@attrs.define
class Site:
    node: actors.Node
    world: Clients
    client: httpx.AsyncClient
    base: str


async def _open_site(path: Path, token: str | None = None) -> AsyncIterator[Site]:
    world = Clients()
    world.inventory.stock.update({"apple": 10, "pear": 2})
    world.payments.declined.add("bob")
    options = actors.NodeOptions(
        retry_policy=actors.RetryPolicy(initial_interval=timedelta(milliseconds=5), max_attempts=2),
        completed_retention=timedelta(hours=1),
        seed=11,
    )
    async with (
        open_test_node(path, [*app(world), Notes()], types=TYPES, options=options) as node,
        trio.open_nursery() as nursery,
    ):
        from actors._http._site import serve_node

        port = await nursery.start(partial(serve_node, node, port=0, token=token))
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            yield Site(node=node, world=world, client=client, base=base)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async for s in _open_site(tmp_path / "node"):
        yield s


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Site]:
    async for s in _open_site(tmp_path / "node", token=TOKEN):
        yield s


async def _sagas(site: Site) -> tuple[str, str, str]:
    """A completed saga, a compensated one, and one paused in its email step: their ids."""
    node = site.node
    done = await node.send(Checkout.place, "order-1", order("alice"))
    declined = await node.send(Checkout.place, "order-2", order("bob"))
    await node.wait_idle()
    site.world.mailer.flaky = 1_000
    paused = await node.send(Checkout.place, "order-3", order("carol", "pear"))
    await node.wait_idle()
    assert node.get_invocation(paused).status is actors.InvocationStatus.PAUSED
    return done, declined, paused


def _page(response: httpx.Response, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    return response.text


def _rows(text: str, table: str) -> list[str]:
    body = text.split(f'id="{table}"', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    return re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)


# ------------------------------------------------------------------------------ pages


async def test_list_shows_every_saga_with_links(site: Site) -> None:
    done, declined, paused = await _sagas(site)
    text = _page(await site.client.get("/ui"))
    for invocation_id in (done, declined, paused):
        assert f'href="/ui/invocations/{invocation_id}"' in text
    for key in ("order-1", "order-2", "order-3"):
        assert f'href="/ui/actors/Checkout/{key}"' in text
    # The fulfillment request the completed saga sent is listed too, newest first.
    rows = _rows(text, "invocations")
    assert len(rows) == 4
    assert paused in rows[0]
    assert "paused" in rows[0]
    assert "TimeoutError: mail server timed out" in rows[0]
    assert 'href="/ui/app.js"' not in text  # a script element, not a link
    assert '<script src="/ui/app.js" defer></script>' in text
    assert 'id="live" data-refresh="3"' in text


async def test_list_filters(site: Site) -> None:
    done, declined, paused = await _sagas(site)
    c = site.client

    async def ids(**query: str) -> set[str]:
        text = _page(await c.get("/ui", params=query))
        found = set(re.findall(r'href="/ui/invocations/(inv_\w+)"', text))
        return found

    assert await ids(status="paused") == {paused}
    assert await ids(status="completed", actor="Checkout") == {done, declined}
    assert await ids(key="order-2") == {declined}
    assert await ids(handler="request") == set(await ids(actor="Fulfillment"))
    assert len(await ids(handler="request")) == 1
    assert len(await ids(limit="2")) == 2
    assert await ids(actor="Checkout", key="nobody") == set()
    # The form shows the filters in force.
    text = _page(await c.get("/ui", params={"status": "paused", "key": "order-3"}))
    assert '<option value="paused" selected>paused</option>' in text
    assert 'name="key" id="filter-key" value="order-3"' in text
    # Bad filters: a 400 page that says what is allowed.
    text = _page(await c.get("/ui", params={"status": "sleepy"}), 400)
    assert "unknown status &#x27;sleepy&#x27;; use one of: scheduled, inbox" in text
    text = _page(await c.get("/ui", params={"limit": "0"}), 400)
    assert "limit must be an integer from 1 to 10000" in text


async def test_invocation_page_of_a_paused_saga(site: Site) -> None:
    _, _, paused = await _sagas(site)
    text = _page(await site.client.get(f"/ui/invocations/{paused}"))
    # Its journal: the two steps that were recorded, each with its time and attempts.
    steps = re.findall(r'<li class="run" data-step="(\w+)">', text)
    assert steps == ["reserve", "charge"]
    assert text.count("1 attempt</span>") == 2
    assert "&quot;res-order-3&quot;" in text and "&quot;ch-order-3&quot;" in text
    assert 'class="duration"' in text
    # Where it stopped, and why.
    assert "last error: TimeoutError: mail server timed out" in text
    # Its arguments, decoded; no output yet.
    assert "&quot;customer&quot;: &quot;carol&quot;" in text
    assert "Not finished yet." in text
    # Buttons that apply to a paused invocation, posting to the API.
    assert f'data-action-url="/invocations/{paused}/resume"' in text
    assert f'data-action-url="/invocations/{paused}/kill"' in text
    assert f'data-action-url="/invocations/{paused}/cancel"' in text
    assert "/pause" not in text
    assert 'href="/ui/actors/Checkout/order-3"' in text


async def test_invocation_page_of_finished_sagas(site: Site) -> None:
    done, declined, _ = await _sagas(site)
    text = _page(await site.client.get(f"/ui/invocations/{done}"))
    assert "&quot;stage&quot;: &quot;completed&quot;" in text
    # Retained, a finished saga keeps its journal: the steps it took, in order.
    steps = re.findall(r'<span class="step">([\w.]+)</span>', text)
    assert steps == ["reserve", "charge", "email", "Fulfillment.request"], steps
    assert "data-action-url" not in text
    text = _page(await site.client.get(f"/ui/invocations/{declined}"))
    assert "&quot;reason&quot;: &quot;card declined&quot;" in text
    assert "&quot;re-ch-order-2&quot;" not in text  # the charge was declined: nothing to refund
    assert "&quot;rel-res-order-2&quot;" in text  # the reservation was released


async def test_actor_page_state_and_mailbox_in_order(site: Site) -> None:
    _, _, paused = await _sagas(site)
    # Two more on the paused saga's key queue behind it; a shared one does not queue.
    second = await site.node.send(Checkout.place, "order-3", order("carol", "pear"))
    third = await site.node.send(Checkout.place, "order-3", order("carol", "pear"))
    text = _page(await site.client.get("/ui/actors/Checkout/order-3"))
    state = _rows(text, "state")
    assert [re.search(r'mono">(\w+)<', row).group(1) for row in state] == [  # type: ignore[union-attr]
        "order",
        "stage",
    ]
    mailbox = _rows(text, "mailbox")
    assert [re.search(r"/ui/invocations/(inv_\w+)", r).group(1) for r in mailbox] == [  # type: ignore[union-attr]
        paused,
        second,
        third,
    ]
    assert "paused" in mailbox[0] and "inbox" in mailbox[1] and "inbox" in mailbox[2]
    assert 'id="finished"' in text
    # Once the paused one is killed, the queue moves on and the page says so.
    site.world.mailer.flaky = 0
    await site.node.kill(paused)
    await site.node.wait_idle()
    text = _page(await site.client.get("/ui/actors/Checkout/order-3"))
    assert "Empty: nothing is running or queued." in text
    finished = _rows(text, "finished")
    assert len(finished) == 3
    assert "killed" in finished[-1]


async def test_a_fulfillment_actor_page(site: Site) -> None:
    await _sagas(site)
    text = _page(await site.client.get("/ui/actors/Fulfillment/north"))
    assert "&quot;order-1&quot;" in text  # its state: the requested order ids
    assert "Empty: nothing is running or queued." in text


async def test_unknown_things_are_404_pages(site: Site) -> None:
    c = site.client
    text = _page(await c.get("/ui/invocations/inv_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 404)
    assert "unknown invocation" in text
    text = _page(await c.get("/ui/invocations/nonsense"), 404)
    text = _page(await c.get("/ui/actors/Nope/x"), 404)
    assert "registered types: Checkout, Fulfillment, Notes" in text
    text = _page(await c.get(f"/ui/actors/Checkout/{'k' * 300}"), 400)
    assert "invalid key" in text


async def test_assets(site: Site) -> None:
    js = await site.client.get("/ui/app.js")
    assert js.status_code == 200
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "innerHTML" not in js.text.replace("never innerHTML", "")
    css = await site.client.get("/ui/style.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"


# ------------------------------------------------------------------------------ hostile input


async def test_hostile_keys_state_and_steps_are_escaped_on_every_page(site: Site) -> None:
    node = site.node
    await node.call(Notes.write, HOSTILE, HOSTILE, {HOSTILE: [HOSTILE]})
    await node.call(Notes.write, HOSTILE, "plain", HOSTILE)
    with pytest.raises(actors.TerminalError):
        await node.call(Notes.refuse, HOSTILE, HOSTILE)
    waiting = await node.send(Notes.step_then_wait, HOSTILE, HOSTILE, HOSTILE)
    await node.wait_idle()
    records = node.list_invocations(actor_type="Notes")
    assert len(records) == 4
    encoded_key = quote(HOSTILE, safe="")
    pages = [
        "/ui",
        f"/ui?key={quote(HOSTILE)}",
        f"/ui?handler={quote(HOSTILE)}&actor={quote(HOSTILE)}",
        f"/ui?status={quote(HOSTILE)}",
        f"/ui/actors/Notes/{encoded_key}",
        *(f"/ui/invocations/{r.id}" for r in records),
    ]
    for path in pages:
        response = await site.client.get(path)
        assert response.status_code in (200, 400), path
        text = _page(response, response.status_code)
        for raw in RAW_MARKUP:
            assert raw not in text, (path, raw)
    # The hostile text is there, as text.
    actor_page = (await site.client.get(f"/ui/actors/Notes/{encoded_key}")).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x" in actor_page
    assert f'href="/ui/actors/Notes/{encoded_key}"' in (await site.client.get("/ui")).text
    journal_page = (await site.client.get(f"/ui/invocations/{waiting}")).text
    assert 'data-step="&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img' in journal_page
    assert "<pre>&quot;&lt;script&gt;alert(1)&lt;/script&gt;\\&quot;&gt;" in journal_page
    # A reflected filter value stays inside its attribute.
    listed = (await site.client.get("/ui", params={"key": HOSTILE})).text
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x' in listed


# ------------------------------------------------------------------------------ token


async def test_token_cookie_flow(guarded: Site) -> None:
    c = guarded.client
    _, _, paused = await _sagas(guarded)
    # No token: an HTML page that says how to sign in (every page, not only /ui).
    for path in ("/ui", f"/ui/invocations/{paused}", "/ui/actors/Checkout/order-3"):
        text = _page(await c.get(path), 401)
        assert "/ui?token=YOUR_TOKEN" in text
    text = _page(await c.get("/ui", params={"token": "wrong"}), 401)
    assert "wrong token" in text
    assert "set-cookie" not in (await c.get("/ui", params={"token": "wrong"})).headers
    # The assets need no token (they hold nothing secret), the API still does.
    assert (await c.get("/ui/app.js")).status_code == 200
    assert (await c.get("/invocations")).status_code == 401
    # ?token= sets the cookie and redirects to the same page without it, filters kept.
    response = await c.get(
        f"/ui/invocations/{paused}", params={"token": TOKEN, "x": "1"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/ui/invocations/{paused}?x=1"
    cookie = response.headers["set-cookie"]
    assert cookie == f"actors_token={TOKEN}; Path=/; HttpOnly; SameSite=Strict"
    response = await c.get("/ui", params={"token": TOKEN}, follow_redirects=False)
    assert response.headers["location"] == "/ui"
    # With the cookie: the pages, and the API the buttons post to.
    cookies = {"actors_token": TOKEN}
    async with httpx.AsyncClient(base_url=guarded.base, cookies=cookies, timeout=10) as browser:
        text = _page(await browser.get("/ui"))
        assert paused in text
        guarded.world.mailer.flaky = 0
        resumed = await browser.post(f"/invocations/{paused}/resume")
        assert resumed.status_code == 202, resumed.text
        await guarded.node.wait_idle()
        text = _page(await browser.get(f"/ui/invocations/{paused}"))
        assert "&quot;stage&quot;: &quot;completed&quot;" in text
    # A bearer header works for the pages too.
    headers = {"authorization": f"Bearer {TOKEN}"}
    assert (await c.get("/ui", headers=headers)).status_code == 200


async def test_a_token_that_a_cookie_cannot_hold_is_explained(tmp_path: Path) -> None:
    async for s in _open_site(tmp_path / "node", token="has space;semi"):
        response = await s.client.get("/ui", params={"token": "has space;semi"})
        text = _page(response, 400)
        assert "characters a cookie cannot hold" in text
        assert "set-cookie" not in response.headers


# ------------------------------------------------------------------------------ journal times


async def test_journal_entries_record_time_and_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    world = Clients()
    world.inventory.stock.update({"pear": 1})
    world.payments.unreachable = 2  # the charge step retries in place: 1 s, then 2 s
    world.mailer.flaky = 1_000
    options = actors.NodeOptions(
        retry_policy=actors.RetryPolicy(initial_interval=timedelta(seconds=10), max_attempts=2)
    )
    async with open_memory_node(app(world), types=TYPES, options=options) as node:
        invocation_id = await node.send(Checkout.place, "o1", order("carol", "pear"))
        await node.wait_idle()
        record = node.get_invocation(invocation_id)
        assert record.status is actors.InvocationStatus.PAUSED
        journal = node.get_journal(invocation_id)
    assert [(e.kind, e.name, e.attempts) for e in journal] == [
        ("run", "reserve", 1),
        ("run", "charge", 3),
    ]
    reserved, charged = (e.recorded_at for e in journal)
    assert reserved is not None and charged is not None
    assert reserved == record.created
    assert charged - reserved == timedelta(seconds=3)


def test_journal_entries_stored_without_time_still_decode() -> None:
    old = {"v": 1, "kind": "run", "name": "reserve", "value": b"\x01", "failure": None}
    entry = Entry.from_wire(0, old)
    assert (entry.at, entry.attempts) == (None, None)
    new = Entry(index=0, kind=EntryKind.RUN, name="x", value=b"", at=5, attempts=2)
    assert Entry.from_wire(0, new.to_wire()) == new
