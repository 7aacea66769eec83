"""The ingress and admin API: call, send and start handlers by name; read and steer
invocations; complete awakeables and promises; read state.

Every route maps a JSON request onto one `Node` method. Arguments travel as a JSON array
(positional), a JSON object (by parameter name) or an empty body (no arguments); results come
back as JSON. Errors become ``{"error": code, "message": ...}`` with a status from
`_app.status_for`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import attrs

from .._errors import UnknownInvocation
from .._node import Node
from .._reads import record_view, try_decode
from .._records import InvocationRecord, InvocationStatus
from .._registry import HandlerDef
from ._convert import ConversionError, convert
from ._wire import HttpError, Request, Response, Route, json_response, loads

MAX_IDEMPOTENCY_KEY = 256
"""Longest accepted ``Idempotency-Key`` header, in characters."""

_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_delay(text: str) -> timedelta:
    """``"10s"``, ``"500ms"``, ``"5m"``, ``"2h"``, ``"1d"`` or plain seconds.

    Raises:
        HttpError: 400 ``invalid_delay``.
    """
    match = _DELAY.match(text)
    if match is None:
        raise HttpError(
            400,
            "invalid_delay",
            f"delay {text!r} is not a duration; use e.g. 500ms, 10s, 5m, 2h or 1d",
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > 10 * 365 * 86400:
        raise HttpError(400, "invalid_delay", f"delay {text!r} is longer than ten years")
    return timedelta(seconds=seconds)


def _decode(node: Node, raw: bytes | None) -> Any:
    if raw is None:
        return None
    value, error = try_decode(node.codec, raw)
    return value if error is None else f"<undecodable: {type(error).__name__}: {error}>"


def record_json(node: Node, record: InvocationRecord) -> dict[str, Any]:
    """An invocation record as the API and the console show it."""
    return record_view(record, functools.partial(_decode, node))


def _arguments(request: Request, hdef: HandlerDef) -> list[Any]:
    """The handler's positional arguments from the request body, converted to the types its
    parameters declare (an attrs class from a JSON object, a datetime from a string...)."""
    args = _json_arguments(request, hdef)
    qualified = hdef.qualified_name
    try:
        return [
            convert(param.annotation, value, f"{qualified} argument {i + 1}")
            for i, (param, value) in enumerate(zip(hdef.parameters, args, strict=False))
        ] + args[len(hdef.parameters) :]
    except ConversionError as exc:
        raise HttpError(400, "invalid_arguments", str(exc)) from None


def _json_arguments(request: Request, hdef: HandlerDef) -> list[Any]:
    """The handler's positional arguments as JSON values."""
    qualified = hdef.qualified_name
    if not request.body.strip():
        return []
    value = loads(request.body)
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if not hdef.simple:
            raise HttpError(
                400,
                "invalid_arguments",
                f"{qualified} takes variable arguments; send them as a JSON array",
            )
        names = [param.name for param in hdef.parameters]
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise HttpError(
                400,
                "invalid_arguments",
                f"{qualified} has no parameter {', '.join(map(repr, unknown))}; its parameters"
                f" are: {', '.join(names) or 'none'}",
            )
        args: list[Any] = []
        for name in names:
            if name not in value:
                break
            args.append(value[name])
        if len(args) != len(value):
            missing = next(n for n in names if n not in value)
            raise HttpError(
                400,
                "invalid_arguments",
                f"{qualified}: parameter {missing!r} is missing but a later one is given",
            )
        return args
    raise HttpError(
        400,
        "invalid_arguments",
        f"the body of a call to {qualified} must be a JSON array of arguments, a JSON object"
        " of named arguments, or empty",
    )


def _idempotency_key(request: Request) -> str | None:
    key = request.header("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise HttpError(
            400,
            "invalid_idempotency_key",
            f"the Idempotency-Key header must have 1 to {MAX_IDEMPOTENCY_KEY} characters",
        )
    return key


def _status(text: str) -> InvocationStatus:
    try:
        return InvocationStatus(text.lower())
    except ValueError:
        known = ", ".join(s.value for s in InvocationStatus)
        raise HttpError(
            400, "invalid_status", f"unknown status {text!r}; use one of: {known}"
        ) from None


def _limit(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 6) or not 1 <= int(text) <= 100_000:
        raise HttpError(400, "invalid_limit", "limit must be an integer from 1 to 100000")
    return int(text)


