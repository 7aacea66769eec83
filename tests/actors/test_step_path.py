"""The fast paths of a durable step keep the general path's answers (regressions found in
review of the step-path speed-up): journal entries near the size limit, and what counts as an
async step function."""

from __future__ import annotations

import functools
import inspect
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import actors
from actors._context import _is_async
from actors._journal import Entry, EntryKind
from storage import Codec, PayloadTooLarge

MAX = 1024


@actors.service
class Blob:
    @actors.handler
    async def make(self, ctx: actors.ServiceContext, n: int) -> int:
        """A step whose result fits the value limit but whose journal entry (the result plus
        the entry's own fields) does not; then a sleep, so the journal is read again later."""
        data: bytes = await ctx.run("blob", lambda: b"x" * n)
        await ctx.sleep(timedelta(seconds=1))
        return len(data)


async def test_an_entry_over_the_limit_is_refused_and_the_node_reopens(
    autojump_clock: object, tmp_path: Path
) -> None:
    path = tmp_path / "node"
    options = actors.NodeOptions(max_value_size=MAX)
    async with actors.open_node(path, [Blob()], options=options) as node:
        with pytest.raises(actors.TerminalError, match=f"more than max_size={MAX}") as info:
            await node.call(Blob.make, MAX - 10)
        assert info.value.error_type == "PayloadTooLarge"
        inv = await node.send(Blob.make, MAX - 10)  # durable before its step runs
        with pytest.raises(actors.TerminalError, match=f"more than max_size={MAX}"):
            await node.attach(inv)
    # The node opens again (an entry it cannot decode would stop every start), nothing is left
    # half-done, and a step that fits still runs to the end.
    async with actors.open_node(path, [Blob()], options=options) as node:
        assert node.list_invocations() == []
        assert await node.call(Blob.make, 100) == 100


def test_entry_encode_matches_the_codec_and_keeps_its_limit() -> None:
    codec = Codec(max_size=MAX)
    plain = [
        Entry(
            index=3, kind=EntryKind.RUN, name="step", value=b"\x01\x03\xff\xd6", at=1, attempts=2
        ),
        Entry(index=0, kind=EntryKind.CANCEL, name=""),
        Entry(index=1, kind=EntryKind.RUN, name="x", failure=["E", "boom", 500]),
    ]
    for entry in plain:
        assert entry.encode(codec) == codec.encode(entry.to_wire())
    # A tuple is not a plain msgpack value: the codec encodes it (as a tagged tuple).
    tupled = Entry(index=2, kind=EntryKind.RUN, name="t", failure=("E", "boom", 500))  # type: ignore[arg-type]
    assert tupled.encode(codec) == codec.encode(tupled.to_wire())
    near = Entry(index=4, kind=EntryKind.RUN, name="big", value=b"x" * (MAX - 20))
    with pytest.raises(PayloadTooLarge, match=f"more than max_size={MAX}"):
        near.encode(codec)


async def _async_fn() -> int:
    return 1


def _sync_fn() -> int:
    return 1


class _Owner:
    async def method(self) -> int:
        return 1

    def sync_method(self) -> int:
        return 1


def test_is_async_agrees_with_inspect() -> None:
    owner = _Owner()
    candidates = [
        _async_fn,
        _sync_fn,
        owner.method,
        owner.sync_method,
        functools.partial(_async_fn),
        functools.partial(_sync_fn),
        lambda: 1,
        print,
    ]
    for fn in candidates:
        assert _is_async(fn) == inspect.iscoroutinefunction(fn), fn


@pytest.mark.skipif(sys.version_info < (3, 12), reason="inspect.markcoroutinefunction is 3.12+")
def test_a_function_marked_as_a_coroutine_function_is_async() -> None:
    async def inner() -> int:
        return 42

    def marked() -> object:
        return inner()

    inspect.markcoroutinefunction(marked)  # type: ignore[attr-defined,unused-ignore]
    assert _is_async(marked)
