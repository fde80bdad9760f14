"""The agent console: what a helpdesk agent on a shift works from.

Pages (server-rendered, Jinja2 with autoescaping, a few lines of script):

- ``/``: open tickets in the order they need action (unacknowledged before acknowledged,
  then by SLA time left, then by people affected and callers waiting), with client and
  office names, local times of the client's time zone and "x min ago", the SLA clock, who
  is affected, who waits for a call back (with phone numbers), failing notices; the table
  refreshes itself every few seconds (polling ``/console/live``);
- ``/console/tickets/{id}``: one ticket: timeline, symptoms, affected people with their
  contact and the delivery state of what they were sent, the callback list with phones and
  "call owed", and the actions: acknowledge, resolve, mark planned, add a callback;
- ``/console/silences``, ``/console/unbound``, ``/console/quarantine``,
  ``/console/undelivered``, ``/console/health``.

Every write is ``fetch()`` of JSON to ``POST /console/act`` from the page itself: the
handler refuses a body that is not JSON and a request whose ``Origin`` (or
``Sec-Fetch-Site``) is not this site, so another site cannot make an agent's browser act.
The agent's name comes from the session (see ``console_auth``), never from the body.

The pure parts (``order``, ``clock``, ``local_time``, ``ago``, ``delivery_state``) take
documents and the time, so tests check them without a server.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from watcher.api import console_auth as ca
from watcher.api import health
from watcher.config import Config
from watcher.model import EventError, format_time, parse_time, utcnow
from watcher.store.status import read_figures

log = logging.getLogger(__name__)

UTC_ZONE = ZoneInfo("UTC")
REFRESH_SECONDS = 5

# ---------------------------------------------------------------- words

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "open_tickets": "Open tickets", "ticket": "ticket", "client": "client", "what": "what", "title": "title",
        "opened": "opened", "sla": "SLA reaction", "affected": "affected", "callbacks": "call back",
        "events": "events", "no_open": "No open tickets.", "acknowledge": "acknowledge", "resolve": "resolve",
        "mark_planned": "mark planned", "add_callback": "add to callback list", "planned": "planned",
        "acknowledged": "acknowledged", "escalated": "escalated", "late_by": "late by", "left": "left",
        "ago": "ago", "just_now": "just now", "min": "min", "h": "h", "call_owed": "call owed",
        "called": "called", "signed_in_as": "signed in as", "sign_out": "sign out", "sign_in": "Sign in",
        "name": "name", "password": "password", "wrong_login": "Wrong name or password.",
        "timeline": "Timeline", "symptoms": "Symptoms", "people": "Affected people", "contact": "contact",
        "delivery": "notices", "sent": "sent", "retrying": "retrying", "undelivered": "undelivered",
        "queued": "queued", "nobody": "nobody", "office": "office", "status": "status", "open": "open",
        "resolved": "resolved", "silences": "Silences and maintenance", "unbound": "Unbound events",
        "quarantine": "Quarantined items", "undelivered_notices": "Undelivered notices",
        "health": "Collector health", "tickets": "Tickets", "matchers": "matchers", "until": "until",
        "from": "from", "comment": "comment", "mute": "mute (open nothing)", "create": "create",
        "lift": "lift", "site": "office", "reason": "reason", "maintenances": "Maintenance windows",
        "none": "None.", "not_available": "Not available in this version of watcher.", "error": "error",
        "last_run": "last run", "last_error": "last error", "runs": "runs", "job": "job",
        "recipient": "recipient", "kind": "kind", "attempts": "attempts", "count": "count", "first": "first",
        "last": "last", "source": "source", "names": "names", "item": "item", "at": "at",
        "updated": "updated", "failing": "failing", "ok": "ok", "phone": "phone", "person": "person",
        "details": "details", "back": "all tickets", "office_answer": "office answered",
        "lift_needs_api": "Lifting needs the silence API (GET/DELETE /api/v1/silences).",
        "by": "by", "language": "język: polski", "callers": "callers", "notices_failing": "failing",
        "calls": "Calls to make", "call_now": "now", "who": "who", "best_time": "best time", "note": "note",
        "reached": "reached", "left_message": "left a message", "no_answer": "no answer", "failure": "failure",
        "escalate": "escalate", "escalate_why": "Escalate to the administrators: why can the helpdesk not solve it?",
        "with": "with", "react_by": "react by", "resolve_by": "resolve by", "missed": "missed",
        "reaction": "reaction", "resolution": "resolution", "and": "and", "no_calls": "No calls owed.",
    },
    "pl": {
        "open_tickets": "Otwarte zgłoszenia", "ticket": "zgłoszenie", "client": "klient", "what": "czego dotyczy",
        "title": "tytuł", "opened": "otwarte", "sla": "reakcja SLA", "affected": "dotknięci",
        "callbacks": "oddzwonić", "events": "zdarzenia", "no_open": "Brak otwartych zgłoszeń.",
        "acknowledge": "przyjmij", "resolve": "rozwiąż", "mark_planned": "oznacz jako planowane",
        "add_callback": "dodaj do oddzwonienia", "planned": "planowane", "acknowledged": "przyjęte",
        "escalated": "eskalowane", "late_by": "spóźnione o", "left": "zostało", "ago": "temu",
        "just_now": "przed chwilą", "min": "min", "h": "godz.", "call_owed": "trzeba zadzwonić",
        "called": "oddzwonione", "signed_in_as": "zalogowany:", "sign_out": "wyloguj", "sign_in": "Zaloguj",
        "name": "nazwa", "password": "hasło", "wrong_login": "Zła nazwa lub hasło.",
        "timeline": "Przebieg", "symptoms": "Objawy", "people": "Dotknięte osoby", "contact": "kontakt",
        "delivery": "powiadomienia", "sent": "wysłane", "retrying": "ponawiane", "undelivered": "niedostarczone",
        "queued": "w kolejce", "nobody": "nikt", "office": "biuro", "status": "stan", "open": "otwarte",
        "resolved": "rozwiązane", "silences": "Wyciszenia i prace planowe", "unbound": "Zdarzenia bez przypisania",
        "quarantine": "Odłożone elementy", "undelivered_notices": "Niedostarczone powiadomienia",
        "health": "Stan kolektorów", "tickets": "Zgłoszenia", "matchers": "etykiety", "until": "do",
        "from": "od", "comment": "komentarz", "mute": "wycisz (nie otwieraj)", "create": "utwórz",
        "lift": "zdejmij", "site": "biuro", "reason": "powód", "maintenances": "Prace planowe",
        "none": "Brak.", "not_available": "Niedostępne w tej wersji watchera.", "error": "błąd",
        "last_run": "ostatnio", "last_error": "ostatni błąd", "runs": "uruchomienia", "job": "zadanie",
        "recipient": "odbiorca", "kind": "rodzaj", "attempts": "próby", "count": "liczba", "first": "pierwsze",
        "last": "ostatnie", "source": "źródło", "names": "nazwy", "item": "element", "at": "kiedy",
        "updated": "odświeżono", "failing": "nie działa", "ok": "działa", "phone": "telefon", "person": "osoba",
        "details": "szczegóły", "back": "wszystkie zgłoszenia", "office_answer": "odpowiedź biura",
        "lift_needs_api": "Zdjęcie wymaga API wyciszeń (GET/DELETE /api/v1/silences).",
        "by": "przez", "language": "language: English", "callers": "dzwoniący", "notices_failing": "nieudane",
        "calls": "Telefony do wykonania", "call_now": "teraz", "who": "kto", "best_time": "najlepiej",
        "note": "notatka", "reached": "rozmowa", "left_message": "zostawiona wiadomość", "no_answer": "nie odbiera",
        "failure": "awaria", "escalate": "eskaluj",
        "escalate_why": "Eskalacja do administratorów: dlaczego helpdesk nie może tego rozwiązać?",
        "with": "u", "react_by": "reakcja do", "resolve_by": "rozwiązanie do", "missed": "przekroczone",
        "reaction": "reakcja", "resolution": "rozwiązanie", "and": "i", "no_calls": "Brak telefonów do wykonania.",
    },
}


def words(lang: str) -> dict[str, str]:
    return WORDS.get(lang, WORDS["en"])


# ---------------------------------------------------------------- pure helpers


def _span(seconds: float, w: dict[str, str]) -> str:
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} {w['h']} {minutes:02d} {w['min']}" if hours else f"{minutes} {w['min']}"


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
        return "breached", f"{w['late_by']} {_span(-left, w)}"
    return ("soon" if left < 1800 else "ok"), f"{_span(left, w)} {w['left']}"


def order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What needs action first: unacknowledged (and not planned) before acknowledged and
    planned, then the least SLA time left, then the most people affected and callers."""
    def key(d: dict[str, Any]) -> tuple[int, str, int]:
        waiting = d.get("status") == "open" and not d.get("planned")
        react_by = (d.get("sla") or {}).get("react_by") or "9999"
        people = len(d.get("affected") or []) + len(d.get("callbacks") or [])
        return (0 if waiting else 1, react_by[:16], -people)
    return sorted(docs, key=key)


