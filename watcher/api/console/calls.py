"""The helpdesk's calls and hand-overs as the console does them: the call list on the board,
and the ``call``, ``escalate`` and ``office`` actions of ``POST /console/act``.

The list and the ops are the helpdesk API's (``watcher.api.helpdesk``), so the console and
``/api/v1/calls`` agree; this module adds local times and checks the agent's input at the
edge.  The ops apply to resolved tickets too: a call can be owed after resolution.  It has no
page of its own, so its ``ROUTES`` table is empty.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from watcher.api import helpdesk
from watcher.api.console.common import Action, err, log
from watcher.api.console.times import ago, local_time, zone_of
from watcher.rules.calls import OUTCOMES
from watcher.rules.escalation import TEAMS
from watcher.rules.office import ANSWERS
from watcher.runtime import Runtime


async def call_rows(rt: Runtime, now: datetime) -> list[dict[str, Any]]:
    """The call list (watcher.api.helpdesk), with the time each call was asked for in the
    client's zone and how long ago."""
    rows = await helpdesk.call_rows(rt)
    return [{**r, "asked": local_time(r.get("asked_at"), zone_of(rt.config, r.get("client")), now),
             "ago": ago(r.get("asked_at"), now)} for r in rows]


async def _helpdesk(rt: Runtime, data: dict[str, Any], kind: str, args: dict[str, Any], agent: str) -> web.Response:
    """An op of the helpdesk's workflow (call, escalate, office answer) on a ticket that may
    be resolved already (a call is owed after resolution too)."""
    tid = data.get("ticket")
    if not isinstance(tid, str) or not tid:
        return err(400, "ticket: expected a ticket id")
    for key in ("note", "reason", "person", "to", "outcome", "answer"):
        if data.get(key) is not None and (not isinstance(data[key], str) or len(data[key]) > 500):
            return err(400, f"{key}: expected a string of at most 500 characters")
    resp = await helpdesk._apply(rt, tid, kind, {**{k: v for k, v in args.items() if v}, "by": agent})
    if resp.status < 300:
        log.info("console: %s: %s %s", agent, kind, tid)
        return web.json_response({"status": "success", "ticket": tid})
    return resp


async def _call(rt: Runtime, data: dict[str, Any], agent: str) -> web.Response:
    outcome = data.get("outcome", "reached")
    if outcome not in OUTCOMES:
        return err(400, f"outcome: expected one of {', '.join(OUTCOMES)}")
    person = data.get("person")
    if person is not None and person not in rt.config.inventory.people:
        return err(400, f"person: expected a person id of the inventory, got {person!r}")
    return await _helpdesk(rt, data, "call", {"person": person, "note": data.get("note"), "outcome": outcome}, agent)


async def _escalate(rt: Runtime, data: dict[str, Any], agent: str) -> web.Response:
    if data.get("to") is not None and data["to"] not in TEAMS:
        return err(400, f"to: expected one of {', '.join(TEAMS)}")
    if not isinstance(data.get("reason"), str) or not data["reason"].strip():
        return err(400, "reason: say why the helpdesk cannot solve it (it goes to the team)")
    return await _helpdesk(rt, data, "escalate", {"to": data.get("to"), "reason": data["reason"]}, agent)


async def _office(rt: Runtime, data: dict[str, Any], agent: str) -> web.Response:
    if data.get("answer") not in ANSWERS:
        return err(400, f"answer: expected one of {', '.join(ANSWERS)}")
    return await _helpdesk(rt, data, "office_answer", {"answer": data["answer"], "note": data.get("note")}, agent)


ACTIONS: dict[str, Action] = {"call": _call, "escalate": _escalate, "office": _office}

ROUTES: list[web.RouteDef] = []
