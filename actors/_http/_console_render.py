"""The web console's pages as HTML (pure functions: records and decoded values in, markup out).

Every value that comes from users (keys, handler names, arguments, state, results, error
messages, journal step names) goes through `esc`, attributes included; URLs are built from
percent-encoded segments and escaped as well. The pages carry no inline script or style: the
console's Content-Security-Policy forbids both, so markup injected despite escaping could not
run.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import attrs

from .._clock import from_micros, to_micros
from .._journal import JournalEntry
from .._records import InvocationRecord, InvocationStatus
from ._wire import _plain, path_segment

REFRESH_SECONDS = 3
"""How often the pages' live region refetches itself (the toggle in the header pauses it)."""
MAX_VALUE_CHARS = 20_000
"""Longer rendered values are cut (the API returns them whole)."""


def esc(value: object) -> str:
    """`value` as text, HTML-escaped for element content and quoted attributes alike."""
    return html.escape(str(value), quote=True)


@attrs.frozen(kw_only=True)
class Decoded:
    """A stored value decoded for display, or why it could not be."""

    value: Any = None
    error: str | None = None


def pretty(value: Any) -> str:
    """A value as indented JSON (attrs and dataclass instances, tuples, sets, datetimes, UUIDs
    and enums in their JSON forms, as the API shows them), or its repr when it has none.
    Unescaped text: pass it through `esc`."""
    try:
        text = json.dumps(value, default=_plain, indent=2, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    if len(text) > MAX_VALUE_CHARS:
        more = len(text) - MAX_VALUE_CHARS
        text = f"{text[:MAX_VALUE_CHARS]}\n... ({more} more characters; the API has it all)"
    return text


def value_block(decoded: Decoded) -> str:
    """A decoded value as a ``<pre>`` block."""
    if decoded.error is not None:
        return f'<pre class="error">{esc(decoded.error)}</pre>'
    return f"<pre>{esc(pretty(decoded.value))}</pre>"


def fmt_time(micros: int | None) -> str:
    """µs since the epoch as ``2026-01-02 03:04:05.678 UTC`` (``-`` for None)."""
    if micros is None:
        return "-"
    return from_micros(micros).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def fmt_duration(micros: int) -> str:
    """A duration in µs, in the largest fitting unit."""
    if micros < 0:
        return f"-{fmt_duration(-micros)}"
    if micros < 1_000:
        return f"{micros} µs"
    if micros < 1_000_000:
        return f"{micros / 1_000:.1f} ms"
    if micros < 60_000_000:
        return f"{micros / 1_000_000:.2f} s"
    seconds = micros // 1_000_000
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def invocation_url(invocation_id: str) -> str:
    """The console page of an invocation."""
    return f"/ui/invocations/{path_segment(invocation_id)}"


def actor_url(actor_type: str, key: str) -> str:
    """The console page of one keyed actor."""
    return f"/ui/actors/{path_segment(actor_type)}/{path_segment(key)}"


def list_url(**filters: str) -> str:
    """The invocations list with these filters."""
    query = urlencode({k: v for k, v in filters.items() if v})
    return f"/ui?{query}" if query else "/ui"


def link(url: str, text: str, *, css: str = "") -> str:
    """An escaped link."""
    klass = f' class="{esc(css)}"' if css else ""
    return f'<a href="{esc(url)}"{klass}>{esc(text)}</a>'


def status_badge(status: InvocationStatus | str) -> str:
    """A status as a coloured badge."""
    value = status.value if isinstance(status, InvocationStatus) else status
    return f'<span class="status status-{esc(value)}">{esc(value)}</span>'


def actor_link(record: InvocationRecord) -> str:
    """The actor an invocation runs on, linked to its page when it is keyed."""
    if not record.actor.key:
        return f'{esc(record.actor.type)} <span class="muted">(service)</span>'
    return link(actor_url(record.actor.type, record.actor.key), record.actor.key)


def page(title: str, body: str) -> str:
    """A whole console page. `body` is markup; the ``<section id="live">`` inside it (see
    `live`) is what the script refetches."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{esc(title)} - trio-actors console</title>
<link rel="stylesheet" href="/ui/style.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<header class="top">
<a class="brand" href="/ui">trio-actors</a>
<a href="/ui">Invocations</a>
<span class="spacer"></span>
<span id="refreshed" aria-live="polite"></span>
<button id="refresh-toggle" type="button" hidden>Auto-refresh</button>
</header>
<main>
{body}
</main>
</body>
</html>
"""


def live(content: str, *, refresh: bool = True) -> str:
    """The region the script refetches every `REFRESH_SECONDS` (unless paused)."""
    seconds = REFRESH_SECONDS if refresh else 0
    return f'<section id="live" data-refresh="{seconds}">\n{content}\n</section>'


def error_page(status: int, code: str, message: str) -> str:
    """A refusal as a page (the API gives the same as JSON)."""
    body = (
        f'<p class="crumbs">{link("/ui", "Invocations")}</p>'
        f"<h1>{esc(status)} {esc(code.replace('_', ' '))}</h1>"
        f'<p class="flash error">{esc(message)}</p>'
    )
    return page(f"{status} {code}", body)


def login_page(message: str) -> str:
    """What a browser without the node's token sees."""
    body = (
        "<h1>This node needs its token</h1>"
        f'<p class="flash error">{esc(message)}</p>'
        "<p>Open <code>/ui?token=YOUR_TOKEN</code> once (the token the node was started with,"
        " e.g. <code>actors serve --token</code>); the console then keeps it in an HttpOnly"
        " cookie for this site and removes it from the address bar.</p>"
    )
    return page("token needed", body)


# ----------------------------------------------------------------------------- list page


@attrs.frozen(kw_only=True)
class ListFilters:
    """The invocations list's filters, as given in the query string."""

    status: str = ""
    actor: str = ""
    handler: str = ""
    key: str = ""
    limit: int = 200


def _select(name: str, label: str, current: str, options: Iterable[str]) -> str:
    items = [f'<option value=""{" selected" if not current else ""}>any</option>']
    for option in options:
        selected = " selected" if option == current else ""
        items.append(f'<option value="{esc(option)}"{selected}>{esc(option)}</option>')
    return (
        f'<label>{esc(label)}<select name="{esc(name)}" id="filter-{esc(name)}">'
        f"{''.join(items)}</select></label>"
    )


def _text(name: str, label: str, current: str, *, kind: str = "text") -> str:
    return (
        f'<label>{esc(label)}<input type="{kind}" name="{esc(name)}" id="filter-{esc(name)}"'
        f' value="{esc(current)}"></label>'
    )


def invocation_rows(records: Sequence[InvocationRecord]) -> str:
    """Table rows of invocations: id, actor, key, handler, status, attempts, times, error."""
    rows = []
    for r in records:
        error = r.last_error or (r.failure.message if r.failure is not None else "")
        rows.append(
            "<tr>"
            f'<td class="mono">{link(invocation_url(str(r.id)), str(r.id), css="inv")}</td>'
            f"<td>{esc(r.actor.type)}</td>"
            f'<td class="key">{actor_link(r) if r.actor.key else "-"}</td>'
            f"<td>{esc(r.handler)}</td>"
            f"<td>{status_badge(r.status)}</td>"
            f'<td class="num">{esc(r.attempts)}</td>'
            f'<td class="time">{esc(fmt_time(r.created_at))}</td>'
            f'<td class="time">{esc(fmt_time(r.modified_at))}</td>'
            f'<td class="error">{esc(error)}</td>'
            "</tr>"
        )
    return "\n".join(rows)


INVOCATION_HEAD = (
    "<thead><tr><th>Invocation</th><th>Actor type</th><th>Key</th><th>Handler</th>"
    "<th>Status</th><th>Attempts</th><th>Created</th><th>Modified</th><th>Error</th></tr></thead>"
)


def list_page(
    *,
    filters: ListFilters,
    records: Sequence[InvocationRecord],
    total: int,
    described: Mapping[str, Mapping[str, Any]],
    error: str | None = None,
) -> str:
    """``/ui``: the filter form, the matching invocations (newest first), the hosted types."""
    handler_names = sorted({h for d in described.values() for h in d["handlers"]})
    form = (
        '<form class="filters" method="get" action="/ui" id="filters">'
        + _select("status", "Status", filters.status, [s.value for s in InvocationStatus])
        + _select("actor", "Actor type", filters.actor, list(described))
        + _select("handler", "Handler", filters.handler, handler_names)
        + _text("key", "Key", filters.key)
        + _text("limit", "Limit", str(filters.limit), kind="number")
        + '<button type="submit">Filter</button> '
        + link("/ui", "clear")
        + "</form>"
    )
    if error is not None:
        content = f'<p class="flash error">{esc(error)}</p>'
    elif not records:
        content = '<p class="empty">No invocation matches (finished ones are listed only while'
        content += " the node retains them: see <code>completed_retention</code>).</p>"
    else:
        counts: dict[str, int] = {}
        for r in records:
            counts[r.status.value] = counts.get(r.status.value, 0) + 1
        summary = ", ".join(f"{esc(n)} {esc(s)}" for s, n in sorted(counts.items()))
        shown = f"{len(records)} of {total}" if total > len(records) else f"{total}"
        content = (
            f'<p class="muted" id="summary">{esc(shown)} invocation(s), newest first:'
            f" {summary}</p>"
            f'<table class="invocations" id="invocations">{INVOCATION_HEAD}<tbody>'
            f"{invocation_rows(records)}</tbody></table>"
        )
    types = []
    for name, d in described.items():
        handlers = ", ".join(
            f"{esc(h)} <span class=kind>{esc(k)}</span>" for h, k in d["handlers"].items()
        )
        types.append(
            f"<tr><td>{link(list_url(actor=name), name)}</td>"
            f'<td class="kind">{esc(d["kind"])}</td><td>{handlers}</td></tr>'
        )
    hosted = (
        "<h2>Hosted actor types</h2>"
        "<table><thead><tr><th>Type</th><th>Kind</th><th>Handlers</th></tr></thead>"
        f"<tbody>{''.join(types)}</tbody></table>"
    )
    body = "<h1>Invocations</h1>" + form + live(content + hosted)
    return page("Invocations", body)


# ----------------------------------------------------------------------------- invocation page


ACTIONS = (
    ("pause", "Pause", None),
    ("resume", "Resume", None),
    (
        "cancel",
        "Cancel",
        "Cancel this invocation? Its handler gets InvocationCancelled at its next step, so its"
        " compensation runs.",
    ),
    (
        "kill",
        "Kill",
        "Kill this invocation? Its handler stops at once: no compensation runs and its"
        " uncommitted changes are dropped.",
    ),
)


def action_buttons(record: InvocationRecord) -> str:
    """The lifecycle buttons that apply to the invocation's status (they POST to the API)."""
    if record.status.finished:
        return ""
    buttons = []
    for action, label, question in ACTIONS:
        if action == "pause" and record.status is InvocationStatus.PAUSED:
            continue
        if action == "resume" and record.status is not InvocationStatus.PAUSED:
            continue
        url = f"/invocations/{path_segment(str(record.id))}/{action}"
        confirm = f' data-confirm="{esc(question)}"' if question else ""
        danger = ' class="danger"' if action in ("cancel", "kill") else ""
        buttons.append(
            f'<button type="button" id="action-{action}"{danger} data-action-url="{esc(url)}"'
            f' data-label="{esc(label)}"{confirm}>{esc(label)}</button>'
        )
    return f'<div class="actions">{"".join(buttons)}</div>'


def _entry_detail(entry: JournalEntry) -> str:
    """What one journal entry recorded, by kind."""
    if entry.failure is not None:
        return f'<div class="failure">failed: {esc(entry.failure)}</div>'
    value = entry.value
    kind = entry.kind
    if kind in ("sleep", "now", "deadline"):
        if isinstance(value, int) and not isinstance(value, bool):
            label = {"sleep": "wakes at", "now": "time", "deadline": "deadline"}[kind]
            return f'<div class="muted">{esc(label)} {esc(fmt_time(value))}</div>'
        if value is None and kind == "deadline":
            return '<div class="muted">no deadline</div>'
    if kind in ("send", "call") and isinstance(value, str):
        verb = "sent" if kind == "send" else "called"
        return f"<div>{esc(verb)} {link(invocation_url(value), value, css='mono')}</div>"
    if kind == "cancel":
        return '<div class="failure">the cancellation was delivered here</div>'
    if kind == "awakeable" and value is None:
        return '<div class="muted">awakeable created</div>'
    return f"<pre>{esc(pretty(value))}</pre>"


def timeline(record: InvocationRecord, entries: Sequence[JournalEntry]) -> str:
    """The journal as a timeline: each step, when it was recorded, the time since the previous
    step (or since the invocation was created), its attempts, what it recorded."""
    if not entries:
        if record.status.finished:
            return (
                '<p class="empty" id="journal-empty">No journal: it recorded no step, or its'
                " journal was not kept (a finished invocation keeps it only while its record"
                " is retained); its output is below.</p>"
            )
        return '<p class="empty" id="journal-empty">No step recorded yet.</p>'
    previous: int | None = record.created_at
    durations: list[int | None] = []
    for entry in entries:
        at = None if entry.recorded_at is None else to_micros(entry.recorded_at)
        durations.append(None if at is None or previous is None else max(at - previous, 0))
        previous = at
    longest = max((d for d in durations if d is not None), default=0) or 1
    items = []
    for entry, duration in zip(entries, durations, strict=True):
        classes = [entry.kind]
        if entry.failure is not None:
            classes.append("failed")
        if entry.attempts is not None and entry.attempts > 1:
            classes.append("retried")
        head = [
            f'<span class="mono muted">#{esc(entry.index)}</span>',
            f'<span class="kind">{esc(entry.kind)}</span>',
            f'<span class="step">{esc(entry.name) if entry.name else "&nbsp;"}</span>',
        ]
        if entry.recorded_at is not None:
            head.append(f'<span class="time muted">{esc(_clock_text(entry.recorded_at))}</span>')
        if duration is not None:
            head.append(
                f'<span class="duration" title="since the previous step">'
                f"+{esc(fmt_duration(duration))}</span>"
                f'<meter min="0" max="{longest}" value="{duration}"></meter>'
            )
        if entry.attempts is not None:
            css = "retries" if entry.attempts > 1 else "muted"
            plural = "attempt" if entry.attempts == 1 else "attempts"
            head.append(f'<span class="{css}">{esc(entry.attempts)} {plural}</span>')
        items.append(
            f'<li class="{esc(" ".join(classes))}" data-step="{esc(entry.name)}">'
            f'<div class="head">{"".join(head)}</div>{_entry_detail(entry)}</li>'
        )
    if not record.status.finished:
        waiting = status_badge(record.status)
        error = ""
        if record.last_error:
            error = f'<div class="failure">last error: {esc(record.last_error)}</div>'
        retry = ""
        if record.next_retry_at is not None:
            retry = f'<span class="muted">next attempt {esc(fmt_time(record.next_retry_at))}</span>'
        items.append(
            f'<li class="next"><div class="head"><span class="step">next step</span>'
            f"{waiting}{retry}</div>{error}</li>"
        )
    return f'<ol class="timeline" id="journal">{"".join(items)}</ol>'


def _clock_text(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S.%f")[:-3]


def invocation_page(
    *,
    record: InvocationRecord,
    args: Decoded,
    result: Decoded | None,
    entries: Sequence[JournalEntry],
    handler_kind: str | None,
) -> str:
    """``/ui/invocations/{id}``: facts, action buttons, arguments, output and journal."""
    rid = str(record.id)
    crumbs = [link("/ui", "Invocations"), esc(record.actor.type)]
    if record.actor.key:
        crumbs.append(link(actor_url(record.actor.type, record.actor.key), record.actor.key))
    facts = [
        ("Invocation", f'<span class="mono">{esc(rid)}</span>'),
        ("Actor", f"{esc(record.actor.type)} / {actor_link(record)}"),
        (
            "Handler",
            esc(record.handler)
            + (f' <span class="kind">{esc(handler_kind)}</span>' if handler_kind else ""),
        ),
        ("Status", status_badge(record.status)),
        ("Attempts", esc(record.attempts)),
        ("Created", esc(fmt_time(record.created_at))),
        ("Modified", esc(fmt_time(record.modified_at))),
    ]
    optional = [
        ("Last error", record.last_error),
        ("Next attempt", None if record.next_retry_at is None else fmt_time(record.next_retry_at)),
        ("Due", None if record.not_before is None else fmt_time(record.not_before)),
        ("Idempotency key", record.idempotency_key),
        ("Record expires", None if record.expires_at is None else fmt_time(record.expires_at)),
    ]
    facts += [(name, esc(value)) for name, value in optional if value is not None]
    facts_html = "".join(f"<dt>{esc(n)}</dt><dd>{v}</dd>" for n, v in facts)
    if record.failure is not None:
        f = record.failure
        output = (
            f'<div class="flash error" id="output">failed: {esc(f.error_type)} (code'
            f" {esc(f.code)}): {esc(f.message)}</div>"
        )
    elif result is not None:
        output = f'<div id="output">{value_block(result)}</div>'
    elif record.status.finished:
        output = f'<p class="empty" id="output">{esc(record.status.value)}: no result.</p>'
    else:
        output = '<p class="empty" id="output">Not finished yet.</p>'
    content = (
        f"<h1>{esc(record.actor.type)}.{esc(record.handler)} {status_badge(record.status)}</h1>"
        + action_buttons(record)
        + f'<dl class="facts" id="facts">{facts_html}</dl>'
        + f"<h2>Journal</h2>{timeline(record, entries)}"
        + f"<h2>Output</h2>{output}"
        + f'<h2>Arguments</h2><div id="arguments">{value_block(args)}</div>'
    )
    # The flash message stays outside the live region: a refresh must not wipe it.
    body = (
        f'<p class="crumbs">{" / ".join(crumbs)}</p>'
        '<div id="flash" class="flash" role="status" hidden></div>' + live(content)
    )
    return page(f"{record.actor.type}.{record.handler} {rid}", body)


# ----------------------------------------------------------------------------- actor page


def actor_page(
    *,
    actor_type: str,
    key: str,
    kind: str,
    handler_kinds: Mapping[str, str],
    state: Mapping[str, Decoded],
    mailbox: Sequence[InvocationRecord],
    finished: Sequence[InvocationRecord],
) -> str:
    """``/ui/actors/{type}/{key}``: the committed state and the mailbox (unfinished
    invocations in the order they hold or wait for the key)."""
    if state:
        state_rows = "".join(
            f'<tr><td class="mono">{esc(name)}</td><td>{value_block(value)}</td></tr>'
            for name, value in state.items()
        )
        state_html = (
            '<table id="state"><thead><tr><th>Name</th><th>Value</th></tr></thead>'
            f"<tbody>{state_rows}</tbody></table>"
        )
    else:
        state_html = '<p class="empty" id="state">No state.</p>'
    if mailbox:
        rows = []
        position = 0
        for r in mailbox:
            hkind = handler_kinds.get(r.handler, "")
            holds = hkind in ("exclusive", "run")
            order = ""
            if holds:
                position += 1
                order = str(position)
            rows.append(
                "<tr>"
                f'<td class="num">{esc(order)}</td>'
                f'<td class="mono">{link(invocation_url(str(r.id)), str(r.id), css="inv")}</td>'
                f'<td>{esc(r.handler)} <span class="kind">{esc(hkind)}</span></td>'
                f"<td>{status_badge(r.status)}</td>"
                f'<td class="num">{esc(r.attempts)}</td>'
                f'<td class="time">{esc(fmt_time(r.created_at))}</td>'
                f'<td class="error">{esc(r.last_error or "")}</td>'
                "</tr>"
            )
        mailbox_html = (
            '<p class="muted">Exclusive invocations hold the key one at a time, in this order'
            " (a paused one keeps it until it is resumed or killed); shared ones run"
            " alongside.</p>"
            '<table id="mailbox"><thead><tr><th>#</th><th>Invocation</th><th>Handler</th>'
            "<th>Status</th><th>Attempts</th><th>Created</th><th>Error</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    else:
        mailbox_html = '<p class="empty" id="mailbox">Empty: nothing is running or queued.</p>'
    if finished:
        finished_html = (
            f'<table id="finished">{INVOCATION_HEAD}<tbody>{invocation_rows(finished)}'
            "</tbody></table>"
        )
    else:
        finished_html = '<p class="empty" id="finished">None retained.</p>'
    content = (
        f"<h2>State</h2>{state_html}"
        f"<h2>Mailbox</h2>{mailbox_html}"
        f"<h2>Finished invocations</h2>{finished_html}"
    )
    body = (
        f'<p class="crumbs">{link("/ui", "Invocations")} / '
        f"{link(list_url(actor=actor_type), actor_type)} / "
        f"{link(list_url(actor=actor_type, key=key), 'all invocations of this key')}</p>"
        f'<h1>{esc(actor_type)} / <span class="mono" id="actor-key">{esc(key)}</span>'
        f' <span class="kind">{esc(kind)}</span></h1>' + live(content)
    )
    return page(f"{actor_type} / {key}", body)
