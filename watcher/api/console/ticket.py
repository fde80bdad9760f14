"""One ticket as an agent works it: ``/console/tickets/{id}`` and the ticket's own actions.

The page shows the timeline, the symptoms, the affected people with their contact and what
they were sent (and whether it arrived), the callback list with phones and "call owed", and
the buttons: acknowledge, resolve, mark planned, add a callback.  Those four are the
``ACTIONS`` this module adds to ``POST /console/act`` (``act``).

``view`` turns a ticket's JSON document into what the templates show (names, local times,
states); the board shows each row through it too.  ``clock`` and ``delivery_state`` are pure:
documents and the time in, text out.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from watcher.api.console.common import Action, base, err, guarded, html, log, page, person, runtime
from watcher.api.console.times import UTC_ZONE, ago, local_time, span, zone_of
from watcher.api.console.words import words
from watcher.api.tickets import apply_ticket_op
from watcher.config import Config
from watcher.model import parse_time, utcnow
from watcher.runtime import Runtime
from watcher.sinks import api as sinks_api


def clock(doc: dict[str, Any], now: datetime, lang: str = "en", zone: ZoneInfo = UTC_ZONE) -> tuple[str, str]:
    """The SLA clock of a ticket as (css class, text): time left to react, or how late; an
    acknowledged or planned ticket's clock is stopped; a ticket handed to a team shows the
    team's next deadline (in ``zone``) or what it missed."""
    w = words(lang)
    sla = doc.get("sla") or {}
    if doc.get("planned"):
        return "planned", w["planned"]
    esc = doc.get("escalation") or {}
    if esc.get("team") and doc.get("status") != "resolved":  # handed over: the team's clocks and misses
        missed = [w[k] for k in ("reaction", "resolution") if esc.get(f"{k}_missed")]
        if missed:
            joined = f" {w['and']} ".join(missed)
            return "breached", f"{esc['team']}: {joined} {w['missed']}"
        resolving = bool(esc.get("reacted_at")) or not esc.get("react_by")
        due = esc.get("resolve_by") if resolving else esc.get("react_by")
        when = local_time(due, zone, now) if due else "-"
        return "ok", f"{w['with']} {esc['team']}, {w['resolve_by'] if resolving else w['react_by']} {when}"
    if doc.get("status") == "acknowledged":
        return "stopped", w["acknowledged"]
    if doc.get("status") == "resolved":
        return "stopped", w["resolved"]
    if sla.get("escalated_at"):
        return "breached", w["escalated"]
    if not sla.get("react_by"):
        return "ok", "-"
    left = (parse_time(sla["react_by"]) - now).total_seconds()
    if left <= 0:
        return "breached", f"{w['late_by']} {span(-left, w)}"
    return ("soon" if left < 1800 else "ok"), f"{span(left, w)} {w['left']}"


def delivery_state(n: dict[str, Any]) -> str:
    """sent, retrying, undelivered or queued, from a notification merged with the outbox."""
    state = n.get("state") or "pending"
    if state == "sent" or n.get("sent_at"):
        return "sent"
    if state == "dead":
        return "undelivered"
    if int(n.get("attempts") or 0) > 0 or n.get("error"):
        return "retrying"
    return "queued"


def _entity(config: Config, doc: dict[str, Any]) -> str:
    entity = doc.get("entity") or {}
    kind, ident = str(entity.get("kind", "")), str(entity.get("id", ""))
    inv = config.inventory
    if kind == "site" and ident in inv.sites:
        return inv.sites[ident].name
    if kind == "share" and ident in inv.shares:
        return inv.shares[ident].name
    if kind == "client" and ident in inv.clients:
        return inv.clients[ident].name
    return ident


_DETAIL_LABELS = ("host", "instance", "snmp_agent", "ifDescr", "mailbox", "share", "folder", "severity")


def _detail(labels: dict[str, str] | None) -> str:
    """The labels of a timeline entry that tell an agent where: host, instance, interface..."""
    if not labels:
        return ""
    return ", ".join(f"{k}={labels[k]}" for k in _DETAIL_LABELS if labels.get(k))


