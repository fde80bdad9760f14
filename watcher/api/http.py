"""The HTTP API (docs/events.md, docs/tickets.md) on aiohttp, assembled from one route table
per resource.

Handlers are thin: parse and check at the edge, hand events to ``submit_events`` or ops to
the engine worker through the inbox, and answer.  A 2xx on an ingest path means the rows
are committed; bad input is a 4xx with a message and stores nothing.

| module | routes |
| --- | --- |
| ``ingest`` | ``/api/v1/events``, ``/api/v2/alerts``, ``/webhooks/*``: from the formats table |
| ``tickets`` | tickets and the agents' operations on them |
| ``helpdesk`` | the call list, calls, escalation, the office's answer, disk advice |
| ``windows``, ``silences`` | maintenance windows and silences |
| ``links`` | signed links from messages |
| ``admin`` | metrics, stats, outbox, reports, reload, health, OpenAPI |
| ``console`` | the agent console's pages and ``POST /console/act`` (a package, one module per page) |
| ``common`` | what they share, and the middleware ``read_auth`` |
"""

from __future__ import annotations

from aiohttp import web

from watcher.api import admin, console, helpdesk, ingest, links, reports, tickets, windows
from watcher.api.common import read_auth
from watcher.runtime import RUNTIME

ROUTE_TABLES: tuple[list[web.RouteDef], ...] = (
    ingest.ROUTES, tickets.ROUTES, helpdesk.ROUTES, windows.ROUTES, links.ROUTES, admin.ROUTES, console.ROUTES)


def routes(app: web.Application) -> None:
    """Every route of the service: the API's and the console's tables, then the report pages."""
    for table in ROUTE_TABLES:
        app.router.add_routes(table)
    reports.routes(app, lambda request: request.app[RUNTIME].store)


__all__ = ["ROUTE_TABLES", "read_auth", "routes"]