def zone_of(config: Config, client: str | None) -> ZoneInfo:
    c = config.inventory.clients.get(client or "")
    return c.timezone if c is not None else UTC_ZONE


def local_time(value: str | None, zone: ZoneInfo, now: datetime) -> str:
    """``HH:MM`` in the client's zone, with the date when it is not today there."""
    if not value:
        return ""
    at = parse_time(value).astimezone(zone)
    today = now.astimezone(zone).date()
    return at.strftime("%H:%M") if at.date() == today else at.strftime("%d.%m %H:%M")


def ago(value: str | None, now: datetime, lang: str = "en") -> str:
    if not value:
        return ""
    w = words(lang)
    seconds = (now - parse_time(value)).total_seconds()
    if seconds < 60:
        return w["just_now"]
    return f"{_span(seconds, w)} {w['ago']}"


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


# ---------------------------------------------------------------- views of documents


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


def _person(config: Config, pid: str) -> dict[str, Any]:
    p = config.inventory.people.get(pid)
    if p is None:
        if pid.startswith("office:"):
            site = config.inventory.sites.get(pid[len("office:"):])
            contact = site.office_contact if site else None
            return {"id": pid, "name": f"{site.name if site else pid}: {contact.name if contact else ''}",
                    "phone": contact.phone if contact else None, "email": contact.email if contact else None,
                    "site": site.name if site else ""}
        return {"id": pid, "name": pid, "phone": None, "email": None, "site": ""}
    site = config.inventory.sites.get(p.site or "")
    return {"id": p.id, "name": p.name, "phone": p.phone, "email": p.email or _mail_of(p.notify),
            "site": site.name if site else ""}


