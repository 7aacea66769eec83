"""The ``actors`` command line.

``actors serve APP --data DIR`` runs a node; the other commands talk to a running node over
its HTTP API (``--url``, env ``ACTORS_URL``; ``--token``, env ``ACTORS_TOKEN``), and the
reading ones can instead open a stopped node's data directory read-only (``--data DIR``).

Exit status: 0 success; 1 the node refused the request (an HTTP error, or an unknown id in a
data directory); 2 bad usage (arguments, an app that cannot be loaded, a locked or unusable
data directory); 3 the node cannot be reached.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click
import httpx
import trio
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from storage import DataDirLocked, StorageError

from ._app_spec import App, BadApp, load_app
from ._errors import ActorError
from ._http._wire import dumps, path_segment
from ._inspect import Inspector, open_inspector
from ._journal import JournalEntry
from ._layout import InvocationId, slot_id, slot_key
from ._logging import configure_logging
from ._records import InvocationStatus

DEFAULT_URL = "http://127.0.0.1:8080"

T = TypeVar("T")

# ----------------------------------------------------------------------------- output


def _stdout() -> Console:
    # Created per use: the console binds the current sys.stdout (click's test runner swaps it).
    # Piped output is not wrapped to 80 columns: tables stay one line per row.
    wide = None if sys.stdout.isatty() else 200
    return Console(soft_wrap=True, highlight=False, width=wide)


def _stderr() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


class Failed(click.ClickException):
    """A command failed: one red ``error: ...`` line on stderr and an exit status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares a class default

    def show(self, file: Any = None) -> None:
        """Print the error line."""
        _stderr().print(f"[red]error: {escape(self.message)}[/red]")


def _plain(value: Any) -> Any:
    """`value` as JSON builtins (attrs, dataclasses, enums, datetimes included)."""
    return json.loads(dumps(value))


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(_plain(value), indent=2, ensure_ascii=False))


def _parse_args_json(text: str | None) -> Any:
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"not JSON ({exc.msg}); give a JSON array of arguments like '[\"apple\"]' or an"
            " object of named arguments",
            param_hint="ARGS",
        ) from None
    if not isinstance(value, list | dict):
        raise click.BadParameter(
            f"{text!r} is JSON but not an array or object; wrap a single argument: '[{text}]'",
            param_hint="ARGS",
        )
    return value


# ----------------------------------------------------------------------------- HTTP client


class _Client:
    """One node's HTTP API, synchronously (httpx)."""

    def __init__(self, url: str, token: str | None, timeout: float | None) -> None:
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout or 10.0, 10.0)),
        )

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str | None] | None = None,
        headers: dict[str, str] | None = None,
        raw_null: bool = False,
    ) -> Any:
        """Send `body` as JSON (None: no body, unless `raw_null` sends ``null``); return the
        decoded answer.

        Raises:
            Failed: the node refused (exit status 1) or cannot be reached (3).
        """
        content = b"" if body is None and not raw_null else json.dumps(body).encode()
        try:
            response = self._http.request(
                method,
                path,
                content=content,
                params={k: v for k, v in (params or {}).items() if v is not None},
                headers={"content-type": "application/json", **(headers or {})},
            )
        except httpx.TimeoutException as exc:
            raise Failed(f"timeout: no answer from {self.url} ({exc})", exit_code=3) from None
        except httpx.TransportError as exc:
            raise Failed(
                f"cannot connect to {self.url}: {exc or type(exc).__name__}; is `actors serve`"
                " running there? (set --url or ACTORS_URL)",
                exit_code=3,
            ) from None
        try:
            value = response.json() if response.content else None
        except ValueError:
            value = None
        if response.status_code < 400 and (
            not response.content or "json" not in response.headers.get("content-type", "")
        ):
            raise Failed(
                f"unexpected answer from {self.url} ({response.status_code}, not JSON): is a"
                " trio-actors node (`actors serve`) listening there?",
                exit_code=3,
            )
        if response.status_code >= 400:
            if isinstance(value, dict) and "error" in value:
                code, message = value["error"], value.get("message", "")
            else:
                code, message = f"http_{response.status_code}", response.text[:200]
            if response.status_code == 401:
                message += " (pass --token or set ACTORS_TOKEN)"
            raise Failed(f"{code}: {message}", exit_code=1)
        return value


