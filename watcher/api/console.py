"""The agent console: open tickets with their SLA clocks, who is affected, who waits for a
call back, and the buttons an agent needs (acknowledge, resolve).

``render`` is pure (ticket documents and the time in, HTML out); the page is plain HTML
with a few lines of script that call the same JSON API the CLI and other tools use.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from watcher.model import parse_time

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.4em .5em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f4f4f4}
.breached{color:#b00020;font-weight:600}.soon{color:#b36b00;font-weight:600}.ok{color:#1b5e20}
.planned{color:#555;font-style:italic}.owed{color:#b00020}
button{margin-right:.3em}
"""

_SCRIPT = """
async function act(id, what) {
  const r = await fetch('/api/v1/tickets/' + encodeURIComponent(id) + '/' + what,
                        {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'});
  if (!r.ok) { alert(what + ': ' + r.status + ' ' + (await r.text())); }
  location.reload();
}
async function escalate(id) {
  const reason = prompt('Escalate ' + id + ' to the administrators: why can the helpdesk not solve it?');
  if (!reason) { return; }
  const r = await fetch('/api/v1/tickets/' + encodeURIComponent(id) + '/escalate',
                        {method: 'POST', headers: {'Content-Type': 'application/json'},
                         body: JSON.stringify({reason: reason})});
  if (!r.ok) { alert('escalate: ' + r.status + ' ' + (await r.text())); }
  location.reload();
}
"""


def clock(doc: dict[str, Any], now: datetime) -> tuple[str, str]:
    """The SLA clock of a ticket as (css class, text): time left to react, or how late."""
    sla = doc.get("sla") or {}
    if doc.get("planned"):
        return "planned", "planned"
    esc = doc.get("escalation") or {}
    if esc.get("team"):  # handed over: the team's clocks, and any miss (rules/escalation.py)
        missed = [w for w in ("reaction", "resolution") if esc.get(f"{w}_missed")]
        if missed:
            return "breached", f"{esc['team']}: {' and '.join(missed)} missed"
        due = esc.get("resolve_by") if esc.get("reacted_at") or not esc.get("react_by") else esc["react_by"]
        return "ok", f"with {esc['team']}, {'resolve' if due == esc.get('resolve_by') else 'react'} by {due}"
    if doc.get("status") == "acknowledged":
        return "ok", "acknowledged " + (doc.get("acknowledged_at") or "")
    if sla.get("escalated_at"):
        return "breached", f"escalated {sla['escalated_at']}"
    if not sla.get("react_by"):
        return "ok", "-"
    left = (parse_time(sla["react_by"]) - now).total_seconds()
    if left <= 0:
        return "breached", f"late by {_span(-left)}"
    return ("soon" if left < 1800 else "ok"), f"{_span(left)} left"


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _external(doc: dict[str, Any]) -> str:
    """The ticket in the helpdesk's own systems: a link per system and its sync state."""
    parts = []
    for e in doc.get("external") or []:
        label = escape(f"{e['sink']} #{e['external_id']}" if e.get("external_id") else e["sink"])
        link = f"<a href='{escape(e['url'])}'>{label}</a>" if e.get("url") else label
        css = {"failed": "breached", "pending": "soon"}.get(e.get("state", ""), "ok")
        parts.append(f"{link} <span class='{css}'>{escape(e.get('state', ''))}</span>")
    return "<br>" + " · ".join(parts) if parts else ""


def render(docs: list[dict[str, Any]], now: datetime) -> str:
    rows = []
    for d in sorted(docs, key=lambda d: (d.get("sla") or {}).get("react_by") or "9999"):
        css, text = clock(d, now)
        callbacks = ", ".join(
            escape(c["person"]) + (" ✓" if c.get("done_at") else "")
            + (' <span class="owed">(call owed)</span>' if "owed" in (c.get("how") or "") else "")
            for c in d.get("callbacks", [])) or "-"
        entity = d.get("entity") or {}
        tid = escape(d["id"])
        buttons = "" if d.get("status") == "resolved" else (
            (f"<button onclick=\"act('{tid}','ack')\">acknowledge</button>" if d.get("status") == "open" else "")
            + f"<button onclick=\"act('{tid}','resolve')\">resolve</button>"
            + f"<button onclick=\"escalate('{tid}')\">escalate</button>")
        rows.append(
            f"<tr><td><a href='/api/v1/tickets/{tid}'>{tid}</a>{_external(d)}</td><td>{escape(d['client'])}</td>"
            f"<td>{escape(d['category'])}<br>{escape(str(entity.get('kind', '')))} "
            f"{escape(str(entity.get('id', '')))}</td><td>{escape(d.get('title') or '')}</td>"
            f"<td>{escape(d.get('opened_at') or '')}</td><td class='{css}'>{escape(text)}</td>"
            f"<td>{len(d.get('affected', []))}</td><td>{callbacks}</td><td>{d.get('event_count', 0)}</td>"
            f"<td>{buttons}</td></tr>")
    body = "".join(rows) or "<tr><td colspan=10>No open tickets.</td></tr>"
    return (
        "<!doctype html><meta charset=utf-8><title>watcher: open tickets</title>"
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script>"
        f"<h1>Open tickets</h1><p>{escape(now.strftime('%Y-%m-%d %H:%M UTC'))} · {len(docs)} open</p>"
        "<table><tr><th>ticket</th><th>client</th><th>what</th><th>title</th><th>opened</th><th>SLA reaction</th>"
        "<th>affected</th><th>call back</th><th>events</th><th></th></tr>"
        f"{body}</table><p>API: <a href=/api/v1/tickets>/api/v1/tickets</a> · "
        "<a href=/api/v1/outbox?state=dead>undelivered notices</a> · <a href=/api/v1/stats>stats</a> · "
        "<a href=/metrics>metrics</a></p>")
