"""The web console at ``/ui``: server-rendered pages over the node, with a small script.

- ``GET /ui``: invocations, newest first, filtered by ``status``, ``actor`` (type),
  ``handler``, ``key`` and ``limit`` query parameters; a link per invocation and per actor key.
- ``GET /ui/invocations/{id}``: one invocation: its facts, arguments, output, its journal as a
  timeline, and cancel/kill/pause/resume buttons that POST to the API's
  ``/invocations/{id}/{action}`` routes.
- ``GET /ui/actors/{type}/{key}``: one keyed actor: its state and its mailbox.
- ``GET /ui/app.js``, ``GET /ui/style.css``: the assets.

With a token configured, the pages are public routes that check the token themselves (header or
cookie) so that ``/ui?token=T`` can set the ``actors_token`` cookie (HttpOnly, SameSite=Strict)
and redirect to the same page without the token; a browser without it gets an HTML 401 page.
Every page is sent with a Content-Security-Policy that allows scripts and styles from the node
only (no inline script, no inline style), so an actor key or state value holding markup cannot
run even if escaping were missed somewhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlencode

from .._errors import UnknownHandler
from .._node import Node
from .._reads import try_decode
from .._records import InvocationRecord, InvocationStatus
from . import _console_render as render
from ._app import TOKEN_COOKIE, authorized, status_for, token_matches
from ._console_assets import APP_JS, STYLE_CSS
from ._wire import Handler, Request, Response, Route

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
)

MAX_LIMIT = 10_000
"""The most invocations the list page shows at once."""

_COOKIE_SAFE = re.compile(r"^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$")
"""Characters a cookie value may hold unquoted (RFC 6265 cookie-octet)."""


def html_response(
    text: str, status: int = 200, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    """A console page with the console's security headers."""
    return Response(
        status=status,
        body=text.encode("utf-8"),
        content_type="text/html; charset=utf-8",
        headers=SECURITY_HEADERS + headers,
    )


def _asset(body: str, content_type: str) -> Handler:
    data = body.encode("utf-8")

    async def serve(request: Request, params: dict[str, str]) -> Response:
        return Response(
            status=200,
            body=data,
            content_type=content_type,
            headers=(("x-content-type-options", "nosniff"), ("cache-control", "no-cache")),
        )

    return serve


def _decode(node: Node, raw: bytes | None) -> render.Decoded | None:
    if raw is None:
        return None
    value, error = try_decode(node.codec, raw)
    if error is not None:
        return render.Decoded(error=f"<undecodable: {type(error).__name__}: {error}>")
    return render.Decoded(value=value)


def _mailbox_order(record: InvocationRecord) -> tuple[int, int, int]:
    # The invocation that holds the key first (it left the queue), then the queue by its
    # inbox sequence, then the rest (scheduled, not yet durable) by creation.
    holding = record.status in (
        InvocationStatus.RUNNING,
        InvocationStatus.BACKING_OFF,
        InvocationStatus.SUSPENDED,
        InvocationStatus.PAUSED,
    )
    if holding:
        return (0, 0, record.created_at)
    if record.inbox_seq is not None:
        return (1, record.inbox_seq, record.created_at)
    return (2, 0, record.created_at)


def _guard(handler: Handler, token: str | None) -> Handler:
    """Check the token (header or cookie), exchange ``?token=`` for the cookie, and render the
    node's refusals (unknown invocation, bad key, ...) as pages instead of JSON."""

    async def guarded(request: Request, params: dict[str, str]) -> Response:
        if token is not None:
            given = request.query.get("token")
            if given is not None:
                return _login(request, given, token)
            if not authorized(request, token):
                return html_response(
                    render.login_page("missing or wrong token: this node was started with a token"),
                    401,
                    (("www-authenticate", 'Bearer realm="actors"'),),
                )
        try:
            return await handler(request, params)
        except Exception as exc:
            refusal = status_for(exc)
            if refusal is None:
                raise  # a bug: the app logs it and answers 500
            return html_response(
                render.error_page(refusal.status, refusal.code, refusal.message), refusal.status
            )

    return guarded


