"""Collector health: ``/console/health``, whether the service still sees what it watches.

Each collector's job with its last run and its problem (if failing), the SNMP trap receiver's
counters, and the engine's figures as its leader published them, so the page reads the same
whichever worker or replica answers.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from watcher.api.console.common import base, guarded, html, page, runtime
from watcher.api.console.times import ago
from watcher.api.console.words import words
from watcher.model import utcnow
from watcher.store.status import read_figures


async def get_health(request: web.Request) -> web.Response:
    agent, lang = await guarded(request)
    rt = runtime(request)
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
    ctx = {**base(request, agent, lang, words(lang)["health"], "health"), "jobs": jobs, "snmp": snmp,
           "engine": {"leader": rt.worker.leader, "cursor": status.cursor if status else 0,
                      "open": status.open_tickets if status else 0}}
    return html(page("health.html", **ctx))


ROUTES: list[web.RouteDef] = [web.get("/console/health", get_health)]
