"""The agent console: what a helpdesk agent on a shift works from.

Server-rendered pages (Jinja2 with autoescaping, a few lines of script), one module per page
or resource, each with its ``ROUTES`` table, joined here:

| module | what |
| --- | --- |
| ``board`` | ``/`` and ``/console/live``: open tickets in the order they need action, and the calls to make |
| ``ticket`` | ``/console/tickets/{id}``: one ticket, and its actions (ack, resolve, planned, callback) |
| ``calls`` | the call list on the board, and the call, escalate and office actions (no page of its own) |
| ``windows`` | ``/console/silences``: silences and maintenances, and the actions that make them |
| ``unbound``, ``quarantine`` | events no client could be bound to; items set aside |
| ``undelivered`` | notices the senders gave up on, with the recipients' phones |
| ``health`` | ``/console/health``: collectors, the SNMP receiver, the engine's figures |
| ``signin`` | ``/console/login``, ``/console/logout`` |
| ``act`` | ``POST /console/act``: every write, dispatched through the modules' ``ACTIONS`` tables |
| ``common``, ``times``, ``words`` | what the pages share: who asks, templates, local times, the two languages |

Every write is ``fetch()`` of JSON to ``POST /console/act`` from the page itself (see ``act``);
the agent's name comes from the session (see ``console_auth``), never from the body.

The pure parts (``order``, ``clock``, ``local_time``, ``ago``, ``delivery_state``, ``render``)
take documents and the time, so tests check them without a server; they are re-exported here.
"""

from __future__ import annotations

from aiohttp import web

from watcher.api.console import act, board, calls, health, quarantine, signin, ticket, unbound, undelivered, windows
from watcher.api.console.board import order, render
from watcher.api.console.common import guarded, page
from watcher.api.console.ticket import clock, delivery_state, view
from watcher.api.console.times import ago, local_time, zone_of
from watcher.api.console.words import WORDS, words

ROUTES: list[web.RouteDef] = [*board.ROUTES, *ticket.ROUTES, *calls.ROUTES, *windows.ROUTES, *unbound.ROUTES,
                              *quarantine.ROUTES, *undelivered.ROUTES, *health.ROUTES, *signin.ROUTES, *act.ROUTES]



def routes(app: web.Application) -> None:
    """The console's pages and its one write path on ``app``'s router."""
    app.router.add_routes(ROUTES)


__all__ = ["ROUTES", "WORDS", "ago", "clock", "delivery_state", "guarded", "local_time", "order", "page", "render",
           "routes", "view", "words", "zone_of"]