def _login(request: Request, given: str, token: str) -> Response:
    """``?token=T``: set the cookie and redirect to the same page without the token."""
    if not token_matches(given, token):
        return html_response(render.login_page("wrong token"), 401)
    if not _COOKIE_SAFE.match(token):
        return html_response(
            render.error_page(
                400,
                "token_not_cookie_safe",
                "the node's token has characters a cookie cannot hold (spaces, quotes, commas,"
                " semicolons or backslashes): use a token of letters, digits and -._~ for the"
                " console, or send it as an Authorization header",
            ),
            400,
        )
    rest = {k: v for k, v in request.query.items() if k != "token"}
    # The first path segment is always "ui" (the route matched it), so this stays on the node.
    location = "/" + request.path.strip("/")
    if rest:
        location += "?" + urlencode(rest)
    cookie = f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    return html_response(
        render.page("signed in", f'<p><a href="{render.esc(location)}">continue</a></p>'),
        303,
        (("location", location), ("set-cookie", cookie)),
    )


def _int_param(text: str | None, default: int, name: str) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ValueError(f"{name} must be an integer from 1 to {MAX_LIMIT}, got {text!r}")
    return int(text)


def routes(node: Node, *, token: str | None) -> list[Route]:
    """The console routes of `node`. `token`: the node's token (None: no check), which the
    pages check themselves (see the module docstring)."""

    hosted = node.describe()  # the registry is fixed for the node's lifetime

    async def invocations(request: Request, params: dict[str, str]) -> Response:
        q = request.query
        error = None
        status: InvocationStatus | None = None
        limit = 200
        try:
            limit = _int_param(q.get("limit"), 200, "limit")
            if q.get("status"):
                try:
                    status = InvocationStatus(q["status"].lower())
                except ValueError:
                    known = ", ".join(s.value for s in InvocationStatus)
                    raise ValueError(
                        f"unknown status {q['status']!r}; use one of: {known}"
                    ) from None
        except ValueError as exc:
            error = str(exc)
        filters = render.ListFilters(
            status=q.get("status", ""),
            actor=q.get("actor", ""),
            handler=q.get("handler", ""),
            key=q.get("key", ""),
            limit=limit,
        )
        records: list[InvocationRecord] = []
        total = 0
        if error is None:
            found = node.list_invocations(
                status=status,
                actor_type=filters.actor or None,
                key=filters.key or None,
                handler=filters.handler or None,
            )
            total = len(found)
            records = found[:limit]
        text = render.list_page(
            filters=filters,
            records=records,
            total=total,
            described=hosted,
            error=error,
        )
        return html_response(text, 400 if error is not None else 200)

    async def invocation(request: Request, params: dict[str, str]) -> Response:
        record = node.get_invocation(params["id"])
        entries = node.get_journal(params["id"])
        kinds: Mapping[str, str] = hosted.get(record.actor.type, {}).get("handlers", {})
        args = _decode(node, record.args) or render.Decoded(value=[])
        text = render.invocation_page(
            record=record,
            args=args,
            result=_decode(node, record.result),
            entries=entries,
            handler_kind=kinds.get(record.handler),
        )
        return html_response(text)

    async def actor(request: Request, params: dict[str, str]) -> Response:
        type_name, key = params["type"], params["key"]
        info = hosted.get(type_name)
        if info is None:
            known = ", ".join(hosted) or "none"
            raise UnknownHandler(f"unknown actor type {type_name!r}; registered types: {known}")
        if info["kind"] == "service":
            raise UnknownHandler(f"{type_name} is a stateless service: it has no keys or state")
        state = {
            name: render.Decoded(value=value)
            for name, value in node.get_state(type_name, key).items()
        }
        records = node.list_invocations(actor_type=type_name, key=key)
        mailbox = sorted((r for r in records if not r.status.finished), key=_mailbox_order)
        finished = [r for r in records if r.status.finished][:50]
        text = render.actor_page(
            actor_type=type_name,
            key=key,
            kind=info["kind"],
            handler_kinds=info["handlers"],
            state=state,
            mailbox=mailbox,
            finished=finished,
        )
        return html_response(text)

    pages: list[tuple[str, Handler]] = [
        ("/ui", invocations),
        ("/ui/invocations/{id}", invocation),
        ("/ui/actors/{type}/{key}", actor),
    ]
    # The pages are public routes so that `?token=` can reach `_guard`, which checks the
    # token itself; the assets hold nothing secret.
    return [
        *(
            Route(method="GET", pattern=pattern, handler=_guard(handler, token), public=True)
            for pattern, handler in pages
        ),
        Route(
            method="GET",
            pattern="/ui/app.js",
            handler=_asset(APP_JS, "text/javascript; charset=utf-8"),
            public=True,
        ),
        Route(
            method="GET",
            pattern="/ui/style.css",
            handler=_asset(STYLE_CSS, "text/css; charset=utf-8"),
            public=True,
        ),
    ]