_DETAIL_LABELS = ("host", "instance", "snmp_agent", "ifDescr", "mailbox", "share", "folder", "severity")


def _detail(labels: dict[str, str] | None) -> str:
    """The labels of a timeline entry that tell an agent where: host, instance, interface..."""
    if not labels:
        return ""
    return ", ".join(f"{k}={labels[k]}" for k in _DETAIL_LABELS if labels.get(k))


def _mail_of(urls: tuple[str, ...]) -> str | None:
    for url in urls:
        if url.startswith("mailto://"):
            rest = url[len("mailto://"):].split("?", 1)[0]
            return rest if "@" in rest and ":" not in rest.split("@", 1)[0] else None
    return None


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
    affected = [{**_person(config, pid), "why": (doc.get("affected_why") or {}).get(pid),
                 "notices": notes_by_person.get(pid, [])} for pid in doc.get("affected") or []]
    callbacks = [{**_person(config, c["person"]), "added": local_time(c.get("added_at"), zone, now),
                  "done": bool(c.get("done_at")), "owed": "owed" in (c.get("how") or "")}
                 for c in doc.get("callbacks") or []]
    others = [{**_person(config, to), "notices": notes} for to, notes in notes_by_person.items()
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


# ---------------------------------------------------------------- templates

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                          autoescape=True, trim_blocks=True, lstrip_blocks=True)


def page(name: str, **context: Any) -> str:
    return _env.get_template(name).render(**context)


def render(docs: list[dict[str, Any]], now: datetime, config: Config, lang: str = "en", agent: str = "") -> str:
    """The ticket list page from documents and the time (tests render it without a server)."""
    ctx = {"w": words(lang), "lang": lang, "agent": agent, "title": words(lang)["open_tickets"], "active": "tickets",
           "mode": "open", "calls": None, **_list_context(docs, now, config, lang, agent)}
    return page("tickets.html", **ctx)


def _list_context(docs: list[dict[str, Any]], now: datetime, config: Config, lang: str, agent: str
                  ) -> dict[str, Any]:
    return {"w": words(lang), "lang": lang, "agent": agent, "refresh": REFRESH_SECONDS,
            "tickets": [view(config, d, now, lang) for d in order(docs)], "updated": now.strftime("%H:%M:%S UTC")}


# ---------------------------------------------------------------- handlers


def _rt(request: web.Request) -> Any:
    from watcher.runtime import RUNTIME

    return request.app[RUNTIME]


def _console_config(rt: Any) -> ca.ConsoleConfig:
    return rt.config.service.console or ca.ConsoleConfig()


