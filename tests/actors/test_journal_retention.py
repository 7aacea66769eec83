"""A finished invocation keeps its journal exactly as long as its record (for the console and
`actors invocations show`), and loses both together when the record expires."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import trio

import actors
from actors.testing import open_test_node

from .durable_app import Saga, Sink, instances


def _options(retention: timedelta) -> actors.NodeOptions:
    return actors.NodeOptions(completed_retention=retention, seed=3)


async def test_a_retained_record_keeps_its_journal_until_it_expires(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sink = Sink()
    async with open_test_node(
        tmp_path, instances(sink), options=_options(timedelta(hours=1))
    ) as node:
        invocation_id = await node.send(Saga.checkout, "o1", "o1")
        assert await node.attach(invocation_id) == ["o1:reserve", "o1:charge", "o1:confirm"]
        journal = node.get_journal(invocation_id)
        assert [(e.kind, e.name) for e in journal] == [
            ("run", "reserve"),
            ("run", "charge"),
            ("run", "confirm"),
        ]
        assert all(e.attempts == 1 and e.recorded_at is not None for e in journal)
        assert node.get_invocation(invocation_id).status is actors.InvocationStatus.COMPLETED
        await trio.sleep(3600 + 120)  # past the retention and the sweeper's next pass
        with pytest.raises(actors.UnknownInvocation):
            node.get_invocation(invocation_id)
        assert node.get_journal(invocation_id) == []
    assert sink.effects["o1:reserve"] == 1


async def test_without_retention_the_journal_goes_at_completion(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_test_node(tmp_path, instances(Sink()), options=_options(timedelta(0))) as node:
        invocation_id = await node.send(Saga.checkout, "o2", "o2")
        await node.attach(invocation_id)
        assert node.get_journal(invocation_id) == []
