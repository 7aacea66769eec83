"""Structured logs through the standard `logging` module.

The node logs through ``logging.getLogger("actors")`` (and ``actors.http``); records about one
invocation carry the extras ``invocation_id``, ``actor`` (``Type/key``) and ``handler``.
`configure_logging` installs one handler on the root logger that writes either readable text
or one JSON object per line (for log shippers), with those extras as fields.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import IO, Any, Literal

LogFormat = Literal["text", "json"]

INVOCATION_FIELDS: tuple[str, ...] = ("invocation_id", "actor", "handler")
"""The extras of a log record about one invocation, in the order they are shown."""

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


def _timestamp(record: logging.LogRecord) -> str:
    when = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The record's `extra=` fields: the invocation fields first, then the others by name."""
    fields = {name: record.__dict__[name] for name in INVOCATION_FIELDS if name in record.__dict__}
    for name in sorted(record.__dict__.keys() - _STANDARD - fields.keys()):
        if not name.startswith("_"):
            fields[name] = record.__dict__[name]
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    the record's extras (``invocation_id``, ``actor``, ``handler``, ...) and, when there is
    one, the exception as text in ``exc_info``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        document: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in _extras(record).items():
            document.setdefault(name, value)
        if record.exc_info:
            document["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exc_info"] = record.exc_text
        if record.stack_info:
            document["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> [invocation_id=... actor=... handler=...]``, then
    the traceback, if any, on the following lines."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as readable text."""
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        extras = _extras(record)
        if extras:
            line += " [" + " ".join(f"{name}={value}" for name, value in extras.items()) + "]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class _Installed(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installed (so a second call replaces it)."""


def configure_logging(
    fmt: LogFormat = "text", level: str | int = "INFO", *, stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log record at `level` or above to `stream` (default: standard error), as
    readable text or as JSON lines. Calling it again replaces the previous configuration.

    Args:
        fmt: ``"text"`` or ``"json"`` (one object per line; see `JsonFormatter`).
        level: a level name such as ``"info"`` or ``"DEBUG"``, or a number.
        stream: where to write.

    Returns:
        The installed handler (on the root logger).

    Raises:
        ValueError: an unknown format or level.
    """
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter()
    elif fmt == "text":
        formatter = TextFormatter()
    else:
        raise ValueError(f"log format must be 'text' or 'json', got {fmt!r}")
    if isinstance(level, str):
        number = logging.getLevelNamesMapping().get(level.upper())
        if number is None:
            raise ValueError(
                f"unknown log level {level!r}; use debug, info, warning, error or critical"
            )
        level = number
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, _Installed):
            root.removeHandler(existing)
            existing.close()
    handler = _Installed(sys.stderr if stream is None else stream)
    handler.setFormatter(formatter)
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