async def _who(request: web.Request) -> tuple[str | None, str, web.StreamResponse | None]:
    """(agent name, language, or the response that stops the request)."""
    from watcher.api.common import read_auths as _read_auths
    from watcher.api.common import read_denied

    rt = _rt(request)
    cc = _console_config(rt)
    session = ca.read_cookie(rt.secret, request.cookies.get(ca.COOKIE))
    lang = session.lang if session else cc.language
    if cc.mode == "proxy":
        name = ca.proxy_user(cc, request.headers)
        if name is None:
            return None, lang, web.Response(status=401, text=f"the proxy did not send {cc.proxy_header}")
        return name, lang, None
    if cc.mode == "open" and _read_auths(rt):  # any configured credential guards the reads
        denied = read_denied(request, rt)
        if denied is not None:
            return None, lang, denied
    if session is None:
        return None, lang, None
    return session.name, lang, None


def _to_login(request: web.Request) -> NoReturn:
    raise web.HTTPSeeOther(location="/console/login")


async def _guarded(request: web.Request) -> tuple[str, str]:
    """The agent and language for a page; without a session, the sign-in page, except on an
    open console (no users, no proxy, no API credential), whose pages are as readable as the
    API is, and which asks for a name only when the agent acts."""
    name, lang, stop = await _who(request)
    if stop is not None:
        raise _as_exception(stop)
    if name is None:
        rt = _rt(request)
        from watcher.api.common import read_auths as _read_auths

        if _console_config(rt).mode == "open" and not _read_auths(rt):
            return "", lang
        _to_login(request)
    return name, lang


def _as_exception(resp: web.StreamResponse) -> web.HTTPException:
    exc = web.HTTPException(headers=resp.headers)
    exc.set_status(resp.status)
    if isinstance(resp, web.Response) and resp.body is not None:
        exc.body = resp.body
    return exc


def _html(text: str) -> web.Response:
    resp = web.Response(text=text, content_type="text/html")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                               "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
    return resp


def _base(request: web.Request, agent: str, lang: str, title: str, active: str) -> dict[str, Any]:
    rt = _rt(request)
    return {"w": words(lang), "lang": lang, "agent": agent, "title": title, "active": active,
            "mode": _console_config(rt).mode, "refresh": REFRESH_SECONDS}


async def _open_docs(rt: Any) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for status in ("open", "acknowledged"):
        docs += await asyncio.to_thread(rt.store.list_tickets, status, None, None, 1000)
    await _attach_external(rt, docs)
    return docs


async def _attach_external(rt: Any, docs: list[dict[str, Any]]) -> None:
    """The ticket in the helpdesk's own systems (RT, Zammad, Jira...), where sinks are set up."""
    if getattr(rt, "sinks", None) is None:
        return
    from watcher.sinks import api as sinks_api

    await asyncio.to_thread(sinks_api.attach, rt.store, docs)


async def get_index(request: web.Request) -> web.Response:
    agent, lang = await _guarded(request)
    rt = _rt(request)
    now = utcnow()
    ctx = {**_base(request, agent, lang, words(lang)["open_tickets"], "tickets"),
           **_list_context(await _open_docs(rt), now, rt.config, lang, agent), "calls": await _calls(rt, now)}
    return _html(page("tickets.html", **ctx))


async def _calls(rt: Any, now: datetime) -> list[dict[str, Any]] | None:
    """The call list (watcher.api.helpdesk), with local times; None where this build has none."""
    try:
        from watcher.api import helpdesk
    except ImportError:
        return None
    rows = await helpdesk.call_rows(rt)
    return [{**r, "asked": local_time(r.get("asked_at"), zone_of(rt.config, r.get("client")), now),
             "ago": ago(r.get("asked_at"), now)} for r in rows]


async def get_live(request: web.Request) -> web.Response:
    """The ticket table alone, for the page's polling: no reload, no lost scroll position."""
    agent, lang = await _guarded(request)
    rt = _rt(request)
    ctx = _list_context(await _open_docs(rt), utcnow(), rt.config, lang, agent)
    return _html(page("_rows.html", **ctx))


async def get_ticket(request: web.Request) -> web.Response:
    agent, lang = await _guarded(request)
    rt = _rt(request)
    doc = await asyncio.to_thread(rt.store.get_ticket, request.match_info["id"])
    if doc is None:
        raise web.HTTPNotFound(text=f"no ticket {request.match_info['id']}")
    await _attach_external(rt, [doc])
    t = view(rt.config, doc, utcnow(), lang)
    ctx = {**_base(request, agent, lang, f"{t['id']}: {doc.get('title', '')}", "tickets"), "t": t}
    return _html(page("ticket.html", **ctx))


