"""``GET /metrics`` on a real node served on 127.0.0.1: calls, sends, a terminal failure, a
failing-then-retried handler, a suspended workflow, a queue behind a held key and a delayed
send, each checked in the scraped numbers (parsed with prometheus_client's own parser)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import attrs
import httpx
import prometheus_client
import trio
from prometheus_client.parser import text_string_to_metric_families

import actors
from actors._http._metrics import CONTENT_TYPE
from actors._http._site import serve_node
from actors._observe import DURATION_BUCKETS, Histogram

TOKEN = "metrics-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@attrs.define
class Gates:
    """Lets the test hold a handler mid-flight and make another fail on demand."""

    entered: trio.Event = attrs.field(factory=trio.Event)
    release: trio.Event = attrs.field(factory=trio.Event)
    failures_left: int = 0


@actors.virtual_object
class Account:
    """A balance per key, with handlers that fail, retry and block."""

    def __init__(self, gates: Gates) -> None:
        self.gates = gates

    @actors.exclusive
    async def add(self, ctx: actors.ObjectContext, amount: int) -> int:
        balance: int = ctx.get("balance", default=0) + amount
        ctx.set("balance", balance)
        return balance

    @actors.exclusive
    async def refuse(self, ctx: actors.ObjectContext) -> None:
        raise actors.TerminalError("insufficient funds", code=422)

    @actors.exclusive
    async def flaky(self, ctx: actors.ObjectContext) -> str:
        # The step commits first, so the retry replays it.
        await ctx.run("fetch", lambda: "fetched")
        if self.gates.failures_left > 0:
            self.gates.failures_left -= 1
            raise RuntimeError("the bank is down")
        return "ok"

    @actors.exclusive
    async def hold(self, ctx: actors.ObjectContext) -> str:
        self.gates.entered.set()
        await self.gates.release.wait()
        return "held"


@actors.workflow
class Approval:
    """Takes a step, then waits for a durable promise (suspended meanwhile)."""

    @actors.run
    async def run(self, ctx: actors.WorkflowContext) -> str:
        await ctx.run("notify", lambda: None)  # journaled, so the wake-up replays it
        decision: str = await ctx.promise("decision").wait()
        return decision


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@asynccontextmanager
async def _served(path: Path, gates: Gates) -> AsyncIterator[tuple[actors.Node, httpx.AsyncClient]]:
    options = actors.NodeOptions(
        retry_policy=actors.RetryPolicy(initial_interval=timedelta(milliseconds=1)),
        suspend_after=timedelta(0),
        completed_retention=timedelta(hours=1),  # the admin routes answer with the record
    )
    async with (
        actors.open_node(path, [Account(gates), Approval()], options=options) as node,
        trio.open_nursery() as nursery,
    ):
        port = await nursery.start(functools.partial(serve_node, node, port=0, token=TOKEN))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as client:
            yield node, client
        nursery.cancel_scope.cancel()


async def _scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    return _parse(response.text)


async def test_metrics_count_what_the_node_did(tmp_path: Path) -> None:
    gates = Gates(failures_left=1)
    with trio.fail_after(20):
        async with _served(tmp_path, gates) as (node, client):
            before = await _scrape(client)
            assert _get(before, "actors_replays_total") == 0
            assert _get(before, "actors_invocations", status="running") == 0
            assert ("actors_handler_duration_seconds_count", frozenset()) not in before

            for amount in (1, 2, 3):
                response = await client.post("/call/Account/a/add", json=[amount])
                assert response.status_code == 200
            sent = await client.post("/send/Account/b/add", json=[10])
            assert sent.status_code == 202
            refused = await client.post("/call/Account/a/refuse")
            assert refused.status_code == 422
            flaky = await client.post("/call/Account/a/flaky")
            assert flaky.json() == "ok"
            started = await client.post("/start/Approval/w1")
            assert started.status_code == 202
            await node.wait_idle()

            after = await _scrape(client)
            adds = {"type": "Account", "handler": "add"}
            # Three calls and one send of `add`, each counted once, each in the histogram.
            assert (
                _get(after, "actors_invocations_finished_total", **adds, outcome="succeeded") == 4
            )
            assert _get(after, "actors_handler_duration_seconds_count", **adds) == 4
            assert _get(after, "actors_handler_duration_seconds_bucket", **adds, le="+Inf") == 4
            assert 0 < _get(after, "actors_handler_duration_seconds_sum", **adds) < 20
            buckets = [
                _get(after, "actors_handler_duration_seconds_bucket", **adds, le=repr(bound))
                for bound in DURATION_BUCKETS
            ]
            assert buckets == sorted(buckets) and buckets[-1] == 4
            refuse = {"type": "Account", "handler": "refuse"}
            assert _get(after, "actors_invocations_finished_total", **refuse, outcome="failed") == 1
            assert (
                _get(after, "actors_invocations_finished_total", **refuse, outcome="succeeded") == 0
            )
            flaky_labels = {"type": "Account", "handler": "flaky"}
            assert _get(after, "actors_failed_attempts_total", **flaky_labels) == 1
            assert (
                _get(
                    after, "actors_invocations_finished_total", **flaky_labels, outcome="succeeded"
                )
                == 1
            )
            assert _get(after, "actors_failed_attempts_total", **adds) == 0
            # The retry of `flaky` replayed its committed step.
            assert _get(after, "actors_replays_total") == 1
            # The workflow waits for its promise, suspended.
            assert _get(after, "actors_invocations", status="suspended") == 1
            assert _get(after, "actors_suspended_invocations") == 1
            assert _get(after, "actors_suspensions_total") == 1
            assert _get(after, "actors_timers_pending") == 0
            assert _get(after, "actors_active_actors") == 1  # the workflow holds its key
            commits = _get(after, "actors_commits_total") - _get(before, "actors_commits_total")
            assert commits >= 7
            assert _get(after, "actors_batches_total") >= _get(after, "actors_commits_total")
            assert _get(after, "actors_batch_size") >= 1
            assert _get(after, "actors_storage_map_grows_total") == 0

            # Resolving the promise wakes the workflow by replay; it completes.
            resolved = await client.post("/promises/Approval/w1/decision/resolve", json="yes")
            assert resolved.status_code < 300, resolved.text
            await node.wait_idle()
            woken = await _scrape(client)
            run = {"type": "Approval", "handler": "run"}
            assert _get(woken, "actors_invocations_finished_total", **run, outcome="succeeded") == 1
            assert _get(woken, "actors_handler_duration_seconds_count", **run) == 1
            assert _get(woken, "actors_replays_total") == 2
            assert _get(woken, "actors_suspended_invocations") == 0
            assert _get(woken, "actors_active_actors") == 0


async def test_mailbox_depth_and_timers_are_gauges_of_now(tmp_path: Path) -> None:
    gates = Gates()
    with trio.fail_after(20):
        async with _served(tmp_path, gates) as (node, client), trio.open_nursery() as nursery:

            async def held() -> None:
                response = await client.post("/call/Account/q/hold")
                assert response.json() == "held"

            nursery.start_soon(held)
            await gates.entered.wait()
            ids = []
            for amount in (1, 2, 3):
                sent = await client.post("/send/Account/q/add", json=[amount])
                assert sent.status_code == 202
                ids.append(sent.json()["invocation_id"])

            busy = await _scrape(client)
            assert _get(busy, "actors_mailbox_depth") == 3
            assert _get(busy, "actors_mailbox_depth_max") == 3
            assert _get(busy, "actors_invocations", status="running") == 1
            assert _get(busy, "actors_invocations", status="inbox") == 3
            assert _get(busy, "actors_active_actors") == 1
            assert _get(busy, "actors_timers_pending") == 0

            killed = await client.post(f"/invocations/{ids[0]}/kill")
            assert killed.status_code < 300, killed.text
            cancelled = await client.post(f"/invocations/{ids[1]}/cancel")
            assert cancelled.status_code < 300, cancelled.text
            trimmed = await _scrape(client)
            assert _get(trimmed, "actors_mailbox_depth") == 1
            assert _get(trimmed, "actors_invocations", status="inbox") == 1
            adds = {"type": "Account", "handler": "add"}
            assert _get(trimmed, "actors_invocations_finished_total", **adds, outcome="killed") == 1
            assert (
                _get(trimmed, "actors_invocations_finished_total", **adds, outcome="cancelled") == 1
            )
            assert _get(trimmed, "actors_handler_duration_seconds_count", **adds) == 2

            gates.release.set()
            await node.wait_idle()
            later = await client.post("/send/Account/r/add?delay=1h", json=[5])
            assert later.status_code == 202
            drained = await _scrape(client)
            assert _get(drained, "actors_mailbox_depth") == 0
            assert _get(drained, "actors_active_actors") == 0
            assert _get(drained, "actors_invocations", status="running") == 0
            assert _get(drained, "actors_invocations", status="scheduled") == 1
            assert _get(drained, "actors_timers_pending") == 1
            assert (
                _get(drained, "actors_invocations_finished_total", **adds, outcome="succeeded") == 1
            )
            hold = {"type": "Account", "handler": "hold", "outcome": "succeeded"}
            assert _get(drained, "actors_invocations_finished_total", **hold) == 1


async def test_metrics_need_the_token_and_use_a_registry_of_their_own(tmp_path: Path) -> None:
    gates = Gates()
    with trio.fail_after(20):
        async with _served(tmp_path / "one", gates) as (_, client):
            anonymous = await client.get("/metrics", headers={"authorization": ""})
            assert anonymous.status_code == 401
            async with _served(tmp_path / "two", gates) as (_, other):
                await other.post("/call/Account/a/add", json=[1])
                assert (
                    _get(
                        await _scrape(other),
                        "actors_handler_duration_seconds_count",
                        type="Account",
                        handler="add",
                    )
                    == 1
                )
                first = await _scrape(client)
                assert (
                    "actors_handler_duration_seconds_count",
                    frozenset({("type", "Account"), ("handler", "add")}),
                ) not in first
    # Nothing went into the process-global registry.
    names = {family.name for family in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("actors_") for name in names)


def test_histogram_buckets_are_inclusive_upper_bounds() -> None:
    histogram = Histogram(bounds=(0.001, 0.01))
    for value in (0.0005, 0.001, 0.002, 0.01, 5.0):
        histogram.observe(value)
    assert histogram.counts == [2, 2, 1]
    assert histogram.cumulative() == [2, 4, 5]
    assert histogram.count == 5
    assert abs(histogram.total - 5.0135) < 1e-9
