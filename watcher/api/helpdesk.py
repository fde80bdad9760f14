"""The helpdesk's working endpoints: the call list, recording calls, escalating, the office's
answer and the administrator's word on disk advice.

Every change is an ``Op`` through the inbox (``common.submit_op``), like ack and resolve, so replay
gives the same tickets; reads come from the store.  Input is checked here, at the edge: an
unknown field or value is a 400 naming it.
"""

from __future__ import annotations

import asyncio
from html import escape
from typing import Any

from aiohttp import web

from watcher.api import common
from watcher.rules import calls
from watcher.rules.escalation import TEAMS
from watcher.rules.office import ANSWERS
from watcher.runtime import RUNTIME, Runtime

TEXT_FIELDS = ("note", "by", "reason", "phone", "preferred_time", "person", "to", "outcome", "answer", "action")
RESOLVED_SCANNED = 2000  # resolved tickets looked at for calls still owed (newest first)


def _check(data: dict[str, Any], allowed: set[str]) -> web.Response | None:
    bad = common.unknown_fields(data, allowed)
    if bad is not None:
        return bad
    for key in TEXT_FIELDS:
        if key in data and data[key] is not None and (not isinstance(data[key], str) or len(data[key]) > 500):
            return common.error(400, f"{key}: expected a string of at most 500 characters")
    return None


async def _ticket_doc(rt: Runtime, tid: str) -> dict[str, Any] | None:
    return await asyncio.to_thread(rt.store.get_ticket, tid)


async def _apply(rt: Runtime, tid: str, kind: str, args: dict[str, Any]) -> web.Response:
    doc = await _ticket_doc(rt, tid)
    if doc is None:
        return common.error(404, f"no ticket {tid}")
    result = await common.submit_op(rt, kind, {"ticket": tid, **args})
    if not result.get("tickets"):
        return common.error(409, f"{kind} on {tid}: {result.get('error') or 'nothing to do'}")
    return common.json_response(await _ticket_doc(rt, tid))


async def post_call(request: web.Request) -> web.Response:
    """An agent's call to a person who asked for one: ``{person, outcome, note, by}``."""
    rt, data, err = await common.api_guard(request)
    if err is not None:
        return err
    data = data or {}
    bad = _check(data, {"person", "outcome", "note", "by"})
    if bad is not None:
        return bad
    outcome = data.get("outcome", "reached")
    if outcome not in calls.OUTCOMES:
        return common.error(400, f"outcome: expected one of {', '.join(calls.OUTCOMES)}, got {outcome!r}")
    person = data.get("person")
    if person is not None and person not in rt.config.inventory.people:
        return common.error(400, f"person: expected a person id of the inventory, got {person!r}")
    return await _apply(rt, request.match_info["id"], "call",
                        {k: data[k] for k in ("person", "note", "by") if data.get(k)} | {"outcome": outcome})


async def post_escalate(request: web.Request) -> web.Response:
    """Hand a ticket to the administrators or the service team: ``{to, reason, by}``."""
    rt, data, err = await common.api_guard(request)
    if err is not None:
        return err
    data = data or {}
    bad = _check(data, {"to", "reason", "by"})
    if bad is not None:
        return bad
    if data.get("to") is not None and data["to"] not in TEAMS:
        return common.error(400, f"to: expected one of {', '.join(TEAMS)}, got {data['to']!r}")
    if not (data.get("reason") or "").strip():
        return common.error(400, "reason: say why the helpdesk cannot solve it (it goes to the team)")
    return await _apply(rt, request.match_info["id"], "escalate",
                        {k: data[k] for k in ("to", "reason", "by") if data.get(k)})


async def post_office_answer(request: web.Request) -> web.Response:
    """The office's answer to the call task: ``{answer: planned|failure|no_answer, by, note}``."""
    rt, data, err = await common.api_guard(request)
    if err is not None:
        return err
    data = data or {}
    bad = _check(data, {"answer", "by", "note"})
    if bad is not None:
        return bad
    if data.get("answer") not in ANSWERS:
        return common.error(400, f"answer: expected one of {', '.join(ANSWERS)}, got {data.get('answer')!r}")
    return await _apply(rt, request.match_info["id"], "office_answer",
                        {k: data[k] for k in ("answer", "by", "note") if data.get(k)})