def _client_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--url`` and ``--token`` (with their environment variables) and ``--timeout``."""
    fn = click.option(
        "--timeout",
        type=float,
        default=None,
        help="Seconds to wait for the answer (default: no limit for calls, 30 otherwise).",
    )(fn)
    fn = click.option(
        "--token",
        envvar="ACTORS_TOKEN",
        default=None,
        help="Bearer token of the node [env ACTORS_TOKEN].",
    )(fn)
    return click.option(
        "--url",
        envvar="ACTORS_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="The node's HTTP address [env ACTORS_URL].",
    )(fn)


def _readonly_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--data`` (read a stopped node's directory instead of asking a running node) and
    ``--app`` (register the app's types so its values decode)."""
    fn = click.option(
        "--app",
        "app_ref",
        default=None,
        metavar="APP",
        help="With --data: the app (module:attribute) whose types the values use.",
    )(fn)
    return click.option(
        "--data",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Read a stopped node's data directory instead (read-only; nothing runs).",
    )(fn)


def _load(reference: str) -> App:
    # Like `python -m`, resolve app modules from the current directory.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return load_app(reference)
    except BadApp as exc:
        raise Failed(str(exc), exit_code=2) from None


def _read(data: Path, app_ref: str | None, fn: Callable[[Inspector], T]) -> T:
    """Run `fn` on an inspector of `data` (a stopped node's directory)."""
    types = _load(app_ref).types if app_ref else ()

    async def main() -> T:
        async with open_inspector(data, types=types) as inspector:
            return fn(inspector)

    try:
        return trio.run(main)
    except DataDirLocked as exc:
        raise Failed(
            f"a node is running on {data} ({exc}); ask it instead with --url", exit_code=2
        ) from None
    except StorageError as exc:
        raise Failed(f"cannot read {data}: {exc}", exit_code=2) from None
    except ActorError as exc:
        raise Failed(f"{_error_code(exc)}: {exc}", exit_code=1) from None


def _error_code(exc: Exception) -> str:
    """The API's snake_case code of an error (``UnknownInvocation``: ``unknown_invocation``)."""
    name = type(exc).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _timeout(given: float | None, default: float | None) -> float | None:
    return default if given is None else given


# ----------------------------------------------------------------------------- targets


def _split_target(target: str) -> tuple[str, str | None, str]:
    """``Type/key/handler`` (a key may contain ``/``) or ``Service/handler``."""
    parts = target.split("/")
    if len(parts) < 2 or not all(parts[:1]) or not parts[-1]:
        raise click.BadParameter(
            f"{target!r} is not Type/key/handler (or Service/handler for a service)",
            param_hint="TARGET",
        )
    if len(parts) == 2:
        return parts[0], None, parts[1]
    return parts[0], "/".join(parts[1:-1]), parts[-1]


def _seg(text: str) -> str:
    return path_segment(text)


def _target_path(verb: str, target: str) -> str:
    type_name, key, handler = _split_target(target)
    if key is None:
        return f"/{verb}/{_seg(type_name)}/{_seg(handler)}"
    return f"/{verb}/{_seg(type_name)}/{_seg(key)}/{_seg(handler)}"


# ----------------------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trio-actors", prog_name="actors")
def cli() -> None:
    """trio-actors: run a node, call its handlers, inspect its invocations and state."""


@cli.command()
@click.argument("data_dir", required=False)
def demo(data_dir: str | None) -> None:
    """Run the shopping-cart example on an embedded node (DATA_DIR: default a temporary one)."""
    run: Callable[[list[str]], int] = importlib.import_module("examples.demo").main
    code = run([data_dir] if data_dir else [])
    if code:
        raise click.exceptions.Exit(code)