async def get_silences(request: web.Request) -> web.Response:
    agent, lang = await _guarded(request)
    rt = _rt(request)
    state = await asyncio.to_thread(rt.store.engine_doc)  # as the leader committed it, from any replica
    now = utcnow()
    silences = []
    for s in state.get("silences", []):
        if s.get("end", 0) < now.timestamp():
            continue
        silences.append({"id": s.get("id"), "matchers": s.get("matchers", {}), "comment": s.get("reason", ""),
                         "mute": s.get("mute"), "from": _ts_local(s.get("start"), now),
                         "until": _ts_local(s.get("end"), now)})
    maints = []
    for m in state.get("maintenances", []):
        if m.get("end", 0) < now.timestamp():
            continue
        zone = zone_of(rt.config, m.get("client"))
        site = rt.config.inventory.sites.get(m.get("site") or "")
        client = rt.config.inventory.clients.get(m.get("client") or "")
        maints.append({"client": client.name if client else m.get("client"), "site": site.name if site else "",
                       "reason": m.get("reason", ""), "from": _ts_local(m.get("start"), now, zone),
                       "until": _ts_local(m.get("end"), now, zone)})
    can_lift = any(r.method == "DELETE" and "silences" in (r.resource.canonical if r.resource else "")
                   for r in request.app.router.routes())
    inv = rt.config.inventory
    ctx = {**_base(request, agent, lang, words(lang)["silences"], "silences"), "silences": silences,
           "maintenances": maints, "can_lift": can_lift,
           "clients": sorted((c.id, c.name) for c in inv.clients.values()),
           "sites": sorted((s.id, f"{s.name} ({s.client})") for s in inv.sites.values())}
    return _html(page("silences.html", **ctx))


def _ts_local(ts: float | None, now: datetime, zone: ZoneInfo = UTC_ZONE) -> str:
    if ts is None:
        return ""
    return local_time(format_time(datetime.fromtimestamp(ts, UTC)), zone, now)


async def get_unbound(request: web.Request) -> web.Response:
    agent, lang = await _guarded(request)
    rt = _rt(request)
    now = utcnow()
    # the leader's list and count, as every worker and replica reads them
    rows = [{"source": r[0], "key": r[1], "value": r[2], "count": r[3], "first": _ts_local(r[4], now),
             "last": _ts_local(r[5], now)} for r in await asyncio.to_thread(health.unbound_rows, rt)]
    status = (await asyncio.to_thread(read_figures, rt.store)).status
    ctx = {**_base(request, agent, lang, words(lang)["unbound"], "unbound"), "rows": rows,
           "total": status.unbound if status else 0}
    return _html(page("unbound.html", **ctx))


async def get_quarantine(request: web.Request) -> web.Response:
    agent, lang = await _guarded(request)
    rt = _rt(request)
    rows = None
    try:
        module = importlib.import_module("watcher.store.quarantine")
    except ImportError:
        module = None
    if module is not None and callable(getattr(module, "rows", None)):
        rows = await asyncio.to_thread(module.rows, rt.store)
    ctx = {**_base(request, agent, lang, words(lang)["quarantine"], "quarantine"), "rows": rows}
    return _html(page("quarantine.html", **ctx))


async def get_undelivered(request: web.Request) -> web.Response:
    agent, lang = await _guarded(request)
    rt = _rt(request)
    now = utcnow()
    rows = []
    for r in await asyncio.to_thread(rt.store.outbox_rows, "dead"):
        who = _person(rt.config, r.get("recipient", ""))
        created = r.get("created_at")
        person = rt.config.inventory.people.get(r.get("recipient", ""))
        zone = zone_of(rt.config, person.client if person else None)
        rows.append({**r, "who": who["name"], "phone": who.get("phone"),
                     "when": _ts_local(created, now, zone) if isinstance(created, int | float) else ""})
    ctx = {**_base(request, agent, lang, words(lang)["undelivered_notices"], "undelivered"), "rows": rows}
    return _html(page("undelivered.html", **ctx))


async def get_health(request: web.Request) -> web.Response:
    agent, lang = await _guarded(request)
    rt = _rt(request)
    now = utcnow()
    jobs = []
    if rt.collectors is not None:
        for name, h in sorted(rt.collectors.health().items()):
            d = h.to_dict()
            jobs.append({**d, "name": name, "ago": ago(d.get("last_run"), now, lang),
                         "problem": d.get("failing") or (d.get("last_error") if d.get("consecutive_errors") else None)})
    traps = rt.collectors.trap_stats() if rt.collectors is not None else None
    snmp = {k: traps.get(k, 0) for k in ("received", "rejected_community", "rejected_v3", "sink_errors",
                                         "dropped")} if traps is not None else None
    # the engine's figures as its leader published them: the same whichever worker or replica answers
    status = (await asyncio.to_thread(read_figures, rt.store)).status
    ctx = {**_base(request, agent, lang, words(lang)["health"], "health"), "jobs": jobs, "snmp": snmp,
           "engine": {"leader": rt.worker.leader, "cursor": status.cursor if status else 0,
                      "open": status.open_tickets if status else 0}}
    return _html(page("health.html", **ctx))


