"""Quarantined items: ``/console/quarantine``, what the service set aside instead of handling.

The rows come from ``watcher.store.quarantine`` where this build has it; without it the page
says the list is not available rather than failing.
"""

from __future__ import annotations

import asyncio
import importlib

from aiohttp import web

from watcher.api.console.common import base, guarded, html, page, runtime
from watcher.api.console.words import words


async def get_quarantine(request: web.Request) -> web.Response:
    agent, lang = await guarded(request)
    rt = runtime(request)
    rows = None
    try:
        module = importlib.import_module("watcher.store.quarantine")
    except ImportError:
        module = None
    if module is not None and callable(getattr(module, "rows", None)):
        rows = await asyncio.to_thread(module.rows, rt.store)
    ctx = {**base(request, agent, lang, words(lang)["quarantine"], "quarantine"), "rows": rows}
    return html(page("quarantine.html", **ctx))


ROUTES: list[web.RouteDef] = [web.get("/console/quarantine", get_quarantine)]
