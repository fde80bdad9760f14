"""The board: ``/``, the open tickets in the order they need action, and the calls to make.

Unacknowledged before acknowledged, then by SLA time left, then by people affected and
callers waiting (``order``); each row with client and office names, local times of the
client's zone and "x min ago", the SLA clock, who is affected, who waits for a call back and
failing notices (``ticket.view``).  The table refreshes itself every few seconds by polling
``/console/live``, which answers the rows alone (no reload, no lost scroll position).

``render`` builds the page from documents and the time, so tests render it without a server.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from aiohttp import web

from watcher.api.console import calls
from watcher.api.console.common import REFRESH_SECONDS, base, guarded, html, page, runtime
from watcher.api.console.ticket import attach_external, view
from watcher.api.console.words import words
from watcher.config import Config
from watcher.model import utcnow
from watcher.runtime import Runtime


def order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What needs action first: unacknowledged (and not planned) before acknowledged and
    planned, then the least SLA time left, then the most people affected and callers."""
    def key(d: dict[str, Any]) -> tuple[int, str, int]:
        waiting = d.get("status") == "open" and not d.get("planned")
        react_by = (d.get("sla") or {}).get("react_by") or "9999"
        people = len(d.get("affected") or []) + len(d.get("callbacks") or [])
        return (0 if waiting else 1, react_by[:16], -people)
    return sorted(docs, key=key)


def render(docs: list[dict[str, Any]], now: datetime, config: Config, lang: str = "en", agent: str = "") -> str:
    """The ticket list page from documents and the time (tests render it without a server)."""
    ctx = {"w": words(lang), "lang": lang, "agent": agent, "title": words(lang)["open_tickets"], "active": "tickets",
           "mode": "open", "calls": None, **_list_context(docs, now, config, lang, agent)}
    return page("tickets.html", **ctx)


def _list_context(docs: list[dict[str, Any]], now: datetime, config: Config, lang: str, agent: str
                  ) -> dict[str, Any]:
    return {"w": words(lang), "lang": lang, "agent": agent, "refresh": REFRESH_SECONDS,
            "tickets": [view(config, d, now, lang) for d in order(docs)], "updated": now.strftime("%H:%M:%S UTC")}


async def _open_docs(rt: Runtime) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for status in ("open", "acknowledged"):
        docs += await asyncio.to_thread(rt.store.list_tickets, status, None, None, 1000)
    await attach_external(rt, docs)
    return docs


async def get_index(request: web.Request) -> web.Response:
    agent, lang = await guarded(request)
    rt = runtime(request)
    now = utcnow()
    ctx = {**base(request, agent, lang, words(lang)["open_tickets"], "tickets"),
           **_list_context(await _open_docs(rt), now, rt.config, lang, agent), "calls": await calls.call_rows(rt, now)}
    return html(page("tickets.html", **ctx))


async def get_live(request: web.Request) -> web.Response:
    """The ticket table alone, for the page's polling: no reload, no lost scroll position."""
    agent, lang = await guarded(request)
    rt = runtime(request)
    ctx = _list_context(await _open_docs(rt), utcnow(), rt.config, lang, agent)
    return html(page("_rows.html", **ctx))


ROUTES: list[web.RouteDef] = [web.get("/", get_index), web.get("/console/live", get_live)]
