"""HTTP messages as the node's web surface sees them: `Request`, `Response`, `Route`, and
`HttpError` (a refusal that becomes a JSON ``{error, message}`` response).

Sans-IO: the server (`_server.py`) turns bytes into a `Request` and a `Response` into bytes;
the route modules (`_api.py`, `_console.py`, `_metrics.py`) only map one to the other.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import attrs

MAX_JSON_DEPTH = 64
"""Deeper JSON documents are refused (400) before decoding: Python's parser recurses."""


@attrs.frozen(kw_only=True)
class Request:
    """One HTTP request with its whole body read."""

    method: str
    """Upper-case: ``GET``, ``POST``, ..."""
    path: str
    """The raw (still percent-encoded) path, without the query string."""
    query: Mapping[str, str]
    """Decoded query parameters (the last value wins for repeated names)."""
    headers: Mapping[str, str]
    """Header names lower-cased; repeated headers joined with ``, ``."""
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header's value by (case-insensitive) name."""
        return self.headers.get(name.lower(), default)

    def cookie(self, name: str) -> str | None:
        """A cookie's value from the ``Cookie`` header."""
        raw = self.headers.get("cookie")
        if not raw:
            return None
        for part in raw.split(";"):
            k, sep, v = part.strip().partition("=")
            if sep and k == name:
                return v
        return None


@attrs.frozen(kw_only=True)
class Response:
    """One HTTP response. `headers` are extra headers (content type and length are added)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class HttpError(Exception):
    """A request refused with `status`; rendered as JSON ``{"error": code, "message": ...}``.

    Attributes:
        status: the HTTP status code (4xx for the caller's mistakes, 5xx for the node's).
        code: a short machine-readable name such as ``unknown_handler`` or ``invalid_json``.
        message: what was wrong and how to fix it.
    """

    def __init__(
        self, status: int, code: str, message: str, *, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]
"""A route handler: the request and the path parameters (percent-decoded)."""


@attrs.frozen(kw_only=True)
class Route:
    """One route: ``Route("GET", "/invocations/{id}", handler)``.

    A ``{name}`` segment matches one non-empty path segment, passed percent-decoded (so a key
    may contain ``/`` when the client encodes it as ``%2F``). `public` routes skip the bearer
    token check (only ``/health``).
    """

    method: str
    pattern: str
    handler: Handler
    public: bool = False


def path_segment(text: str) -> str:
    """`text` percent-encoded as one path segment, ``/`` included; ``.`` and ``..`` are
    encoded too (``%2E``), since clients and browsers collapse those as dot segments."""
    encoded = quote(text, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def _plain(value: Any) -> Any:
    """`json.dumps` fallback: the codec's extra types as their natural JSON forms."""
    if isinstance(value, tuple | list):
        return list(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=False)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"{type(value).__name__} has no JSON form")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        return key.hex()
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    if isinstance(key, int | float):
        return str(key)
    return json.dumps(_normalized(key), separators=(",", ":"), ensure_ascii=False)


def _normalized(value: Any) -> Any:
    """`value` with every map key a string and NaN/infinities as null: what JSON can hold."""
    if isinstance(value, float):
        return value if value == value and value not in (math.inf, -math.inf) else None
    if isinstance(value, dict):
        return {_key(k): _normalized(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [_normalized(v) for v in items]
    if isinstance(value, str | int | bool) or value is None:
        return value
    try:
        plain = _plain(value)
    except TypeError:
        return repr(value)
    return _normalized(plain)


def dumps(value: Any) -> bytes:
    """Encode `value` as compact UTF-8 JSON (tuples, sets, datetimes, UUIDs, enums, attrs
    and dataclass instances included; map keys that are not strings become strings, NaN and
    infinities become null)."""
    try:
        text = json.dumps(
            value, default=_plain, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError):
        text = json.dumps(
            _normalized(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    return text.encode()


def json_response(value: Any, status: int = 200) -> Response:
    """A JSON response."""
    return Response(status=status, body=dumps(value))


def error_response(error: HttpError) -> Response:
    """The JSON body of a refusal."""
    return Response(
        status=error.status,
        body=dumps({"error": error.code, "message": error.message}),
        headers=error.headers,
    )


def _too_deep(text: str, limit: int) -> bool:
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def loads(body: bytes, *, what: str = "request body") -> Any:
    """Decode a JSON body, refusing bad input with a 400 that says what was wrong.

    Raises:
        HttpError: 400 ``invalid_json`` (not UTF-8, not JSON, or nested deeper than
            `MAX_JSON_DEPTH`).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpError(400, "invalid_json", f"the {what} is not UTF-8: {exc}") from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _too_deep(text, MAX_JSON_DEPTH):
        raise HttpError(
            400,
            "invalid_json",
            f"the {what} nests arrays/objects deeper than {MAX_JSON_DEPTH} levels",
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HttpError(
            400, "invalid_json", f"the {what} is not valid JSON: {exc.msg} at {exc.pos}"
        ) from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise HttpError(400, "invalid_json", f"the {what} is not acceptable JSON: {exc}") from None
