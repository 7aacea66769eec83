"""The web console's static assets: one small vanilla script and one stylesheet, served as
``/ui/app.js`` and ``/ui/style.css`` (no front-end build step; the pages carry no inline
script or style, so the console's Content-Security-Policy can forbid both)."""

from __future__ import annotations

APP_JS = """\
"use strict";
// trio-actors console: auto-refresh of the #live region, and the invocation action buttons.
// Pages are rendered (and escaped) by the server; this script only moves whole elements
// and sets textContent, never innerHTML.
(function () {
  const PAUSED_KEY = "actors-console-refresh-paused";
  let timer = null;

  function isPaused() {
    try {
      return window.localStorage.getItem(PAUSED_KEY) === "1";
    } catch (err) {
      return false;
    }
  }

  function setPaused(paused) {
    try {
      if (paused) {
        window.localStorage.setItem(PAUSED_KEY, "1");
      } else {
        window.localStorage.removeItem(PAUSED_KEY);
      }
    } catch (err) {
      // storage disabled: the toggle still works for this page
    }
    showToggle();
    schedule();
  }

  function showToggle() {
    const button = document.getElementById("refresh-toggle");
    if (!button) {
      return;
    }
    const live = document.getElementById("live");
    const seconds = live ? Number(live.dataset.refresh || "0") : 0;
    if (!seconds) {
      button.hidden = true;
      return;
    }
    button.hidden = false;
    const paused = isPaused();
    button.textContent = paused ? "Auto-refresh: paused" : "Auto-refresh: every " + seconds + " s";
    button.setAttribute("aria-pressed", paused ? "false" : "true");
    button.classList.toggle("paused", paused);
  }

  function note(text) {
    const stamp = document.getElementById("refreshed");
    if (stamp) {
      stamp.textContent = text;
    }
  }

  async function refresh() {
    const live = document.getElementById("live");
    if (!live) {
      return;
    }
    try {
      const response = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { accept: "text/html" },
        cache: "no-store",
      });
      if (!response.ok) {
        note("refresh failed: HTTP " + response.status);
        return;
      }
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = doc.getElementById("live");
      if (fresh) {
        live.replaceWith(document.adoptNode(fresh));
        note("updated " + new Date().toLocaleTimeString());
      }
    } catch (err) {
      note("refresh failed: " + err);
    }
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = null;
    const live = document.getElementById("live");
    const seconds = live ? Number(live.dataset.refresh || "0") : 0;
    if (!seconds || isPaused()) {
      return;
    }
    timer = window.setTimeout(async function () {
      if (document.visibilityState !== "hidden") {
        await refresh();
      }
      schedule();
    }, seconds * 1000);
  }

  function flash(text, kind) {
    const box = document.getElementById("flash");
    if (!box) {
      return;
    }
    box.textContent = text;
    box.className = kind ? "flash " + kind : "flash";
    box.hidden = !text;
  }

  async function act(button) {
    const label = button.dataset.label || button.textContent;
    const question = button.dataset.confirm;
    if (question && !window.confirm(question)) {
      return;
    }
    button.disabled = true;
    flash(label + ": sending...", "pending");
    try {
      const response = await fetch(button.dataset.actionUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { accept: "application/json" },
      });
      let body = null;
      try {
        body = await response.json();
      } catch (err) {
        body = null;
      }
      if (response.ok) {
        const ok = body && typeof body.status === "string";
        const status = ok ? " (status now " + body.status + ")" : "";
        flash(label + ": done" + status, "ok");
      } else {
        const known = body && typeof body.message === "string";
        const reason = known ? body.message : "HTTP " + response.status;
        flash(label + " refused: " + reason, "error");
      }
    } catch (err) {
      flash(label + " failed: " + err, "error");
    } finally {
      button.disabled = false;
    }
    await refresh();
    schedule();
  }

  document.addEventListener("click", function (event) {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) {
      return;
    }
    const action = target.closest("button[data-action-url]");
    if (action) {
      event.preventDefault();
      act(action);
      return;
    }
    if (target.closest("#refresh-toggle")) {
      event.preventDefault();
      setPaused(!isPaused());
    }
  });

  function start() {
    showToggle();
    schedule();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
"""

