"""Fixtures shared by the storage tests: every store implementation behind one interface."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from storage import (
    DEFAULT_MAX_VALUE_SIZE,
    LmdbOptions,
    Store,
    open_lmdb_store,
    open_memory_store,
)

TABLES = ("a", "b")

OpenStore = Callable[..., AbstractAsyncContextManager[Store]]


@pytest.fixture(params=["lmdb", "memory"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def open_store(store_kind: str, tmp_path: Path) -> OpenStore:
    """Open a fresh store of the current kind (each call gets its own data directory)."""
    numbers = itertools.count()

    @asynccontextmanager
    async def opener(
        tables: tuple[str, ...] = TABLES, *, max_value_size: int = DEFAULT_MAX_VALUE_SIZE
    ) -> AsyncIterator[Store]:
        if store_kind == "lmdb":
            options = LmdbOptions(max_value_size=max_value_size)
            path = tmp_path / f"store-{next(numbers)}"
            async with open_lmdb_store(path, tables, options) as lmdb_store:
                yield lmdb_store
        else:
            async with open_memory_store(tables, max_value_size=max_value_size) as memory_store:
                yield memory_store

    return opener


@pytest.fixture
async def store(open_store: OpenStore) -> AsyncIterator[Store]:
    """An open store with tables ("a", "b"), once per implementation."""
    async with open_store() as opened:
        yield opened
