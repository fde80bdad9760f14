"""Unbound events: ``/console/unbound``, what arrived that no client or office could be bound to.

The rows (source, key, value, how often, first and last seen) and the total are the engine
leader's, as every worker and replica reads them (``watcher.api.health.unbound_rows``): an
agent sees what the inventory is missing.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from watcher.api import health
from watcher.api.console.common import base, guarded, html, page, runtime
from watcher.api.console.times import ts_local
from watcher.api.console.words import words
from watcher.model import utcnow
from watcher.store.status import read_figures


async def get_unbound(request: web.Request) -> web.Response:
    agent, lang = await guarded(request)
    rt = runtime(request)
    now = utcnow()
    # the leader's list and count, as every worker and replica reads them
    rows = [{"source": r[0], "key": r[1], "value": r[2], "count": r[3], "first": ts_local(r[4], now),
             "last": ts_local(r[5], now)} for r in await asyncio.to_thread(health.unbound_rows, rt)]
    status = (await asyncio.to_thread(read_figures, rt.store)).status
    ctx = {**base(request, agent, lang, words(lang)["unbound"], "unbound"), "rows": rows,
           "total": status.unbound if status else 0}
    return html(page("unbound.html", **ctx))


ROUTES: list[web.RouteDef] = [web.get("/console/unbound", get_unbound)]