# ---------------------------------------------------------------- sign in


async def get_login(request: web.Request) -> web.Response:
    rt = _rt(request)
    cc = _console_config(rt)
    lang = request.query.get("lang") if request.query.get("lang") in ca.LANGUAGES else cc.language
    ctx = {**_base(request, "", str(lang), words(str(lang))["sign_in"], "login"), "needs_password": cc.mode == "users"}
    return _html(page("login.html", **ctx))


async def post_login(request: web.Request) -> web.Response:
    rt = _rt(request)
    if (refused := _refuse_cross_site(request)) is not None:
        return refused
    data = await _json_body(request)
    if isinstance(data, web.Response):
        return data
    cc = _console_config(rt)
    name, password = data.get("name"), data.get("password", "")
    lang = data.get("lang") if data.get("lang") in ca.LANGUAGES else cc.language
    if not isinstance(name, str) or not name.strip() or len(name) > 120 or not isinstance(password, str):
        return _err(400, "name: expected a non-empty string")
    if cc.mode == "proxy":
        return _err(400, "the console takes the agent's name from the proxy; there is nothing to sign in to")
    if cc.mode == "users":
        user = cc.user(name)
        if not await asyncio.to_thread(ca.verify_password, user, password):
            log.warning("console: failed sign-in for %r", name[:60])
            return _err(401, "wrong name or password")
        assert user is not None
        name = user.display or user.name
    elif "api" in rt.auth:
        from watcher.api.common import authorized as _authorized

        denied = await _authorized(request, rt, "api", b"")
        if denied is not None:
            return denied
    name = name.strip()
    session = ca.Session(name, str(lang), time.time() + cc.session_hours * 3600)
    resp = web.json_response({"status": "success", "name": name})
    _set_cookie(resp, rt, session, request)
    log.info("console: %s signed in", name)
    return resp


def _set_cookie(resp: web.StreamResponse, rt: Any, session: ca.Session, request: web.Request) -> None:
    resp.set_cookie(ca.COOKIE, ca.make_cookie(rt.secret, session), httponly=True, samesite="Strict", path="/",
                    max_age=int(max(0, session.expires - time.time())), secure=request.secure)


async def post_logout(request: web.Request) -> web.Response:
    if (refused := _refuse_cross_site(request)) is not None:
        return refused
    resp = web.json_response({"status": "success"})
    resp.del_cookie(ca.COOKIE, path="/")
    return resp


# ---------------------------------------------------------------- actions


def _err(status: int, message: str) -> web.Response:
    return web.json_response({"status": "error", "error": message}, status=status)


def _refuse_cross_site(request: web.Request) -> web.Response | None:
    """A write must come from a page of this site: ``Sec-Fetch-Site: same-origin`` or an
    ``Origin`` equal to the request's own; without either, it is refused."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return _err(403, "cross-site request refused")
    if origin is not None:
        own = f"{request.scheme}://{request.host}"
        if origin != own:
            return _err(403, "cross-site request refused")
        return None
    if fetch_site in ("same-origin", "none"):
        return None
    return _err(403, "a console write needs an Origin header of this site")


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    if request.content_type != "application/json":
        return _err(415, "expected a JSON body (Content-Type: application/json)")
    rt = _rt(request)
    from watcher.api.common import parse_json

    body = await request.read()
    if len(body) > min(rt.config.service.max_body_bytes, 1 << 20):
        return _err(413, "body too large")
    try:
        data = parse_json(body)
    except ValueError as exc:
        return _err(400, f"body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return _err(400, "body must be a JSON object")
    return data


_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")


async def post_act(request: web.Request) -> web.Response:
    """One agent action: ``{"action": "ack"|"resolve"|"planned"|"callback"|"call"|"escalate"|
    "office"|"silence"|"maintenance"|"lang", ...}``; the agent is the session's."""
    if (refused := _refuse_cross_site(request)) is not None:
        return refused
    name, _lang, stop = await _who(request)
    if stop is not None:
        return stop if isinstance(stop, web.Response) else _err(401, "sign in first")
    if name is None:
        return _err(401, "sign in first")
    data = await _json_body(request)
    if isinstance(data, web.Response):
        return data
    rt = _rt(request)
    action = data.get("action")
    handler = _ACTIONS.get(action) if isinstance(action, str) else None
    if handler is None:
        return _err(400, f"action: expected one of {', '.join(sorted(_ACTIONS))}")
    if action == "lang":
        new = data.get("lang")
        if new not in ca.LANGUAGES:
            return _err(400, "lang: expected pl or en")
        resp = web.json_response({"status": "success", "lang": new})
        cc = _console_config(rt)
        _set_cookie(resp, rt, ca.Session(name, str(new), time.time() + cc.session_hours * 3600), request)
        return resp
    result: web.Response = await handler(rt, data, name)
    return result