async def post_advice(request: web.Request) -> web.Response:
    """An administrator confirms the cause of a filling share (advise ``person``) or dismisses it."""
    rt, data, err = await common.api_guard(request)
    if err is not None:
        return err
    data = data or {}
    bad = _check(data, {"action", "person", "by"})
    if bad is not None:
        return bad
    action = data.get("action", "confirm")
    if action not in ("confirm", "dismiss"):
        return common.error(400, f"action: expected confirm or dismiss, got {action!r}")
    person = data.get("person")
    if person is not None and person not in rt.config.inventory.people:
        return common.error(400, f"person: expected a person id of the inventory, got {person!r}")
    return await _apply(rt, request.match_info["id"], "advice",
                        {k: data[k] for k in ("person", "by") if data.get(k)} | {"action": action})


async def call_rows(rt: Runtime, client: str | None = None) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for status, limit in (("open", 5000), ("acknowledged", 5000), ("resolved", RESOLVED_SCANNED)):
        docs += await asyncio.to_thread(rt.store.list_tickets, status, client, None, limit)
    inv = rt.config.inventory
    return calls.call_list(docs, inv.people, inv.sites)


async def get_calls(request: web.Request) -> web.Response:
    """The call list: every call owed, on open, acknowledged and resolved tickets alike."""
    rt = request.app[RUNTIME]
    return common.json_response({"calls": await call_rows(rt, request.query.get("client"))})


_CALL_SCRIPT = """<script>
async function post(id, what, body) {
  const r = await fetch('/api/v1/tickets/' + encodeURIComponent(id) + '/' + what,
    {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  if (!r.ok) { alert(what + ': ' + r.status + ' ' + (await r.text())); }
  location.reload();
}
</script>"""


def calls_html(rows: list[dict[str, Any]]) -> str:
    """The console's call list: who to call, the number, and the buttons that record the call."""
    out = []
    for r in rows:
        tid = escape(r["ticket"], quote=True)
        if r["kind"] == "callback":
            person = escape(r["person"] or "", quote=True)
            buttons = "".join(
                f"<button onclick=\"post('{tid}','calls',{{person:'{person}',outcome:'{o}'}})\">{label}</button>"
                for o, label in (("reached", "called"), ("no_answer", "no answer")))
        else:
            buttons = "".join(
                f"<button onclick=\"post('{tid}','office-answer',{{answer:'{a}'}})\">{a.replace('_', ' ')}</button>"
                for a in ANSWERS)
        out.append(
            f"<tr><td>{'<b>now</b>' if r['call_now'] else ''}</td><td><a href='/api/v1/tickets/{tid}'>{tid}</a> "
            f"({escape(r['ticket_status'])})</td><td>{escape(r['name'] or '')}</td>"
            f"<td>{escape(r['phone'] or '-')}</td><td>{escape(r['site_name'] or r['site'] or '')}</td>"
            f"<td>{escape(r['preferred_time'] or '')}</td>"
            f"<td>{escape(' · '.join(x for x in (r['note'], r['reason']) if x))}</td><td>{buttons}</td></tr>")
    body = "".join(out) or "<tr><td colspan=8>No calls owed.</td></tr>"
    return (f"{_CALL_SCRIPT}<h2>Calls to make</h2><table><tr><th></th><th>ticket</th><th>who</th><th>phone</th>"
            f"<th>site</th><th>best time</th><th>note</th><th></th></tr>{body}</table>"
            "<p>API: <a href=/api/v1/calls>/api/v1/calls</a></p>")


ROUTES = [
    web.get("/api/v1/calls", get_calls),
    web.post("/api/v1/tickets/{id}/calls", post_call),
    web.post("/api/v1/tickets/{id}/escalate", post_escalate),
    web.post("/api/v1/tickets/{id}/office-answer", post_office_answer),
    web.post("/api/v1/tickets/{id}/advice", post_advice),
]
