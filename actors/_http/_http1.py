"""HTTP/1.1 framing, sans-IO: parse a request head, decode a chunked body, render a response.

Strict by design: whatever is not plainly valid HTTP/1.1 (or 1.0) is refused with an
`HttpError` (400, 413, 431, 501 or 505) rather than guessed at; the server then answers and
closes the connection. Only what a JSON API needs is supported: origin-form targets,
``Content-Length`` or ``chunked`` bodies, ``Expect: 100-continue``, keep-alive and pipelining.
"""

from __future__ import annotations

import re
from http import HTTPStatus

import attrs

from ._wire import HttpError, Response

_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
"""A character of an HTTP token (RFC 9110): methods and header names."""
_TOKEN = re.compile(_TCHAR + rb"+")
_TARGET = re.compile(rb"/[\x21-\x7e]*")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
MAX_LINE = 8192
"""The longest chunk-size or trailer line."""

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _bad(message: str) -> HttpError:
    return HttpError(400, "bad_request", f"malformed request: {message}")


@attrs.frozen(kw_only=True)
class Head:
    """A parsed request line and headers."""

    method: str
    target: str
    http10: bool
    headers: dict[str, str]
    """Names lower-cased; repeated headers joined with ``, ``."""
    keep_alive: bool
    content_length: int | None
    chunked: bool
    expect_continue: bool


_METHOD_START = re.compile(_TCHAR + rb"{1,32}( |\Z)")


def plausible_start(buffer: bytes | bytearray) -> bool:
    """Whether the start of an incomplete request head could still be a request line (a
    method token, then a space): noise is refused at once instead of timing out."""
    return _METHOD_START.match(buffer, 0, min(len(buffer), 33)) is not None


def parse_head(head: bytes, *, max_body: int) -> Head:
    """Parse a request head (without its final blank line).

    Raises:
        HttpError: 400 for malformed syntax, 413 for a declared body over `max_body`,
            501 for a transfer coding other than chunked, 505 for an HTTP version other than
            1.0 and 1.1.
    """
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise _bad("the request line is not 'METHOD /path HTTP/1.1'")
    raw_method, raw_target, version = parts
    if version == b"HTTP/1.1":
        http10 = False
    elif version == b"HTTP/1.0":
        http10 = True
    elif version.startswith(b"HTTP/"):
        raise HttpError(505, "http_version", "only HTTP/1.1 and HTTP/1.0 are served")
    else:
        raise _bad("the request line does not end with an HTTP version")
    if not _TOKEN.fullmatch(raw_method):
        raise _bad("the method is not a token")
    if not _TARGET.fullmatch(raw_target):
        raise _bad("the target must be a path starting with '/' (origin form)")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        raw_name, sep, raw_value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(raw_name):
            raise _bad("a header line is not 'Name: value' (folded lines are not accepted)")
        raw_value = raw_value.strip(b" \t")
        if _BAD_VALUE.search(raw_value):
            raise _bad("a header value contains control characters")
        name = raw_name.decode("ascii").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    connection = headers.get("connection", "").lower()
    keep_alive = "keep-alive" in connection if http10 else "close" not in connection
    content_length: int | None = None
    chunked = False
    if "transfer-encoding" in headers:
        if headers["transfer-encoding"].strip().lower() != "chunked" or http10:
            raise HttpError(501, "not_implemented", "only the chunked transfer coding is supported")
        if "content-length" in headers:
            raise _bad("both Content-Length and Transfer-Encoding are present")
        chunked = True
    elif "content-length" in headers:
        values = {v.strip() for v in headers["content-length"].split(",")}
        if len(values) != 1:
            raise _bad("conflicting Content-Length values")
        text = values.pop()
        if not text.isdigit() or not text.isascii():
            raise _bad("Content-Length is not a number")
        # Longer than any body we accept, and short enough for int() (which refuses
        # thousands of digits): compare the digits first.
        content_length = int(text) if len(text.lstrip("0")) <= 18 else max_body + 1
        if content_length > max_body:
            raise HttpError(
                413,
                "payload_too_large",
                f"the request body has {text[:24]} bytes; the limit is {max_body}",
            )
    return Head(
        method=raw_method.decode("ascii"),
        target=raw_target.decode("ascii"),
        http10=http10,
        headers=headers,
        keep_alive=keep_alive,
        content_length=content_length,
        chunked=chunked,
        expect_continue=headers.get("expect", "").lower() == "100-continue",
    )


class ChunkedDecoder:
    """Decodes a chunked body incrementally from a buffer it consumes."""

    def __init__(self, max_body: int) -> None:
        self._max_body = max_body
        self._state = "size"
        self._remaining = 0
        self._size = 0
        self.done = False

    def feed(self, buffer: bytearray) -> list[bytes]:
        """Consume what it can from the front of `buffer`; return the decoded data.

        Raises:
            HttpError: 400 for bad framing, 413 once the body exceeds the limit.
        """
        out: list[bytes] = []
        while not self.done:
            if self._state == "data":
                if not buffer:
                    break
                take = min(self._remaining, len(buffer))
                out.append(bytes(buffer[:take]))
                del buffer[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self._state = "data_end"
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > MAX_LINE:
                    raise _bad("a chunk line is too long")
                break
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if b"\n" in line or b"\r" in line:
                raise _bad("a bare CR or LF in a chunk line")
            if self._state == "data_end":
                if line:
                    raise _bad("a chunk is longer than its declared size")
                self._state = "size"
            elif self._state == "size":
                size_text = line.split(b";", 1)[0].strip(b" \t")
                if not _HEX.fullmatch(size_text):
                    raise _bad("a chunk size is not hexadecimal")
                size = int(size_text, 16)
                self._size += size
                if self._size > self._max_body:
                    raise HttpError(
                        413,
                        "payload_too_large",
                        f"the request body exceeds the limit of {self._max_body} bytes",
                    )
                if size == 0:
                    self._state = "trailer"
                else:
                    self._remaining = size
                    self._state = "data"
            elif not line:  # trailer: a blank line ends the message
                self.done = True
            else:
                name, sep, value = line.partition(b":")
                if not sep or not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
                    raise _bad("a trailer line is not 'Name: value'")
        return out


_STATUS_LINES: dict[int, bytes] = {}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {reason}\r\n".encode("ascii")
    return line


def render(
    response: Response, *, keep_alive: bool, head_only: bool = False, http10: bool = False
) -> bytes:
    """The bytes of a response: status line, headers, body. An HTTP/1.0 client is told when
    the connection stays open (it assumes the opposite)."""
    parts = [
        _status_line(response.status),
        b"content-type: ",
        response.content_type.encode("latin-1"),
        b"\r\ncontent-length: ",
        str(len(response.body)).encode("ascii"),
        b"\r\n",
    ]
    for name, value in response.headers:
        parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    elif http10:
        parts.append(b"connection: keep-alive\r\n")
    parts.append(b"\r\n")
    if not head_only:
        parts.append(response.body)
    return b"".join(parts)
