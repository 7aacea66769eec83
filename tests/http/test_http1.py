"""The sans-IO HTTP/1.1 framing: strict parsing (only `HttpError` for any input), chunked
decoding however the bytes are split, and rendering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors._http._http1 import ChunkedDecoder, parse_head, plausible_start, render
from actors._http._wire import HttpError, Response


@given(st.binary(max_size=600))
def test_any_head_parses_or_is_refused_with_an_http_error(raw: bytes) -> None:
    try:
        head = parse_head(raw, max_body=1000)
    except HttpError as exc:
        assert exc.status in (400, 413, 501, 505)
    else:
        assert head.target.startswith("/")
        assert head.content_length is None or 0 <= head.content_length <= 1000


@given(st.binary(max_size=64))
def test_plausible_start_never_fails(raw: bytes) -> None:
    assert plausible_start(raw) in (True, False)


def test_a_typical_head() -> None:
    head = parse_head(
        b"POST /call/Cart/a%2Fb/add?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n"
        b"X-Dup: a\r\nX-Dup: b\r\nExpect: 100-continue",
        max_body=100,
    )
    assert (head.method, head.target) == ("POST", "/call/Cart/a%2Fb/add?x=1")
    assert head.content_length == 12
    assert head.keep_alive and head.expect_continue and not head.chunked
    assert head.headers["x-dup"] == "a, b"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /x HTTP/2.0", 505),
        (b"GET x HTTP/1.1", 400),
        (b"GET http://evil/x HTTP/1.1", 400),
        (b"GET /a b HTTP/1.1", 400),
        (b"GET /x HTTP/1.1\r\n folded: value", 400),
        (b"GET /x HTTP/1.1\r\nNo-Colon", 400),
        (b"GET /x HTTP/1.1\r\nBad Name: v", 400),
        (b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2", 400),
        (b"POST /x HTTP/1.1\r\nContent-Length: -1", 400),
        (b"POST /x HTTP/1.1\r\nContent-Length: \xd9\xa3", 400),
        (b"POST /x HTTP/1.1\r\nContent-Length: 101", 413),
        (b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip", 501),
        (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3", 400),
        (b"POST /x HTTP/1.1\r\nX: a\x00b", 400),
    ],
)
def test_refusals(raw: bytes, status: int) -> None:
    with pytest.raises(HttpError) as caught:
        parse_head(raw, max_body=100)
    assert caught.value.status == status


def test_keep_alive_rules() -> None:
    assert not parse_head(b"GET / HTTP/1.1\r\nConnection: close", max_body=0).keep_alive
    assert not parse_head(b"GET / HTTP/1.0", max_body=0).keep_alive
    assert parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive", max_body=0).keep_alive


def _chunked(body: bytes, sizes: list[int]) -> bytes:
    out = b""
    pos = 0
    for size in sizes:
        piece = body[pos : pos + size]
        if not piece:
            break
        out += b"%x;ext=1\r\n%s\r\n" % (len(piece), piece)
        pos += len(piece)
    if pos < len(body):
        out += b"%x\r\n%s\r\n" % (len(body) - pos, body[pos:])
    return out + b"0\r\nTrailer: t\r\n\r\n"


@given(
    st.binary(max_size=300),
    st.lists(st.integers(1, 50), max_size=10),
    st.lists(st.integers(1, 40), min_size=1, max_size=30),
)
def test_chunked_bodies_decode_however_the_bytes_arrive(
    body: bytes, sizes: list[int], splits: list[int]
) -> None:
    wire = _chunked(body, sizes) + b"NEXT"
    decoder = ChunkedDecoder(max_body=1000)
    buffer = bytearray()
    out: list[bytes] = []
    pos = 0
    for split in splits * (len(wire) // max(1, sum(splits)) + 2):
        if decoder.done:
            break
        buffer += wire[pos : pos + split]
        pos += split
        out += decoder.feed(buffer)
    assert decoder.done
    assert b"".join(out) == body
    assert bytes(buffer) + wire[pos:] == b"NEXT"  # the next request is left untouched


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (b"zz\r\n", 400),
        (b"3\r\nabcd\r\n", 400),
        (b"400\r\n", 413),
        (b"1" * 9000, 400),
    ],
)
def test_chunked_refusals(wire: bytes, status: int) -> None:
    with pytest.raises(HttpError) as caught:
        ChunkedDecoder(max_body=100).feed(bytearray(wire))
    assert caught.value.status == status


def test_render() -> None:
    response = Response(status=404, body=b'{"a":1}', headers=(("allow", "GET"),))
    wire = render(response, keep_alive=False)
    assert wire == (
        b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 7\r\n"
        b'allow: GET\r\nconnection: close\r\n\r\n{"a":1}'
    )
    assert render(response, keep_alive=True, head_only=True).endswith(b"GET\r\n\r\n")