async def _ticket_action(rt: Any, data: dict[str, Any], kind: str, args: dict[str, Any], agent: str
                         ) -> web.Response:
    from watcher.api.tickets import apply_ticket_op

    tid = data.get("ticket")
    if not isinstance(tid, str) or not tid:
        return _err(400, "ticket: expected a ticket id")
    failed = await apply_ticket_op(rt, tid, kind, args)
    if failed is not None:
        return failed
    log.info("console: %s: %s %s", agent, kind if kind != "office_answer" else "marked planned", tid)
    return web.json_response({"status": "success", "ticket": tid})


async def _ack(rt: Any, data: dict[str, Any], agent: str) -> web.Response:
    return await _ticket_action(rt, data, "ack", {"by": agent}, agent)


async def _resolve(rt: Any, data: dict[str, Any], agent: str) -> web.Response:
    return await _ticket_action(rt, data, "resolve", {"by": agent}, agent)


async def _planned(rt: Any, data: dict[str, Any], agent: str) -> web.Response:
    return await _ticket_action(rt, data, "office_answer", {"answer": "planned", "by": agent}, agent)


async def _callback(rt: Any, data: dict[str, Any], agent: str) -> web.Response:
    person = data.get("person")
    if not isinstance(person, str) or person not in rt.config.inventory.people:
        return _err(400, f"person: expected a person id of the inventory, got {person!r}")
    return await _ticket_action(rt, data, "callback", {"person": person, "by": agent}, agent)


def _times(data: dict[str, Any], zone: ZoneInfo) -> tuple[datetime, datetime] | web.Response:
    """``starts_at``/``ends_at`` as RFC 3339, or local ``YYYY-MM-DDTHH:MM`` of a form in ``zone``."""
    out = []
    for key in ("starts_at", "ends_at"):
        raw = data.get(key)
        if key == "starts_at" and not raw:
            out.append(utcnow())
            continue
        if not isinstance(raw, str):
            return _err(400, f"{key}: expected a time")
        try:
            if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?", raw):
                out.append(datetime.fromisoformat(raw).replace(tzinfo=zone).astimezone(UTC))
            else:
                out.append(parse_time(raw, key))
        except (EventError, ValueError) as exc:
            return _err(400, f"{key}: {exc}")
    start, end = out
    if end <= start:
        return _err(400, "ends_at must be after starts_at")
    if end - start > timedelta(days=366):
        return _err(400, "ends_at: at most a year after starts_at")
    return start, end


async def _silence(rt: Any, data: dict[str, Any], agent: str) -> web.Response:
    from watcher.api.common import submit_op as _op
    from watcher.config.rules import parse_matcher

    matchers = data.get("matchers")
    if isinstance(matchers, str):  # the form's text: "host=~krk-pbx.*, alertname=LinkDown"
        parsed: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in matchers.split(","))):
            m = _MATCHER.fullmatch(part)
            if m is None:
                return _err(400, f"matchers: {part!r} is not label=value, label!=value, label=~regex or label!~regex")
            label, op, value = m.groups()
            parsed[label] = value if op == "=" else op + value
        matchers = parsed
    if not isinstance(matchers, dict) or not matchers or \
            not all(isinstance(k, str) and isinstance(v, str) for k, v in matchers.items()):
        return _err(400, "matchers: expected label=value pairs")
    try:
        for label, spec in matchers.items():
            parse_matcher(label, spec)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        return _err(400, f"matchers: {exc}")
    window = _times(data, UTC_ZONE if not data.get("client") else zone_of(rt.config, str(data.get("client"))))
    if isinstance(window, web.Response):
        return window
    comment = str(data.get("comment", ""))[:500]
    args = {"matchers": matchers, "starts_at": format_time(window[0]), "ends_at": format_time(window[1]),
            "comment": f"{comment} ({agent})" if comment else f"({agent})", "mute": bool(data.get("mute", False))}
    await _op(rt, "silence", args)
    log.info("console: %s: silence %s until %s", agent, matchers, args["ends_at"])
    return web.json_response({"status": "success", "silence": args}, status=201)


