"""Undelivered notices: ``/console/undelivered``, the outbox's dead letters with whom to phone.

Each notice the senders gave up on, with the recipient's name and phone (``common.person``)
and when it was made in the recipient's client's time zone, so an agent can reach them another way.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from watcher.api.console.common import base, guarded, html, page, person, runtime
from watcher.api.console.times import ts_local, zone_of
from watcher.api.console.words import words
from watcher.model import utcnow


async def get_undelivered(request: web.Request) -> web.Response:
    agent, lang = await guarded(request)
    rt = runtime(request)
    now = utcnow()
    rows = []
    for r in await asyncio.to_thread(rt.store.outbox_rows, "dead"):
        who = person(rt.config, r.get("recipient", ""))
        created = r.get("created_at")
        known = rt.config.inventory.people.get(r.get("recipient", ""))
        zone = zone_of(rt.config, known.client if known else None)
        rows.append({**r, "who": who["name"], "phone": who.get("phone"),
                     "when": ts_local(created, now, zone) if isinstance(created, int | float) else ""})
    ctx = {**base(request, agent, lang, words(lang)["undelivered_notices"], "undelivered"), "rows": rows}
    return html(page("undelivered.html", **ctx))


ROUTES: list[web.RouteDef] = [web.get("/console/undelivered", get_undelivered)]
