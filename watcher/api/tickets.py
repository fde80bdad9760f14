"""Tickets: the list and one ticket, and the agents' operations on them (ack, resolve,
callbacks).  Every change is an operation through the inbox (``common.submit_op``)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from watcher.api.common import api_guard, error, json_response, submit_op
from watcher.model import EventError, parse_time
from watcher.runtime import RUNTIME, Runtime


async def get_tickets(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    q = request.query
    status = q.get("status")
    if status and status not in ("open", "acknowledged", "resolved"):
        return error(400, "status: expected open, acknowledged or resolved")
    since = None
    if q.get("since"):
        try:
            since = parse_time(q["since"], "since")
        except EventError as exc:
            return error(400, str(exc))
    try:
        limit = min(max(int(q.get("limit", "500")), 0), 5000)
        offset = max(int(q.get("offset", "0")), 0)
    except ValueError:
        return error(400, "limit and offset must be whole numbers")
    if offset > 2**62:
        return error(400, "offset: too large")
    docs = await asyncio.to_thread(rt.store.list_tickets, status, q.get("client"), since, limit, offset)
    return json_response({"tickets": docs})


async def get_ticket(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    doc = await asyncio.to_thread(rt.store.get_ticket, request.match_info["id"])
    if doc is None:
        return error(404, f"no ticket {request.match_info['id']}")
    from watcher.sinks import api as sinks_api

    doc["external"] = await asyncio.to_thread(sinks_api.sync_state, rt.store, doc["id"])
    return json_response(doc)


async def apply_ticket_op(rt: Runtime, tid: str, kind: str, extra: dict[str, Any]) -> web.Response | None:
    """An agent's operation on one open ticket, through the inbox like every op: None once
    it took effect, else the error to answer (no such ticket, resolved, no longer open).
    The API and the console's buttons both act through here."""
    doc = await asyncio.to_thread(rt.store.get_ticket, tid)
    if doc is None:
        return error(404, f"no ticket {tid}")
    if doc["status"] == "resolved":
        return error(409, f"ticket {tid} is resolved")
    result = await submit_op(rt, kind, {"ticket": tid, **extra})
    if not result.get("tickets"):
        return error(409, f"ticket {tid} is no longer open")
    return None


async def _ticket_op(request: web.Request, kind: str, extra: dict[str, Any]) -> web.Response:
    rt = request.app[RUNTIME]
    tid = request.match_info["id"]
    failed = await apply_ticket_op(rt, tid, kind, extra)
    return failed or json_response(await asyncio.to_thread(rt.store.get_ticket, tid))


async def post_ack(request: web.Request) -> web.Response:
    _rt, data, err = await api_guard(request)
    if err is not None:
        return err
    return await _ticket_op(request, "ack", {"by": str((data or {}).get("by", "agent"))})


async def post_resolve(request: web.Request) -> web.Response:
    _rt, data, err = await api_guard(request)
    if err is not None:
        return err
    return await _ticket_op(request, "resolve", {"by": str((data or {}).get("by", "agent"))})


async def post_ticket_callback(request: web.Request) -> web.Response:
    rt, data, err = await api_guard(request)
    if err is not None:
        return err
    person = (data or {}).get("person")
    if not isinstance(person, str) or person not in rt.config.inventory.people:
        return error(400, f"person: expected a person id of the inventory, got {person!r}")
    wish = callback_wish(data or {})
    if isinstance(wish, web.Response):
        return wish
    return await _ticket_op(request, "callback", {"person": person, **wish})


def callback_wish(data: dict[str, Any]) -> dict[str, str] | web.Response:
    """The optional note, phone and preferred time of a callback (strings of at most 500)."""
    wish = {}
    for key in ("note", "phone", "preferred_time"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 500:
            return error(400, f"{key}: expected a string of at most 500 characters")
        wish[key] = value
    return wish


async def post_person_callback(request: web.Request) -> web.Response:
    rt, data, err = await api_guard(request)
    if err is not None:
        return err
    person = request.match_info["person"]
    if person not in rt.config.inventory.people:
        return error(404, f"no person {person!r} in the inventory")
    wish = callback_wish(data or {})
    if isinstance(wish, web.Response):
        return wish
    result = await submit_op(rt, "callback", {"person": person, **wish})
    if not result.get("tickets"):
        return error(404, f"no open ticket affects {person} (the wish is kept for 15 minutes in case one opens)")
    return json_response({"person": person, "tickets": result["tickets"]})


ROUTES = [
    web.get("/api/v1/tickets", get_tickets),
    web.get("/api/v1/tickets/{id}", get_ticket),
    web.post("/api/v1/tickets/{id}/ack", post_ack),
    web.post("/api/v1/tickets/{id}/acknowledge", post_ack),
    web.post("/api/v1/tickets/{id}/resolve", post_resolve),
    web.post("/api/v1/tickets/{id}/callbacks", post_ticket_callback),
    web.post("/api/v1/people/{person}/callbacks", post_person_callback),
]