STYLE_CSS = """\
:root {
  --fg: #1d2330;
  --muted: #5b6475;
  --line: #d9dde5;
  --bg: #ffffff;
  --panel: #f5f7fa;
  --accent: #2458c6;
  --ok: #1b7a3d;
  --warn: #a35a00;
  --bad: #b3261e;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg);
  background: var(--bg);
}
body { margin: 0; font-size: 14px; line-height: 1.45; }
header.top {
  display: flex; align-items: center; gap: 1rem; padding: 0.6rem 1.2rem;
  background: #18243d; color: #fff;
}
header.top a { color: #fff; text-decoration: none; }
header.top .brand { font-weight: 700; letter-spacing: 0.02em; }
header.top .spacer { flex: 1; }
header.top #refreshed { color: #b8c3da; font-size: 12px; }
header.top button {
  background: #2d3b5c; color: #fff; border: 1px solid #4a5a80; border-radius: 4px;
  padding: 0.2rem 0.6rem; cursor: pointer;
}
header.top button.paused { background: #6b4b00; border-color: #a37a20; }
main { padding: 1rem 1.2rem 3rem; max-width: 1400px; }
h1 { font-size: 1.35rem; margin: 0.2rem 0 0.8rem; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 0.5rem; border-bottom: 1px solid var(--line); }
a { color: var(--accent); }
.crumbs { color: var(--muted); margin: 0 0 0.3rem; }
.muted { color: var(--muted); }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
pre {
  background: var(--panel); border: 1px solid var(--line); border-radius: 4px;
  padding: 0.5rem 0.7rem; margin: 0; overflow-x: auto; max-height: 28rem;
  white-space: pre-wrap; word-break: break-word;
}
td pre { max-height: 12rem; padding: 0.2rem 0.4rem; }
table { border-collapse: collapse; width: 100%; }
th, td {
  text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--line);
  vertical-align: top;
}
th { background: var(--panel); font-weight: 600; white-space: nowrap; }
tr:hover td { background: #fafbfd; }
td.num { text-align: right; white-space: nowrap; }
td.time { white-space: nowrap; }
td.error { color: var(--bad); min-width: 12rem; }
td.key { white-space: nowrap; max-width: 24rem; overflow: hidden; text-overflow: ellipsis; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-all; }
form.filters {
  display: flex; flex-wrap: wrap; gap: 0.6rem 1rem; align-items: end;
  background: var(--panel); border: 1px solid var(--line); border-radius: 4px;
  padding: 0.6rem 0.8rem; margin-bottom: 0.8rem;
}
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
form.filters input, form.filters select {
  font-size: 14px; padding: 0.2rem 0.3rem; min-width: 9rem;
}
form.filters input[type=number] { min-width: 5rem; width: 5rem; }
button { font-size: 14px; }
.actions { display: flex; gap: 0.5rem; margin: 0.4rem 0 1rem; }
.actions button {
  border: 1px solid var(--line); background: #fff; border-radius: 4px;
  padding: 0.3rem 0.9rem; cursor: pointer;
}
.actions button.danger { border-color: #e3aaa6; color: var(--bad); }
.actions button:disabled { opacity: 0.5; cursor: wait; }
.flash {
  padding: 0.5rem 0.8rem; border-radius: 4px; margin: 0 0 0.8rem; border: 1px solid var(--line);
}
.flash.ok { background: #e8f5ec; border-color: #a6d5b5; }
.flash.error { background: #fbeaea; border-color: #e3aaa6; color: var(--bad); }
.flash.pending { background: var(--panel); }
.status {
  display: inline-block; padding: 0.05rem 0.45rem; border-radius: 999px; font-size: 12px;
  border: 1px solid var(--line); background: var(--panel); white-space: nowrap;
}
.status-completed { background: #e8f5ec; border-color: #a6d5b5; color: var(--ok); }
.status-failed, .status-killed { background: #fbeaea; border-color: #e3aaa6; color: var(--bad); }
.status-paused, .status-backing_off {
  background: #fff4e0; border-color: #f0cd8c; color: var(--warn);
}
.status-running { background: #e7efff; border-color: #a9c1f0; color: var(--accent); }
.status-suspended, .status-scheduled, .status-inbox { color: var(--muted); }
.kind { font-size: 12px; color: var(--muted); }
ol.timeline { list-style: none; padding: 0; margin: 0; border-left: 2px solid var(--line); }
ol.timeline li { position: relative; margin: 0 0 0.7rem 0; padding: 0.1rem 0 0 1rem; }
ol.timeline li::before {
  content: ""; position: absolute; left: -7px; top: 0.45rem; width: 10px; height: 10px;
  border-radius: 50%; background: var(--accent); border: 1px solid #fff;
}
ol.timeline li.failed::before { background: var(--bad); }
ol.timeline li.retried::before { background: var(--warn); }
ol.timeline .head { display: flex; flex-wrap: wrap; gap: 0.4rem 0.9rem; align-items: baseline; }
ol.timeline .step { font-weight: 600; }
ol.timeline meter { width: 8rem; height: 0.7rem; }
ol.timeline .failure { color: var(--bad); }
ol.timeline .retries { color: var(--warn); }
ol.timeline pre { margin-top: 0.25rem; }
.empty { color: var(--muted); font-style: italic; }
"""
