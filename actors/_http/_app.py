"""The node's web application: routing, the bearer-token check, and turning exceptions into
JSON errors. Route tables come from `_api` (ingress and admin), `_console` (``/ui``) and
`_metrics` (``/metrics``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from urllib.parse import unquote

import attrs

from storage import CodecError, PayloadTooLarge, StorageError, StorageFull, UnsupportedType

from .._errors import (
    CallAbandoned,
    CallCycle,
    InvalidArguments,
    InvalidKey,
    InvocationKilled,
    InvocationPaused,
    NodeClosed,
    TerminalError,
    UnknownHandler,
    UnknownInvocation,
    UsageError,
)
from ._wire import Handler, HttpError, Request, Response, Route, error_response

_log = logging.getLogger("actors.http")

TOKEN_COOKIE = "actors_token"
"""The cookie the console sets after ``/ui?token=...`` so that a browser can follow links."""


@attrs.frozen
class _Compiled:
    method: str
    parts: tuple[str | None, ...]
    """Literal segments, or None for a ``{param}``."""
    names: tuple[str, ...]
    route: Route


def _compile(route: Route) -> _Compiled:
    parts: list[str | None] = []
    names: list[str] = []
    for segment in route.pattern.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            parts.append(None)
            names.append(segment[1:-1])
        else:
            parts.append(segment)
    return _Compiled(route.method, tuple(parts), tuple(names), route)


def status_for(exc: BaseException) -> HttpError | None:
    """The HTTP refusal for an exception the node raises, or None for a bug (500)."""
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, UnknownHandler):
        return HttpError(404, "unknown_handler", str(exc))
    if isinstance(exc, UnknownInvocation):
        return HttpError(404, "unknown_invocation", str(exc))
    if isinstance(exc, InvalidKey):
        return HttpError(400, "invalid_key", str(exc))
    if isinstance(exc, InvalidArguments):
        return HttpError(400, "invalid_arguments", str(exc))
    if isinstance(exc, PayloadTooLarge):
        return HttpError(413, "payload_too_large", str(exc))
    if isinstance(exc, UnsupportedType | CodecError):
        return HttpError(400, "invalid_value", str(exc))
    if isinstance(exc, CallCycle):
        return HttpError(409, "call_cycle", str(exc))
    if isinstance(exc, TerminalError):
        status = exc.code if 400 <= exc.code <= 599 else 500
        return HttpError(status, "terminal_error", exc.message)
    if isinstance(exc, InvocationPaused):
        return HttpError(409, "invocation_paused", str(exc))
    if isinstance(exc, InvocationKilled):
        return HttpError(409, "invocation_killed", str(exc) or "the invocation was killed")
    if isinstance(exc, UsageError):
        return HttpError(409, "conflict", str(exc))
    if isinstance(exc, CallAbandoned):
        return HttpError(503, "call_abandoned", str(exc))
    if isinstance(exc, NodeClosed):
        return HttpError(503, "node_closed", str(exc) or "the node is shutting down")
    if isinstance(exc, StorageFull):
        return HttpError(507, "storage_full", str(exc))
    if isinstance(exc, StorageError):
        return HttpError(503, "storage_error", str(exc))
    return None


def token_matches(given: str | None, token: str) -> bool:
    """Whether `given` is `token` (compared in constant time)."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def _bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    auth = request.header("authorization")
    if auth is not None and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


def authorized(request: Request, token: str | None) -> bool:
    """Whether `request` carries `token` (``Authorization: Bearer`` or the console's cookie);
    always True when no token is configured. Public routes that check for themselves (the
    console's) use this, so both checks stay one."""
    if token is None:
        return True
    given = _bearer(request)
    if given is None:
        given = request.cookie(TOKEN_COOKIE)
    return token_matches(given, token)


class WebApp:
    """Routes requests to handlers; checks the bearer token; maps errors to JSON.

    Args:
        routes: every route the node serves.
        token: when set, every non-public route needs ``Authorization: Bearer <token>`` (or
            the console's cookie); a missing or wrong token gets 401.
    """

    def __init__(self, routes: Iterable[Route], *, token: str | None = None) -> None:
        self._routes = [_compile(r) for r in routes]
        self._token = token

    def _match(self, request: Request) -> tuple[Handler, dict[str, str], bool]:
        segments = request.path.strip("/").split("/")
        allowed: set[str] = set()
        for compiled in self._routes:
            if len(compiled.parts) != len(segments):
                continue
            params: dict[str, str] = {}
            names = iter(compiled.names)
            for part, segment in zip(compiled.parts, segments, strict=True):
                if part is None:
                    if not segment:
                        break
                    params[next(names)] = unquote(segment, errors="strict")
                elif part != segment:
                    break
            else:
                if compiled.method == request.method:
                    return compiled.route.handler, params, compiled.route.public
                allowed.add(compiled.method)
        if allowed:
            raise HttpError(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {request.path}; use"
                f" {' or '.join(sorted(allowed))}",
                headers=(("allow", ", ".join(sorted(allowed))),),
            )
        raise HttpError(404, "unknown_route", f"no route {request.method} {request.path}")

    def _check_token(self, request: Request) -> None:
        if not self._authorized(request):
            raise HttpError(
                401,
                "unauthorized",
                "missing or wrong bearer token: send 'Authorization: Bearer <token>'"
                " with the token the node was started with",
                headers=(("www-authenticate", 'Bearer realm="actors"'),),
            )

    def _authorized(self, request: Request) -> bool:
        return authorized(request, self._token)

    def _check_origin(self, request: Request) -> None:
        """Refuse a state-changing request a browser sent from another origin (a form or
        script on another site or port), unless it carries the bearer token itself: the
        console's cookie, or a node without a token, must not be usable cross-site."""
        if request.method in ("GET", "HEAD"):
            return
        origin = request.header("origin")
        fetch_site = request.header("sec-fetch-site")
        host = (request.header("host") or "").lower()
        foreign = (origin is not None and origin.partition("://")[2].lower() != host) or (
            fetch_site is not None and fetch_site.lower() not in ("same-origin", "none")
        )
        if not foreign:
            return
        if self._token is not None and token_matches(_bearer(request), self._token):
            return
        raise HttpError(
            403,
            "cross_origin",
            f"a {request.method} from another origin ({origin or fetch_site}) is refused;"
            " call the node from its own pages, or send the bearer token",
        )

    def precheck(self, request: Request) -> HttpError | None:
        """Whether a request can be served, judged on its head alone (route, token, origin),
        so that the server refuses it before reading (or inviting) its body. Without a token
        anyone may send a body anyway: nothing to judge early (and no routing done twice)."""
        if self._token is None:
            return None
        try:
            _, _, public = self._match(request)
            self._check_origin(request)
            if not public:
                self._check_token(request)
        except HttpError as exc:
            return exc
        except UnicodeDecodeError:
            return HttpError(400, "invalid_path", "the path is not valid percent-encoded UTF-8")
        return None

    async def handle(self, request: Request) -> Response:
        """Answer one request; never raises (a bug becomes a logged 500)."""
        try:
            handler, params, public = self._match(request)
            self._check_origin(request)
            if not public:
                self._check_token(request)
            return await handler(request, params)
        except UnicodeDecodeError:
            return error_response(
                HttpError(400, "invalid_path", "the path is not valid percent-encoded UTF-8")
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes a response
            refusal = status_for(exc)
            if refusal is None:
                _log.exception("bug while serving %s %s", request.method, request.path)
                refusal = HttpError(
                    500, "internal_error", f"internal error ({type(exc).__name__}); see the log"
                )
            return error_response(refusal)
