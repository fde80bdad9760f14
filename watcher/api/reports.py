"""The console's page of monthly reports: every report made, its mail's state, and the PDF.

Kept apart from the agent console (``watcher/api/console/``): a list of past reports per client with a
download link, served from the ``reports`` table (``watcher.report.send``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from html import escape
from typing import Any

from aiohttp import web

from watcher.report import send
from watcher.store import Store


def render(rows: list[dict[str, Any]]) -> str:
    body = "".join(
        f"<tr><td>{escape(r['client'])}</td><td>{escape(r['month'])}</td><td>{escape(r['title'])}</td>"
        f"<td>{escape(r['mail'])}{' ' + r['sent_at'].strftime('%Y-%m-%d %H:%M UTC') if r['sent_at'] else ''}</td>"
        f"<td><a href='/reports/{r['id']}.pdf'>PDF</a></td></tr>" for r in rows
    ) or "<tr><td colspan=5>No reports yet.</td></tr>"
    return ("<!doctype html><meta charset=utf-8><title>watcher: monthly reports</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;width:100%}"
            "th,td{border-bottom:1px solid #ddd;padding:.4em .5em;text-align:left}th{background:#f4f4f4}</style>"
            "<h1>Monthly reports</h1><p><a href=/>console</a></p>"
            "<table><tr><th>client</th><th>month</th><th>title</th><th>mail to the coordinator</th><th></th></tr>"
            f"{body}</table>")


async def guarded(request: web.Request) -> None:
    """Readable by whoever may read the agent console (its sign-in, proxy or API credential)."""
    from watcher.api.console.common import guarded

    await guarded(request)


def routes(app: web.Application, store_of: Callable[[web.Request], Store]) -> None:
    """``store_of(request)`` gives the running service's store."""

    async def page(request: web.Request) -> web.Response:
        await guarded(request)
        rows = await asyncio.to_thread(send.listing, store_of(request), request.query.get("client") or None)
        return web.Response(text=render(rows), content_type="text/html")

    async def pdf(request: web.Request) -> web.Response:
        await guarded(request)
        try:
            report_id = int(request.match_info["id"])
        except ValueError:
            raise web.HTTPNotFound() from None
        if report_id >= 2**63:
            raise web.HTTPNotFound()
        got = await asyncio.to_thread(send.pdf_of, store_of(request), report_id)
        if got is None:
            raise web.HTTPNotFound()
        client, month, content = got
        return web.Response(body=content, content_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="report-{client}-{month}.pdf"'})

    app.router.add_get("/reports", page)
    app.router.add_get(r"/reports/{id:\d+}.pdf", pdf)