def view(config: Config, doc: dict[str, Any], now: datetime, lang: str) -> dict[str, Any]:
    """One ticket document as the templates show it: names, local times, states."""
    zone = zone_of(config, doc.get("client"))
    client = config.inventory.clients.get(doc.get("client") or "")
    site = config.inventory.sites.get(doc.get("site") or "")
    css, text = clock(doc, now, lang, zone)
    notes_by_person: dict[str, list[dict[str, Any]]] = {}
    for n in doc.get("notifications") or []:
        item = {**n, "delivery": delivery_state(n), "when": local_time(n.get("sent_at") or n.get("at"), zone, now)}
        notes_by_person.setdefault(n["to"], []).append(item)
    affected = [{**person(config, pid), "why": (doc.get("affected_why") or {}).get(pid),
                 "notices": notes_by_person.get(pid, [])} for pid in doc.get("affected") or []]
    callbacks = [{**person(config, c["person"]), "added": local_time(c.get("added_at"), zone, now),
                  "done": bool(c.get("done_at")), "owed": "owed" in (c.get("how") or "")}
                 for c in doc.get("callbacks") or []]
    others = [{**person(config, to), "notices": notes} for to, notes in notes_by_person.items()
              if to not in (doc.get("affected") or [])]
    failing = sum(1 for notes in notes_by_person.values() for n in notes
                  if n["delivery"] in ("retrying", "undelivered"))
    timeline = [{**e, "when": local_time(e.get("at"), zone, now), "detail": _detail(e.get("labels"))}
                for e in doc.get("timeline") or []]
    return {
        "doc": doc, "id": doc["id"], "client_name": client.name if client else doc.get("client"),
        "site_name": site.name if site else "", "entity": _entity(config, doc), "tz": str(zone),
        "opened": local_time(doc.get("opened_at"), zone, now), "opened_ago": ago(doc.get("opened_at"), now, lang),
        "clock_css": css, "clock": text, "affected": affected, "callbacks": callbacks, "others": others,
        "failing": failing, "timeline": [e for e in timeline if e.get("role") != "symptom"],
        "symptoms": [e for e in timeline if e.get("role") == "symptom"],
        "acked": (local_time(doc.get("acknowledged_at"), zone, now), doc.get("acknowledged_by")),
        "external": [{**e, "css": {"failed": "breached", "pending": "soon"}.get(e.get("state", ""), "ok")}
                     for e in doc.get("external") or []],
        "client_people": sorted(((p.id, p.name) for p in client.people), key=lambda x: x[1]) if client else [],
    }


async def attach_external(rt: Runtime, docs: list[dict[str, Any]]) -> None:
    """The ticket in the helpdesk's own systems (RT, Zammad, Jira...), where sinks are set up."""
    if getattr(rt, "sinks", None) is None:
        return
    await asyncio.to_thread(sinks_api.attach, rt.store, docs)


async def get_ticket(request: web.Request) -> web.Response:
    agent, lang = await guarded(request)
    rt = runtime(request)
    doc = await asyncio.to_thread(rt.store.get_ticket, request.match_info["id"])
    if doc is None:
        raise web.HTTPNotFound(text=f"no ticket {request.match_info['id']}")
    await attach_external(rt, [doc])
    t = view(rt.config, doc, utcnow(), lang)
    ctx = {**base(request, agent, lang, f"{t['id']}: {doc.get('title', '')}", "tickets"), "t": t}
    return html(page("ticket.html", **ctx))


# ---------------------------------------------------------------- actions (POST /console/act)


async def _ticket_action(rt: Runtime, data: dict[str, Any], kind: str, args: dict[str, Any], agent: str
                         ) -> web.Response:
    tid = data.get("ticket")
    if not isinstance(tid, str) or not tid:
        return err(400, "ticket: expected a ticket id")
    failed = await apply_ticket_op(rt, tid, kind, args)
    if failed is not None:
        return failed
    log.info("console: %s: %s %s", agent, kind if kind != "office_answer" else "marked planned", tid)
    return web.json_response({"status": "success", "ticket": tid})


async def _ack(rt: Runtime, data: dict[str, Any], agent: str) -> web.Response:
    return await _ticket_action(rt, data, "ack", {"by": agent}, agent)


async def _resolve(rt: Runtime, data: dict[str, Any], agent: str) -> web.Response:
    return await _ticket_action(rt, data, "resolve", {"by": agent}, agent)


async def _planned(rt: Runtime, data: dict[str, Any], agent: str) -> web.Response:
    return await _ticket_action(rt, data, "office_answer", {"answer": "planned", "by": agent}, agent)


async def _callback(rt: Runtime, data: dict[str, Any], agent: str) -> web.Response:
    pid = data.get("person")
    if not isinstance(pid, str) or pid not in rt.config.inventory.people:
        return err(400, f"person: expected a person id of the inventory, got {pid!r}")
    return await _ticket_action(rt, data, "callback", {"person": pid, "by": agent}, agent)


ACTIONS: dict[str, Action] = {"ack": _ack, "resolve": _resolve, "planned": _planned, "callback": _callback}

ROUTES: list[web.RouteDef] = [web.get("/console/tickets/{id}", get_ticket)]