async def _maintenance(rt: Any, data: dict[str, Any], agent: str) -> web.Response:
    from watcher.api.common import submit_op as _op

    inv = rt.config.inventory
    client, site = data.get("client"), data.get("site") or None
    if isinstance(site, str) and site in inv.sites and not client:
        client = inv.sites[site].client
    if not isinstance(client, str) or client not in inv.clients:
        return _err(400, f"client: no client {client!r} in the inventory")
    if site is not None and (not isinstance(site, str) or site not in inv.sites or inv.sites[site].client != client):
        return _err(400, f"site: no site {site!r} of client {client!r}")
    window = _times(data, zone_of(rt.config, client))
    if isinstance(window, web.Response):
        return window
    reason = str(data.get("reason", ""))[:500]
    args = {"client": client, "site": site, "starts_at": format_time(window[0]), "ends_at": format_time(window[1]),
            "reason": f"{reason} ({agent})" if reason else f"({agent})"}
    await _op(rt, "maintenance", args)
    log.info("console: %s: maintenance %s %s until %s", agent, client, site or "", args["ends_at"])
    return web.json_response({"status": "success", "maintenance": args}, status=201)


async def _helpdesk(rt: Any, data: dict[str, Any], kind: str, args: dict[str, Any], agent: str) -> web.Response:
    """An op of the helpdesk's workflow (call, escalate, office answer) on a ticket that may
    be resolved already (a call is owed after resolution too)."""
    from watcher.api import helpdesk

    tid = data.get("ticket")
    if not isinstance(tid, str) or not tid:
        return _err(400, "ticket: expected a ticket id")
    for key in ("note", "reason", "person", "to", "outcome", "answer"):
        if data.get(key) is not None and (not isinstance(data[key], str) or len(data[key]) > 500):
            return _err(400, f"{key}: expected a string of at most 500 characters")
    resp = await helpdesk._apply(rt, tid, kind, {**{k: v for k, v in args.items() if v}, "by": agent})
    if resp.status < 300:
        log.info("console: %s: %s %s", agent, kind, tid)
        return web.json_response({"status": "success", "ticket": tid})
    return resp


async def _call(rt: Any, data: dict[str, Any], agent: str) -> web.Response:
    from watcher.rules.calls import OUTCOMES

    outcome = data.get("outcome", "reached")
    if outcome not in OUTCOMES:
        return _err(400, f"outcome: expected one of {', '.join(OUTCOMES)}")
    person = data.get("person")
    if person is not None and person not in rt.config.inventory.people:
        return _err(400, f"person: expected a person id of the inventory, got {person!r}")
    return await _helpdesk(rt, data, "call", {"person": person, "note": data.get("note"), "outcome": outcome}, agent)


async def _escalate(rt: Any, data: dict[str, Any], agent: str) -> web.Response:
    from watcher.rules.escalation import TEAMS

    if data.get("to") is not None and data["to"] not in TEAMS:
        return _err(400, f"to: expected one of {', '.join(TEAMS)}")
    if not isinstance(data.get("reason"), str) or not data["reason"].strip():
        return _err(400, "reason: say why the helpdesk cannot solve it (it goes to the team)")
    return await _helpdesk(rt, data, "escalate", {"to": data.get("to"), "reason": data["reason"]}, agent)


async def _office(rt: Any, data: dict[str, Any], agent: str) -> web.Response:
    from watcher.rules.office import ANSWERS

    if data.get("answer") not in ANSWERS:
        return _err(400, f"answer: expected one of {', '.join(ANSWERS)}")
    return await _helpdesk(rt, data, "office_answer", {"answer": data["answer"], "note": data.get("note")}, agent)


async def _lang(rt: Any, data: dict[str, Any], agent: str) -> web.Response:  # handled in post_act
    return _err(400, "lang")


_Act = Callable[[Any, dict[str, Any], str], Awaitable[web.Response]]
_ACTIONS: dict[str, _Act] = {"ack": _ack, "resolve": _resolve, "planned": _planned, "callback": _callback,
                             "silence": _silence, "maintenance": _maintenance, "lang": _lang, "call": _call,
                             "escalate": _escalate, "office": _office}


def routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", get_index)
    r.add_get("/console/live", get_live)
    r.add_get("/console/tickets/{id}", get_ticket)
    r.add_get("/console/silences", get_silences)
    r.add_get("/console/unbound", get_unbound)
    r.add_get("/console/quarantine", get_quarantine)
    r.add_get("/console/undelivered", get_undelivered)
    r.add_get("/console/health", get_health)
    r.add_get("/console/login", get_login)
    r.add_post("/console/login", post_login)
    r.add_post("/console/logout", post_logout)
    r.add_post("/console/act", post_act)
