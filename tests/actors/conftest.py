"""Fixtures for runtime tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

import actors
from actors.testing import open_memory_node

from .app import TYPES, Witness, instances

FAST_RETRY = actors.RetryPolicy(
    initial_interval=timedelta(milliseconds=100), factor=2.0, max_attempts=4
)


@pytest.fixture
def witness() -> Witness:
    return Witness()


@pytest.fixture(params=[False, True], ids=["normal", "always-replay"])
async def node(
    witness: Witness, autojump_clock: object, request: pytest.FixtureRequest
) -> AsyncIterator[actors.Node]:
    """A node on the in-memory store. Tests must also request `autojump_clock` themselves:
    pytest-trio only runs a test on a clock that the test function asks for."""
    # Every functional test also runs in always-replay mode: each handler is re-executed
    # from its journal after every durable step, and must behave the same.
    options = actors.NodeOptions(retry_policy=FAST_RETRY, seed=1, always_replay=request.param)
    async with open_memory_node(instances(witness), types=TYPES, options=options) as node:
        yield node