def _failure_body(request: Request) -> tuple[str, int]:
    """The message and code of a reject: ``{"message": ..., "code": 4xx|5xx}`` or a string."""
    value = loads(request.body) if request.body.strip() else None
    if isinstance(value, str):
        return value, 500
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        code = value.get("code", 500)
        if not isinstance(code, int) or isinstance(code, bool) or not 400 <= code <= 599:
            raise HttpError(400, "invalid_arguments", "code must be an integer from 400 to 599")
        return value["message"], code
    raise HttpError(
        400,
        "invalid_arguments",
        'a reject needs a body {"message": "...", "code": 500} or a JSON string message',
    )


def _value_body(request: Request) -> Any:
    if not request.body.strip():
        raise HttpError(
            400,
            "invalid_arguments",
            "send the value as the JSON body (use null for no value)",
        )
    return loads(request.body)


def routes(node: Node) -> list[Route]:
    """The API routes of `node`."""

    hosted = node.describe()  # the registry is fixed for the node's lifetime

    def actor_kind(type_name: str) -> str:
        described = hosted.get(type_name)
        if described is None:
            known = ", ".join(hosted) or "none"
            raise HttpError(
                404,
                "unknown_handler",
                f"unknown actor type {type_name!r}; registered types: {known}",
            )
        kind: str = described["kind"]
        return kind

    def keyed_target(params: dict[str, str]) -> tuple[HandlerDef, list[Any]]:
        type_name = params["type"]
        if actor_kind(type_name) == "service":
            raise HttpError(
                404,
                "unknown_route",
                f"{type_name} is a service (no key): use /{{call|send}}/{type_name}/{{handler}}",
            )
        return node._handler_def(type_name, params["handler"]), [params["key"]]

    def service_target(params: dict[str, str]) -> tuple[HandlerDef, list[Any]]:
        type_name = params["type"]
        if actor_kind(type_name) != "service":
            raise HttpError(
                404,
                "unknown_route",
                f"{type_name} is keyed: use /{{call|send}}/{type_name}/{{key}}/{params['handler']}",
            )
        return node._handler_def(type_name, params["handler"]), []

    async def do_call(
        request: Request, params: dict[str, str], target: Callable[..., Any]
    ) -> Response:
        hdef, head = target(params)
        args = [*head, *_arguments(request, hdef)]
        result = await node.call(hdef.function, *args, idempotency_key=_idempotency_key(request))
        return json_response(result)

    async def do_send(
        request: Request, params: dict[str, str], target: Callable[..., Any]
    ) -> Response:
        hdef, head = target(params)
        args = [*head, *_arguments(request, hdef)]
        delay_text = request.query.get("delay")
        delay = parse_delay(delay_text) if delay_text is not None else None
        invocation_id = await node.send(
            hdef.function, *args, idempotency_key=_idempotency_key(request), delay=delay
        )
        return json_response({"invocation_id": invocation_id}, status=202)

    async def call_keyed(request: Request, params: dict[str, str]) -> Response:
        return await do_call(request, params, keyed_target)

    async def call_service(request: Request, params: dict[str, str]) -> Response:
        return await do_call(request, params, service_target)

    async def send_keyed(request: Request, params: dict[str, str]) -> Response:
        return await do_send(request, params, keyed_target)

    async def send_service(request: Request, params: dict[str, str]) -> Response:
        return await do_send(request, params, service_target)

    async def start(request: Request, params: dict[str, str]) -> Response:
        type_name = params["type"]
        if actor_kind(type_name) != "workflow":
            raise HttpError(
                404,
                "unknown_handler",
                f"{type_name} is not a workflow; use /call or /send for its handlers",
            )
        handlers = hosted[type_name]["handlers"]
        run_name = next(name for name, kind in handlers.items() if kind == "run")
        hdef = node._handler_def(type_name, run_name)
        invocation_id = await node.start(hdef.function, params["key"], *_arguments(request, hdef))
        return json_response({"invocation_id": invocation_id}, status=202)

    async def actors(request: Request, params: dict[str, str]) -> Response:
        return json_response({"actors": hosted})

    async def list_invocations(request: Request, params: dict[str, str]) -> Response:
        q = request.query
        status = _status(q["status"]) if q.get("status") else None
        records = node.list_invocations(
            status=status,
            actor_type=q.get("actor") or None,
            key=q.get("key") or None,
            handler=q.get("handler") or None,
            limit=_limit(q.get("limit") or None),
        )
        return json_response({"invocations": [record_json(node, r) for r in records]})

    async def get_invocation(request: Request, params: dict[str, str]) -> Response:
        return json_response(record_json(node, node.get_invocation(params["id"])))

    async def get_journal(request: Request, params: dict[str, str]) -> Response:
        node.get_invocation(params["id"])  # 404 for an unknown id
        entries = [attrs.asdict(e, recurse=False) for e in node.get_journal(params["id"])]
        return json_response({"entries": entries})

    async def output(request: Request, params: dict[str, str]) -> Response:
        return json_response(await node.attach(params["id"]))

    def lifecycle(
        action: Callable[[str], Awaitable[None]],
    ) -> Callable[[Request, dict[str, str]], Awaitable[Response]]:
        async def handle(request: Request, params: dict[str, str]) -> Response:
            await action(params["id"])
            try:
                record = record_json(node, node.get_invocation(params["id"]))
            except UnknownInvocation:  # it finished at once and its record is not retained
                record = {"id": params["id"], "status": None, "retained": False}
            return json_response(record, status=202)

        return handle

    async def resolve_awakeable(request: Request, params: dict[str, str]) -> Response:
        await node.resolve_awakeable(params["id"], _value_body(request))
        return json_response({"resolved": params["id"]})

    async def reject_awakeable(request: Request, params: dict[str, str]) -> Response:
        message, code = _failure_body(request)
        await node.reject_awakeable(params["id"], message, code=code)
        return json_response({"rejected": params["id"]})

    async def resolve_promise(request: Request, params: dict[str, str]) -> Response:
        await node.resolve_promise(
            params["type"], params["key"], params["name"], _value_body(request)
        )
        return json_response({"resolved": params["name"]})

    async def reject_promise(request: Request, params: dict[str, str]) -> Response:
        message, code = _failure_body(request)
        await node.reject_promise(params["type"], params["key"], params["name"], message, code=code)
        return json_response({"rejected": params["name"]})

    async def state(request: Request, params: dict[str, str]) -> Response:
        actor_kind(params["type"])
        return json_response({"state": node.get_state(params["type"], params["key"])})

    async def health(request: Request, params: dict[str, str]) -> Response:
        return json_response({"status": "ok"})

    return [
        Route(method="GET", pattern="/health", handler=health, public=True),
        Route(method="POST", pattern="/call/{type}/{key}/{handler}", handler=call_keyed),
        Route(method="POST", pattern="/call/{type}/{handler}", handler=call_service),
        Route(method="POST", pattern="/send/{type}/{key}/{handler}", handler=send_keyed),
        Route(method="POST", pattern="/send/{type}/{handler}", handler=send_service),
        Route(method="POST", pattern="/start/{type}/{key}", handler=start),
        Route(method="GET", pattern="/actors", handler=actors),
        Route(method="GET", pattern="/invocations", handler=list_invocations),
        Route(method="GET", pattern="/invocations/{id}", handler=get_invocation),
        Route(method="GET", pattern="/invocations/{id}/journal", handler=get_journal),
        Route(method="GET", pattern="/invocations/{id}/output", handler=output),
        Route(method="POST", pattern="/invocations/{id}/cancel", handler=lifecycle(node.cancel)),
        Route(method="POST", pattern="/invocations/{id}/kill", handler=lifecycle(node.kill)),
        Route(method="POST", pattern="/invocations/{id}/pause", handler=lifecycle(node.pause)),
        Route(method="POST", pattern="/invocations/{id}/resume", handler=lifecycle(node.resume)),
        Route(method="POST", pattern="/awakeables/{id}/resolve", handler=resolve_awakeable),
        Route(method="POST", pattern="/awakeables/{id}/reject", handler=reject_awakeable),
        Route(
            method="POST",
            pattern="/promises/{type}/{key}/{name}/resolve",
            handler=resolve_promise,
        ),
        Route(
            method="POST",
            pattern="/promises/{type}/{key}/{name}/reject",
            handler=reject_promise,
        ),
        Route(method="GET", pattern="/state/{type}/{key}", handler=state),
    ]