@cli.command()
@click.argument("app_ref", metavar="APP")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The node's data directory (created if missing; one node at a time).",
)
@click.option(
    "--http",
    "listen",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to serve the HTTP API, console and metrics (port 0: any free port).",
)
@click.option(
    "--token",
    envvar="ACTORS_TOKEN",
    default=None,
    help="Require this bearer token on the API and console [env ACTORS_TOKEN].",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds running invocations get to finish after SIGINT/SIGTERM.",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
def serve(
    app_ref: str,
    data: Path,
    listen: str,
    token: str | None,
    grace: float,
    log_format: str,
    log_level: str,
) -> None:
    """Run a node hosting APP (module:attribute, e.g. examples.shop:app) until SIGINT or
    SIGTERM.

    APP names an actors.App, an iterable of actor instances, or a function returning one.
    On a signal the node stops serving HTTP, gives running invocations --grace seconds to
    finish, and closes; unfinished invocations resume at the next start.
    """
    from ._serve import ServeConfig, parse_listen
    from ._serve import serve as run_serve

    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--http") from None
    app = _load(app_ref)
    configure_logging("json" if log_format == "json" else "text", log_level)
    config = ServeConfig(
        app=app, app_name=app_ref, data_dir=data, host=host, port=port, token=token, grace=grace
    )
    try:
        trio.run(run_serve, config)
    except BaseException as exc:
        error = _single(exc)
        if isinstance(error, DataDirLocked):
            raise Failed(f"cannot serve {app_ref}: {error}", exit_code=2) from None
        if isinstance(error, OSError) and error.filename is None:
            raise Failed(
                f"cannot listen on {listen}: {error.strerror or error}", exit_code=2
            ) from None
        if isinstance(error, OSError):  # a file of the data directory
            raise Failed(
                f"cannot open the data directory {data}: {error.strerror or error}"
                f" ({error.filename})",
                exit_code=2,
            ) from None
        if isinstance(error, StorageError):
            raise Failed(f"cannot open the data directory {data}: {error}", exit_code=2) from None
        raise


def _single(exc: BaseException) -> BaseException:
    """The one error inside nested single-member exception groups, else `exc`."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@cli.command()
@click.argument("target")
@click.argument("args", required=False)
@click.option("--idempotency-key", default=None, help="Deduplicate retries of this call.")
@_client_options
def call(
    target: str,
    args: str | None,
    idempotency_key: str | None,
    url: str,
    token: str | None,
    timeout: float | None,
) -> None:
    """Call a handler and print its result as JSON.

    TARGET is Type/key/handler (Service/handler for a service); ARGS is a JSON array of
    positional arguments or a JSON object of named ones: actors call Cart/alice/add_item
    '["apple"]'.
    """
    body = _parse_args_json(args)
    headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
    with _Client(url, token, _timeout(timeout, None)) as client:
        _echo_json(client.request("POST", _target_path("call", target), body=body, headers=headers))


@cli.command()
@click.argument("target")
@click.argument("args", required=False)
@click.option("--delay", default=None, help="Run it later: 500ms, 10s, 5m, 2h, 1d.")
@click.option("--idempotency-key", default=None, help="Deduplicate retries of this send.")
@_client_options
def send(
    target: str,
    args: str | None,
    delay: str | None,
    idempotency_key: str | None,
    url: str,
    token: str | None,
    timeout: float | None,
) -> None:
    """Enqueue a handler invocation durably (one-way) and print its invocation id."""
    body = _parse_args_json(args)
    headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
    with _Client(url, token, _timeout(timeout, 30.0)) as client:
        result = client.request(
            "POST",
            _target_path("send", target),
            body=body,
            params={"delay": delay} if delay else None,
            headers=headers,
        )
    _echo_json(result)


@cli.command()
@click.argument("target", metavar="WORKFLOW/KEY")
@click.argument("args", required=False)
@_client_options
def start(
    target: str, args: str | None, url: str, token: str | None, timeout: float | None
) -> None:
    """Start a workflow's run (once per key) and print its invocation id."""
    type_name, sep, key = target.partition("/")
    if not sep or not type_name or not key:
        raise click.BadParameter(f"{target!r} is not Workflow/key", param_hint="WORKFLOW/KEY")
    body = _parse_args_json(args)
    with _Client(url, token, _timeout(timeout, 30.0)) as client:
        _echo_json(client.request("POST", f"/start/{_seg(type_name)}/{_seg(key)}", body=body))


# ----------------------------------------------------------------------------- invocations


@cli.group()
def invocations() -> None:
    """List, show and steer invocations."""


def _status_option(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return InvocationStatus(value.lower()).value
    except ValueError:
        known = ", ".join(s.value for s in InvocationStatus)
        raise click.BadParameter(f"{value!r}; use one of: {known}", param_hint="--status") from None


def _short_time(iso: str | None) -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def _invocations_table(records: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "actor", "handler", "status", "attempts", "created", "error"):
        table.add_column(column, no_wrap=column in ("id", "created"))
    for r in records:
        actor = f"{r['actor_type']}/{r['key']}" if r.get("key") else r["actor_type"]
        failure = r.get("failure") or {}
        # A finished invocation's last_error is history (it may have succeeded on a retry).
        unfinished = r["status"] not in ("completed", "killed")
        error = failure.get("message") or (r.get("last_error") if unfinished else "") or ""
        table.add_row(
            r["id"],
            escape(actor),
            escape(r["handler"]),
            r["status"],
            str(r.get("attempts", "")),
            _short_time(r.get("created_at")),
            escape(str(error)),
        )
    return table


@invocations.command("list")
@click.option("--status", default=None, help="Only this status (inbox, running, paused, ...).")
@click.option("--actor", default=None, metavar="TYPE[/KEY]", help="Only this actor type or key.")
@click.option("--handler", default=None, help="Only this handler name.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_readonly_options
@_client_options
def list_invocations(
    status: str | None,
    actor: str | None,
    handler: str | None,
    limit: int,
    as_json: bool,
    data: Path | None,
    app_ref: str | None,
    url: str,
    token: str | None,
    timeout: float | None,
) -> None:
    """Invocations queued, running, suspended, paused or retained, newest first."""
    status = _status_option(status)
    actor_type, _, key = (actor or "").partition("/")
    if data is not None:

        def read(inspector: Inspector) -> list[dict[str, Any]]:
            found = inspector.list_invocations(
                status=None if status is None else InvocationStatus(status),
                actor_type=actor_type or None,
                key=key or None,
                handler=handler,
                limit=limit,
            )
            return [_plain(inspector.record_json(r)) for r in found]

        records = _read(data, app_ref, read)
    else:
        with _Client(url, token, _timeout(timeout, 30.0)) as client:
            params: dict[str, str | None] = {
                "status": status,
                "actor": actor_type or None,
                "key": key or None,
                "handler": handler,
                "limit": str(limit),
            }
            records = client.request("GET", "/invocations", params=params)["invocations"]
    if as_json:
        _echo_json(records)
    elif not records:
        _stderr().print("no invocations")
    else:
        _stdout().print(_invocations_table(records))


def _fetch_invocation(
    invocation_id: str,
    data: Path | None,
    app_ref: str | None,
    url: str,
    token: str | None,
    timeout: float | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An invocation's record and journal entries, from a node or a data directory."""
    if data is not None:

        def read(inspector: Inspector) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            record = _plain(inspector.record_json(inspector.get_invocation(invocation_id)))
            entries = [_plain(_entry_dict(e)) for e in inspector.get_journal(invocation_id)]
            return record, entries

        return _read(data, app_ref, read)
    with _Client(url, token, _timeout(timeout, 30.0)) as client:
        path = f"/invocations/{_seg(invocation_id)}"
        record = client.request("GET", path)
        entries = client.request("GET", f"{path}/journal")["entries"]
    return record, entries


def _entry_dict(entry: JournalEntry) -> dict[str, Any]:
    return attrs.asdict(entry, recurse=False)


def _seconds(delta: float) -> str:
    if delta < 1:
        return f"{delta * 1000:.0f}ms"
    if delta < 120:
        return f"{delta:.2f}s"
    return f"{delta / 60:.1f}m"


def _awakeable_id(invocation_id: str, index: int) -> str:
    try:
        return slot_id(slot_key(InvocationId.parse(invocation_id), index))
    except ActorError:
        return "null"


def _timeline(record: dict[str, Any], entries: list[dict[str, Any]]) -> Table:
    """The journal as a table: when each step was recorded (after the invocation was
    created), the time since the previous step, attempts, and the result or error."""
    timed = any(e.get("recorded_at") for e in entries)
    with_attempts = any(e.get("attempts") is not None for e in entries)
    table = Table(box=None, header_style="bold", pad_edge=False, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("kind")
    table.add_column("name")
    if timed:
        table.add_column("at", justify="right")
        table.add_column("took", justify="right")
    if with_attempts:
        table.add_column("attempts", justify="right")
    table.add_column("result / error")
    created = record.get("created_at")
    previous = datetime.fromisoformat(created) if created else None
    for e in entries:
        row = [str(e["index"]), e["kind"], escape(str(e["name"]))]
        if timed:
            at = datetime.fromisoformat(e["recorded_at"]) if e.get("recorded_at") else None
            if at is not None and created:
                offset = (at - datetime.fromisoformat(created)).total_seconds()
                took = (at - previous).total_seconds() if previous is not None else None
                row += [f"+{_seconds(offset)}", "" if took is None else _seconds(took)]
                previous = at
            else:
                row += ["", ""]
        if with_attempts:
            row.append("" if e.get("attempts") is None else str(e["attempts"]))
        if e.get("failure"):
            row.append(f"[red]error: {escape(str(e['failure']))}[/red]")
        elif e["kind"] == "awakeable" and e.get("value") is None:
            # Its id is derived from its position: show it, so an operator can complete it.
            row.append(_awakeable_id(record["id"], e["index"]))
        else:
            row.append(escape(json.dumps(e.get("value"), ensure_ascii=False)))
        table.add_row(*row)
    return table


def _show_record(record: dict[str, Any]) -> None:
    out = _stdout()
    actor = f"{record['actor_type']}/{record['key']}" if record.get("key") else record["actor_type"]
    out.print(f"[bold]{record['id']}[/bold]  {escape(actor)}.{escape(record['handler'])}")
    fields = [
        ("status", record["status"]),
        ("created", record.get("created_at")),
        ("modified", record.get("modified_at")),
        ("attempts", record.get("attempts")),
        ("last error", record.get("last_error")),
        ("next retry", record.get("next_retry_at")),
        ("due", record.get("not_before")),
        ("idempotency key", record.get("idempotency_key")),
        ("expires", record.get("expires_at")),
        ("args", json.dumps(record.get("args"), ensure_ascii=False)),
    ]
    if record.get("status") == "completed":
        failure = record.get("failure")
        if failure:
            fields.append(
                ("failure", f"{failure['error_type']} ({failure['code']}): {failure['message']}")
            )
        else:
            fields.append(("result", json.dumps(record.get("result"), ensure_ascii=False)))
    for name, value in fields:
        if value is not None and value != "":
            out.print(f"  {name:<16} {escape(str(value))}")


@invocations.command("show")
@click.argument("invocation_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a timeline.")
@_readonly_options
@_client_options
def show_invocation(
    invocation_id: str,
    as_json: bool,
    data: Path | None,
    app_ref: str | None,
    url: str,
    token: str | None,
    timeout: float | None,
) -> None:
    """An invocation's record and its journal as a timeline."""
    record, entries = _fetch_invocation(invocation_id, data, app_ref, url, token, timeout)
    if as_json:
        _echo_json({"invocation": record, "journal": entries})
        return
    _show_record(record)
    out = _stdout()
    if entries:
        out.print()
        out.print(_timeline(record, entries))
    else:
        out.print("  (no journal entries)")


def _lifecycle(action: str, doc: str) -> None:
    @invocations.command(action, help=doc)
    @click.argument("invocation_id", metavar="ID")
    @_client_options
    def command(invocation_id: str, url: str, token: str | None, timeout: float | None) -> None:
        with _Client(url, token, _timeout(timeout, 30.0)) as client:
            record = client.request("POST", f"/invocations/{_seg(invocation_id)}/{action}")
        # The node answers once the request is recorded; the effect may follow at the
        # handler's next wait, so the status shown is the one at that moment.
        _stdout().print(f"{record['id']}: {action} accepted (status now {record['status']})")


_lifecycle("cancel", "Cancel an invocation: its handler gets the cancellation and compensates.")
_lifecycle("kill", "Kill an invocation at once, without running any more of its code.")
_lifecycle("pause", "Pause an invocation at its next durable step (resume it later).")
_lifecycle("resume", "Give a paused invocation a fresh round of attempts.")


def _value_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"not JSON ({exc.msg}); quote a string value: '\"ok\"'", param_hint="VALUE"
        ) from None


@cli.group()
def awakeable() -> None:
    """Complete awakeables (their ids are in `invocations show`)."""


def _promise_path(target: str, action: str) -> str:
    parts = target.split("/")
    if len(parts) < 3 or not parts[0] or not parts[-1]:
        raise click.BadParameter(
            f"{target!r} is not Workflow/key/promise", param_hint="WORKFLOW/KEY/PROMISE"
        )
    type_name, key, name = parts[0], "/".join(parts[1:-1]), parts[-1]
    return f"/promises/{_seg(type_name)}/{_seg(key)}/{_seg(name)}/{action}"


@cli.group()
def promise() -> None:
    """Complete a workflow's durable promises."""


def _completion_commands(
    group: click.Group, what: str, metavar: str, path: Callable[[str, str], str]
) -> None:
    """``resolve TARGET [VALUE]`` and ``reject TARGET MESSAGE [--code]`` for `what` `group`
    completes (awakeables by id, promises by workflow/key/name); `path` builds the route."""

    @group.command(
        "resolve", help=f"Resolve {what} with VALUE (JSON; default null): its waiter goes on."
    )
    @click.argument("target", metavar=metavar)
    @click.argument("value", default="null")
    @_client_options
    def resolve(
        target: str, value: str, url: str, token: str | None, timeout: float | None
    ) -> None:
        body = _value_json(value)
        with _Client(url, token, _timeout(timeout, 30.0)) as client:
            client.request("POST", path(target, "resolve"), body=body, raw_null=True)
        _stderr().print(f"resolved {target}")

    @group.command(
        "reject",
        help=f"Reject {what}: its waiter gets a TerminalError(MESSAGE, code=CODE).",
    )
    @click.argument("target", metavar=metavar)
    @click.argument("message")
    @click.option("--code", type=click.IntRange(400, 599), default=500, show_default=True)
    @_client_options
    def reject(
        target: str, message: str, code: int, url: str, token: str | None, timeout: float | None
    ) -> None:
        with _Client(url, token, _timeout(timeout, 30.0)) as client:
            client.request("POST", path(target, "reject"), body={"message": message, "code": code})
        _stderr().print(f"rejected {target}")


_completion_commands(
    awakeable, "an awakeable", "ID", lambda target, action: f"/awakeables/{_seg(target)}/{action}"
)
_completion_commands(promise, "a workflow's durable promise", "WORKFLOW/KEY/PROMISE", _promise_path)


@cli.group()
def journal() -> None:
    """Read invocation journals."""


@journal.command("show")
@click.argument("invocation_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a timeline.")
@_readonly_options
@_client_options
def show_journal(
    invocation_id: str,
    as_json: bool,
    data: Path | None,
    app_ref: str | None,
    url: str,
    token: str | None,
    timeout: float | None,
) -> None:
    """The committed journal of an invocation (a finished one while its record is retained),
    as a timeline."""
    record, entries = _fetch_invocation(invocation_id, data, app_ref, url, token, timeout)
    if as_json:
        _echo_json(entries)
    elif entries:
        _stdout().print(_timeline(record, entries))
    else:
        _stderr().print(f"{invocation_id} has no journal entries")


# ----------------------------------------------------------------------------- state


@cli.group()
def state() -> None:
    """Read the committed state of virtual objects."""


def _fetch_state(
    type_name: str,
    key: str,
    data: Path | None,
    app_ref: str | None,
    url: str,
    token: str | None,
    timeout: float | None,
) -> dict[str, Any]:
    if data is not None:
        return _read(data, app_ref, lambda i: _plain(i.get_state(type_name, key)))
    with _Client(url, token, _timeout(timeout, 30.0)) as client:
        found: dict[str, Any] = client.request("GET", f"/state/{_seg(type_name)}/{_seg(key)}")[
            "state"
        ]
    return found


@state.command("get")
@click.argument("type_name", metavar="TYPE")
@click.argument("key")
@click.argument("name", required=False)
@_readonly_options
@_client_options
def state_get(
    type_name: str,
    key: str,
    name: str | None,
    data: Path | None,
    app_ref: str | None,
    url: str,
    token: str | None,
    timeout: float | None,
) -> None:
    """Print the state of TYPE/KEY as JSON (all of it, or the value NAME)."""
    found = _fetch_state(type_name, key, data, app_ref, url, token, timeout)
    if name is None:
        _echo_json(found)
    elif name in found:
        _echo_json(found[name])
    else:
        names = ", ".join(found) or "none"
        raise Failed(f"no_state: {type_name}/{key} has no state {name!r} (it has: {names})")


@state.command("list")
@click.argument("type_name", metavar="TYPE")
@click.argument("key")
@_readonly_options
@_client_options
def state_list(
    type_name: str,
    key: str,
    data: Path | None,
    app_ref: str | None,
    url: str,
    token: str | None,
    timeout: float | None,
) -> None:
    """List the state names of TYPE/KEY, one per line."""
    for name in _fetch_state(type_name, key, data, app_ref, url, token, timeout):
        click.echo(name)


# ----------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Run the ``actors`` command line; returns the exit status."""
    try:
        cli.main(args=argv, prog_name="actors", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


if __name__ == "__main__":
    raise SystemExit(main())
