"""Structured logs: the node's records about an invocation carry its id, actor key and handler,
and `configure_logging` writes them as readable text or as one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
import trio
import trio.testing

import actors
from actors._logging import configure_logging
from actors.testing import open_memory_node


@actors.virtual_object
class Bank:
    """A handler that fails a chosen number of times before it succeeds."""

    def __init__(self) -> None:
        self.failures_left = 0

    @actors.exclusive
    async def withdraw(self, ctx: actors.ObjectContext, amount: int) -> int:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise RuntimeError("the bank is down")
        return amount


OPTIONS = actors.NodeOptions(
    retry_policy=actors.RetryPolicy(initial_interval=timedelta(seconds=1), max_attempts=2),
    seed=7,
)


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


async def _withdraw_after_failures(failures: int) -> tuple[str, object]:
    bank = Bank()
    bank.failures_left = failures
    async with open_memory_node([bank], options=OPTIONS) as node:
        invocation_id = await node.send(Bank.withdraw, "alice/checking", 5)
        try:
            result: object = await node.attach(invocation_id)
        except actors.InvocationPaused as exc:
            result = exc
    return invocation_id, result


async def test_a_retry_log_carries_the_invocation_and_actor(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.INFO, logger="actors")
    invocation_id, result = await _withdraw_after_failures(1)
    assert result == 5
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 1
    record = retries[0]
    assert record.levelno == logging.WARNING
    assert record.__dict__["invocation_id"] == invocation_id
    assert record.__dict__["actor"] == "Bank/alice/checking"
    assert record.__dict__["handler"] == "withdraw"


async def test_a_pause_and_operator_actions_are_logged_with_the_invocation(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.INFO, logger="actors")
    bank = Bank()
    bank.failures_left = 2
    async with open_memory_node([bank], options=OPTIONS) as node:
        invocation_id = await node.send(Bank.withdraw, "bob", 1)
        await node.wait_idle()
        await node.kill(invocation_id)
    about = [r for r in caplog.records if r.__dict__.get("invocation_id") == invocation_id]
    messages = [r.getMessage() for r in about]
    assert any("paused after 2 attempts" in m for m in messages), messages
    assert any("killed by an operator" in m for m in messages), messages
    assert all(r.__dict__["actor"] == "Bank/bob" for r in about)


async def test_json_lines_carry_the_invocation_fields(
    autojump_clock: trio.testing.MockClock, restore_root_logger: None
) -> None:
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    invocation_id, _ = await _withdraw_after_failures(1)
    logging.getLogger("actors.test").error("plain line")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("actors.test").exception("with a traceback", extra={"code": 7})

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    retry = next(line for line in lines if "retrying" in line["message"])
    assert retry["level"] == "WARNING"
    assert retry["logger"] == "actors"
    assert retry["invocation_id"] == invocation_id
    assert retry["actor"] == "Bank/alice/checking"
    assert retry["handler"] == "withdraw"
    assert retry["time"].endswith("Z")
    plain = next(line for line in lines if line["message"] == "plain line")
    assert "invocation_id" not in plain and "exc_info" not in plain
    failed = next(line for line in lines if line["message"] == "with a traceback")
    assert failed["code"] == 7
    assert "ValueError: boom" in failed["exc_info"]
    assert failed["exc_info"].startswith("Traceback")


def test_text_format_and_reconfiguration(restore_root_logger: None) -> None:
    first = io.StringIO()
    configure_logging("text", "warning", stream=first)
    log = logging.getLogger("actors.test")
    log.info("too quiet")
    log.warning("retrying", extra={"invocation_id": "inv_x", "actor": "Bank/a", "handler": "w"})
    second = io.StringIO()
    configure_logging("json", logging.DEBUG, stream=second)
    log.debug("now loud")
    text = first.getvalue()
    assert "too quiet" not in text
    assert "WARNING actors.test: retrying [invocation_id=inv_x actor=Bank/a handler=w]" in text
    assert "now loud" not in text  # the first handler was replaced, not kept
    assert json.loads(second.getvalue())["message"] == "now loud"


def test_bad_format_or_level_is_refused(restore_root_logger: None) -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("yaml", "info")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("text", "loud")
